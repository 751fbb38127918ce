"""One call from a cache directory to a training DataLoader with length batching."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.dataset import ProteinChainDataset


def make_protein_dataloader(cache: ChainCache | str | Path, *, seed: int = 0,
                            squared_residue_budget: int = 500_000, max_batch_size: int = 64,
                            mode: str = "same_length", cluster_weighting: bool = False,
                            min_length: int = 1, max_length: int | None = None,
                            rank: int | None = None, world_size: int | None = None,
                            num_workers: int = 0, preload: bool = False) -> DataLoader:
    """DataLoader over a cache (optionally a length window) with a :class:`LengthBatchSampler`.

    The sampler is ``loader.batch_sampler``: call its ``set_epoch`` each epoch and
    ``set_start_batch`` to resume mid-epoch. Batches are dicts from :func:`collate_chains`.
    """
    cache = cache if isinstance(cache, ChainCache) else ChainCache(cache)
    if min_length > 1 or max_length is not None:
        cache = cache.filter_length(min_length, max_length)
    dataset = ProteinChainDataset(cache, seed=seed, preload=preload)
    sampler = LengthBatchSampler(
        dataset.lengths, squared_residue_budget=squared_residue_budget, max_batch_size=max_batch_size,
        mode=mode, cluster_ids=dataset.cluster_ids, cluster_weighting=cluster_weighting, seed=seed,
        rank=rank, world_size=world_size, with_epoch=True,
    )
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_chains, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
