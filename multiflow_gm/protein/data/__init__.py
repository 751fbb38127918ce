"""Protein structure data: filters, the preprocessed chain cache, the training dataset
and length-bucketed batching.

Main entry points: :func:`multiflow_gm.protein.data.preprocess.run_preprocess`,
:class:`multiflow_gm.protein.data.cache.ChainCache`,
:class:`multiflow_gm.protein.data.dataset.ProteinChainDataset`,
:class:`multiflow_gm.protein.data.batching.LengthBatchSampler` and
:func:`multiflow_gm.protein.data.batching.collate_chains`.
"""
