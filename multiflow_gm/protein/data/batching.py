"""Length-bucketed batches under a residue budget, sharded across ranks, and collation.

Attention over L residues costs about L^2, so a batch of chains of length L holds
about ``squared_residue_budget / L^2`` chains (clamped to [1, max_batch_size]).
The batches of an epoch are a pure function of (seed, epoch, rank, world_size):
every rank builds the same global list, shuffles it with the same generator and
takes its own disjoint slice, all ranks getting the same number of batches. A
resumed run calls :meth:`LengthBatchSampler.set_epoch` and
:meth:`LengthBatchSampler.set_start_batch` to continue mid-epoch.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import Sampler

from multiflow_gm.protein.data.clustering import cluster_sizes
from multiflow_gm.protein.seeding import seeded_rng


def _distributed_defaults(rank, world_size) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class LengthBatchSampler(Sampler):
    """Batches of dataset indices, one length each (or padded), under a residue budget.

    lengths: [N] chain lengths. mode: "same_length" (every batch holds one length)
    or "padded" (neighbouring lengths share a batch; the cost counts the longest).
    cluster_ids: [N] optional; with ``cluster_weighting`` each epoch draws one
    random member per cluster (so every cluster weighs the same), otherwise every
    chain is used once per epoch. drop_last: drop the batches that do not divide
    evenly across ranks (shards stay disjoint); otherwise pad by repeating batches.
    with_epoch: yield ``(index, epoch)`` pairs for :class:`ProteinChainDataset`.
    """

    def __init__(self, lengths, *, squared_residue_budget: int = 500_000, max_batch_size: int = 64,
                 mode: str = "same_length", cluster_ids=None, cluster_weighting: bool = False,
                 seed: int = 0, shuffle: bool = True, rank: int | None = None,
                 world_size: int | None = None, drop_last: bool = True, with_epoch: bool = False):
        if mode not in ("same_length", "padded"):
            raise ValueError(f"mode must be 'same_length' or 'padded', got {mode!r}")
        if max_batch_size < 1 or squared_residue_budget < 1:
            raise ValueError("max_batch_size and squared_residue_budget must be positive")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if cluster_weighting and cluster_ids is None:
            raise ValueError("cluster_weighting needs cluster_ids")
        self.cluster_ids = None if cluster_ids is None else np.asarray(cluster_ids, dtype=np.int64)
        self.squared_residue_budget = int(squared_residue_budget)
        self.max_batch_size = int(max_batch_size)
        self.mode = mode
        self.cluster_weighting = cluster_weighting
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank, self.world_size = _distributed_defaults(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world size {self.world_size}")
        self.drop_last = drop_last
        self.with_epoch = with_epoch
        self.epoch = 0
        self.start_batch = 0
        self._cache_key = None
        self._cache_batches: list[list[int]] = []

    # -- state -----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start_batch(self, start_batch: int) -> None:
        """Skip the first ``start_batch`` batches of this rank in the next iteration (resume)."""
        self.start_batch = max(0, int(start_batch))

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": self.start_batch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.start_batch = int(state.get("start_batch", 0))

    # -- batches ---------------------------------------------------------------
    def batch_size_for(self, length: int) -> int:
        """Chains of this length per batch: budget / L^2 clamped to [1, max_batch_size]."""
        return int(np.clip(self.squared_residue_budget // max(int(length), 1) ** 2, 1, self.max_batch_size))

    def _epoch_indices(self, rng: np.random.Generator) -> np.ndarray:
        if not self.cluster_weighting:
            return np.arange(self.lengths.size)
        # One uniformly chosen member per cluster.
        order = rng.permutation(self.lengths.size)
        _, first = np.unique(self.cluster_ids[order], return_index=True)
        return np.sort(order[first])

    def _global_batches(self, epoch: int) -> list[list[int]]:
        rng = seeded_rng(self.seed, epoch)
        indices = self._epoch_indices(rng)
        if self.shuffle:
            indices = indices[rng.permutation(indices.size)]
        # Stable sort by length keeps the shuffled order within a length.
        indices = indices[np.argsort(self.lengths[indices], kind="stable")]
        batches: list[list[int]] = []
        if self.mode == "same_length":
            lengths = self.lengths[indices]
            for length in np.unique(lengths):
                members = indices[lengths == length]
                size = self.batch_size_for(length)
                batches.extend(members[k:k + size].tolist() for k in range(0, members.size, size))
        else:
            current: list[int] = []
            for index in indices.tolist():
                longest = self.lengths[index]  # ascending order: the newcomer is the longest
                if current and len(current) + 1 > self.batch_size_for(longest):
                    batches.append(current)
                    current = []
                current.append(index)
            if current:
                batches.append(current)
        if self.shuffle:
            batches = [batches[k] for k in rng.permutation(len(batches))]
        return batches

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's full list of batches for an epoch (default: the current one)."""
        epoch = self.epoch if epoch is None else int(epoch)
        key = (epoch, self.seed)
        if key == self._cache_key:
            return self._cache_batches
        batches = self._global_batches(epoch)
        total = len(batches)
        if total == 0:
            mine = []
        elif self.drop_last and total >= self.world_size:
            per_rank = total // self.world_size
            mine = batches[self.rank: per_rank * self.world_size: self.world_size]
        else:
            if self.drop_last:
                warnings.warn(f"{total} batches for {self.world_size} ranks: padding by repeating batches",
                              stacklevel=2)
            per_rank = -(-total // self.world_size)
            padded = [batches[k % total] for k in range(per_rank * self.world_size)]
            mine = padded[self.rank::self.world_size]
        self._cache_key, self._cache_batches = key, mine
        return mine

    def num_batches(self, epoch: int | None = None) -> int:
        return len(self.batches(epoch))

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)

    def __iter__(self):
        batches = self.batches()
        start, self.start_batch = self.start_batch, 0
        for batch in batches[start:]:
            yield [(index, self.epoch) for index in batch] if self.with_epoch else list(batch)


