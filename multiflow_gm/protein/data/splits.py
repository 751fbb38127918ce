"""Train / validation / test splits of a chain cache by sequence cluster.

Chains of one sequence cluster (greedy clusters at the cache's identity threshold,
computed across every input folder of the cache) always land in the same split, so
a validation or test chain has no close homologue in training. The split lives in
``splits.csv`` (columns ``name, split``) inside the cache directory, with the
settings it was made with in ``splits.json``; it is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_write_bytes
from multiflow_gm.errors import ConfigError, MissingResourceError
from multiflow_gm.protein.data.cache import ChainCache, read_csv, write_csv
from multiflow_gm.protein.seeding import seeded_rng

SPLIT_FILE = "splits.csv"
SPLIT_SETTINGS_FILE = "splits.json"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSettings:
    """Fractions of chains (not clusters) held out; whole clusters are moved until reached."""

    val_fraction: float = 0.03
    test_fraction: float = 0.03
    seed: int = 0

    def __post_init__(self):
        if self.val_fraction < 0 or self.test_fraction < 0 or self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("split fractions must be >= 0 and sum to less than 1; got "
                              f"val {self.val_fraction}, test {self.test_fraction}")


def assign_splits(cluster_ids: np.ndarray, settings: SplitSettings) -> np.ndarray:
    """Split label per chain ``[N]`` (str) from cluster ids ``[N]``.

    Clusters are visited in a seeded random order; each goes to the held-out split
    that is furthest below its target, until both targets are met. Large clusters
    are skipped for held-out splits once they would overshoot the target by more
    than half, so one huge family cannot swallow the validation set.
    """
    cluster_ids = np.asarray(cluster_ids)
    n = len(cluster_ids)
    labels = np.full(n, "train", dtype=object)
    if n == 0:
        return labels
    unique, inverse, counts = np.unique(cluster_ids, return_inverse=True, return_counts=True)
    order = seeded_rng(settings.seed).permutation(len(unique))
    targets = {"val": settings.val_fraction * n, "test": settings.test_fraction * n}
    filled = {"val": 0, "test": 0}
    cluster_split = np.full(len(unique), "train", dtype=object)
    for cluster in order:
        open_splits = [s for s in ("val", "test") if filled[s] < targets[s]]
        if not open_splits:
            break
        split = max(open_splits, key=lambda s: targets[s] - filled[s])
        if filled[split] + counts[cluster] > targets[split] + 0.5 * max(targets[split], 1):
            continue
        cluster_split[cluster] = split
        filled[split] += counts[cluster]
    labels[:] = cluster_split[inverse]
    return labels


def write_splits(cache: ChainCache, settings: SplitSettings) -> dict[str, int]:
    """Assign and store the split of every chain of ``cache``; returns chains per split."""
    labels = assign_splits(cache.cluster_ids, settings)
    rows = [{"name": name, "split": label} for name, label in zip(cache.names, labels)]
    write_csv(cache.path / SPLIT_FILE, rows, ("name", "split"))
    counts = {split: int((labels == split).sum()) for split in SPLITS}
    clusters = {split: int(len(np.unique(cache.cluster_ids[labels == split]))) for split in SPLITS}
    document = {"settings": asdict(settings), "chains": counts, "clusters": clusters,
                "residues": {split: int(cache.lengths[labels == split].sum()) for split in SPLITS}}
    atomic_write_bytes(cache.path / SPLIT_SETTINGS_FILE, (json.dumps(document, indent=1) + "\n").encode())
    return counts


def read_splits(cache_dir: str | Path) -> dict[str, str] | None:
    """``{chain name: split}`` from ``splits.csv``, or None when the cache has no split."""
    path = Path(cache_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    return {row["name"]: row["split"] for row in read_csv(path)}


def split_of(cache: ChainCache, split: str, required: bool = True) -> ChainCache:
    """The chains of ``cache`` in ``split`` (train / val / test).

    Chains added to the cache after the split was made are not in any held-out
    split, so they count as training chains; asking for a held-out split of a
    cache without ``splits.csv`` raises with the command that makes one.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}; got {split!r}")
    labels = read_splits(cache.path)
    if labels is None:
        if split == "train" and not required:
            return cache
        raise MissingResourceError(f"{cache.path} has no {SPLIT_FILE}; make one with "
                                   f"`multiflow-gm split {cache.path}`")
    keep = [i for i, name in enumerate(cache.names) if labels.get(name, "train") == split]
    return cache.subset(keep)
