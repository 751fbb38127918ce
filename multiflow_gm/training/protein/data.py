"""Training batches of co-design: chains of a cache's split, batched by length, indexed by batches consumed.

The DataModule holds no model: the number of batches consumed comes from the trainer's
:class:`~multiflow_gm.training.step_sampler.BatchCounter` callback, which the training step
reads as well, so data order and step randomness follow the same count.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from multiflow_gm.errors import ConfigError
from multiflow_gm.training.interrupts import ignore_sigint_in_worker
from multiflow_gm.training.protein.config import TrainConfig
from multiflow_gm.training.step_sampler import StepBatchSampler, batch_counter


class CoDesignData(L.LightningDataModule):
    """Training batches from a chain cache, sharded by rank and indexed by batches consumed."""

    def __init__(self, cfg: TrainConfig, cache_dir: Path):
        super().__init__()
        self.cfg, self.cache_dir = cfg, cache_dir

    def train_dataloader(self):
        from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
        from multiflow_gm.protein.data.dataset import ProteinChainDataset

        d = self.cfg.data
        cache = training_chains(self.cfg, self.cache_dir)
        dataset = ProteinChainDataset(cache, seed=self.cfg.trainer.seed, preload=d.preload,
                                      designed_sequence_fraction=d.designed_sequence_fraction,
                                      designed_max_type_fraction=d.designed_max_type_fraction)
        if d.designed_sequence_fraction > 0:
            print(f"designed sequences: {dataset.chains_with_designs} of {len(dataset)} training chains have "
                  f"them (`multiflow-gm distill`); the rest keep their native sequence")
        epochs = LengthBatchSampler(
            dataset.lengths, squared_residue_budget=d.squared_residue_budget, max_batch_size=d.max_batch_size,
            mode=d.batching, cluster_ids=dataset.cluster_ids, cluster_weighting=d.cluster_weighting,
            seed=self.cfg.trainer.seed, rank=self.trainer.global_rank, world_size=self.trainer.world_size)
        # Generous total: skipped batches do not count as optimiser steps.
        total = 2 * self.cfg.trainer.max_steps + 1000
        sampler = StepBatchSampler(epochs, batch_counter(self.trainer), total)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_chains,
                          num_workers=d.num_workers, persistent_workers=d.num_workers > 0,
                          worker_init_fn=ignore_sigint_in_worker if d.num_workers > 0 else None)


def training_chains(cfg: TrainConfig, cache_dir: Path, split: str = "train"):
    """Chains of ``split`` in the training length window (the whole cache without splits.csv)."""
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import split_of

    d = cfg.data
    cache = ChainCache(cache_dir)
    if d.use_split:
        cache = split_of(cache, split, required=split != "train")
    cache = cache.filter_length(d.min_length, d.max_length)
    if d.sources and split == "train":  # validation stays the same set whatever the training sources
        cache = cache.subset([i for i, r in enumerate(cache.records) if any(s in r.source for s in d.sources)])
    if len(cache) == 0:
        raise ConfigError(f"no {split} chain in {cache_dir} has a length in "
                          f"[{d.min_length}, {d.max_length}] (data.min_length / data.max_length)")
    return cache