def collate_chains(examples: list[dict]) -> dict:
    """Stack examples (from :class:`ProteinChainDataset`) into a batch, padding to the longest.

    Returns atoms [B, L, 4, 3], rotations [B, L, 3, 3] (identity at padding),
    translations [B, L, 3], aatype [B, L] (0 at padding), residue_mask [B, L] bool
    (False at padding), residue_index [B, L], length [B], index [B], name (list of str).
    """
    if not examples:
        raise ValueError("cannot collate an empty batch")
    batch_size = len(examples)
    max_len = max(int(example["aatype"].shape[0]) for example in examples)
    first = examples[0]
    out = {
        "atoms": first["atoms"].new_zeros(batch_size, max_len, 4, 3),
        "rotations": torch.eye(3, dtype=first["rotations"].dtype).expand(batch_size, max_len, 3, 3).clone(),
        "translations": first["translations"].new_zeros(batch_size, max_len, 3),
        "aatype": torch.zeros(batch_size, max_len, dtype=torch.int64),
        "residue_mask": torch.zeros(batch_size, max_len, dtype=torch.bool),
        "residue_index": torch.zeros(batch_size, max_len, dtype=torch.int64),
    }
    for b, example in enumerate(examples):
        length = int(example["aatype"].shape[0])
        for key in out:
            out[key][b, :length] = example[key]
    out["length"] = torch.tensor([int(example["aatype"].shape[0]) for example in examples], dtype=torch.int64)
    if "index" in first:
        out["index"] = torch.stack([torch.as_tensor(example["index"]) for example in examples])
    if "name" in first:
        out["name"] = [example["name"] for example in examples]
    return out


def cluster_weights(cluster_ids) -> np.ndarray:
    """Per-chain sampling weight 1 / cluster size (for weighted samplers), [N] float64."""
    return 1.0 / cluster_sizes(np.asarray(cluster_ids)).astype(np.float64)
