"""Torch dataset over a chain cache: centred, randomly rotated backbones with frames.

The random rotation of an example depends only on (seed, epoch, index), so a
resumed run sees exactly the same data whatever the number of loader workers.
The epoch comes from :meth:`ProteinChainDataset.set_epoch` or, more robustly with
persistent loader workers, with the index itself: ``dataset[(index, epoch)]``
(what :class:`~multiflow_gm.protein.data.batching.LengthBatchSampler` yields with
``with_epoch=True``).

With ``designed_sequence_fraction > 0`` an example's native sequence is replaced, with
that probability, by one of the chain's ProteinMPNN designs (``multiflow-gm distill``,
stored in ``<cache>/designed/``). That draw uses its own random stream of
(seed, epoch, index), so the rotations are the same whatever the fraction.
``designed_max_type_fraction`` leaves out low-complexity designs: ProteinMPNN at
temperature 0.1 writes some sequences that are mostly one residue type (E, K, L in long
helices), and a model trained on them learns to write such sequences too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.distill import designed_path, load_designs
from multiflow_gm.core.spaces import so3
from multiflow_gm.protein.geometry import frames_from_backbone
from multiflow_gm.protein.coordinates import centre_on_ca
from multiflow_gm.protein.seeding import seed_from, seeded_rng


def _augmentation_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return seeded_generator(seed_from(seed, epoch, index))


def _sequence_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The designed-sequence draw of an example: a stream of (seed, epoch, index) apart from
    the rotation's (another spawn key of the same seed sequence)."""
    return seeded_rng(seed, epoch, index, spawn_key=(1,))


class ProteinChainDataset(Dataset):
    """Examples from a :class:`ChainCache`.

    Each example is a dict of tensors for one chain of length L:
    ``atoms`` float32 [L, 4, 3] (N, CA, C, O; Angstrom, CA centroid at the origin,
    uniformly random rotation), ``rotations`` [L, 3, 3] and ``translations`` [L, 3]
    (frames of those atoms, see :func:`frames_from_backbone`), ``aatype`` int64 [L]
    (20 = unknown), ``residue_mask`` bool [L] (all True), ``residue_index`` int64 [L]
    (author numbering shifted to start at 0), ``length`` int64 scalar, ``index`` int64
    scalar (position in the cache), and ``name`` (str).

    ``designed_sequence_fraction`` in [0, 1]: probability that ``aatype`` is one of the
    chain's K designed sequences (uniformly chosen) instead of the native one; chains
    without designs keep the native sequence. ``chains_with_designs`` /
    ``chains_without_designs`` count the chains with and without a designs file.
    ``preload`` keeps the chains, and the designs when the fraction is positive, in memory.
    ``designed_max_type_fraction`` in (0, 1]: a design in which one residue type makes up more
    than this fraction of the chain is never drawn (a chain whose designs are all such keeps
    its native sequence); 1.0 keeps every design.
    """

    def __init__(self, cache: ChainCache | str | Path, *, seed: int = 0, random_rotation: bool = True,
                 center: bool = True, preload: bool = False, designed_sequence_fraction: float = 0.0,
                 designed_max_type_fraction: float = 1.0):
        self.cache = cache if isinstance(cache, ChainCache) else ChainCache(cache)
        self.seed = int(seed)
        self.random_rotation = random_rotation
        self.center = center
        self.epoch = 0
        fraction = float(designed_sequence_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"designed_sequence_fraction must lie in [0, 1], got {designed_sequence_fraction}")
        self.designed_sequence_fraction = fraction
        if not 0.0 < float(designed_max_type_fraction) <= 1.0:
            raise ValueError(f"designed_max_type_fraction must lie in (0, 1], got {designed_max_type_fraction}")
        self.designed_max_type_fraction = float(designed_max_type_fraction)
        self._has_designs = np.array([designed_path(self.cache.path, name).is_file() for name in self.cache.names],
                                     dtype=bool)
        self.chains_with_designs = int(self._has_designs.sum())
        self.chains_without_designs = len(self.cache) - self.chains_with_designs
        self._preloaded = [self.cache.load(i) for i in range(len(self.cache))] if preload else None
        self._preloaded_designs = None
        if preload and fraction > 0:
            self._preloaded_designs = [self._load_designs(i) if self._has_designs[i] else None
                                       for i in range(len(self.cache))]

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def lengths(self) -> np.ndarray:
        return self.cache.lengths

    @property
    def cluster_ids(self) -> np.ndarray:
        return self.cache.cluster_ids

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _load_designs(self, index: int) -> np.ndarray:
        """The chain's designed sequences that pass ``designed_max_type_fraction``, int64 [K', L]
        in AA_ORDER indices (K' may be 0)."""
        record = self.cache.records[index]
        path = designed_path(self.cache.path, record.name)
        aatype = load_designs(path)["aatype"]
        if aatype.ndim != 2 or aatype.shape[0] < 1 or aatype.shape[1] != record.length:
            raise ValueError(f"{path}: designs of shape {tuple(aatype.shape)} do not fit the chain "
                             f"({record.length} residues); rerun `multiflow-gm distill {self.cache.path}`")
        if self.designed_max_type_fraction < 1.0:
            commonest = np.array([np.bincount(row).max() for row in aatype]) / aatype.shape[1]
            aatype = aatype[commonest <= self.designed_max_type_fraction]
        return aatype

    def _sequence(self, index: int, epoch: int, native: np.ndarray) -> np.ndarray:
        """The example's residue types [L]: native, or a design with probability designed_sequence_fraction."""
        if self.designed_sequence_fraction <= 0 or not self._has_designs[index]:
            return native
        rng = _sequence_generator(self.seed, epoch, index)
        if rng.random() >= self.designed_sequence_fraction:
            return native
        designs = self._preloaded_designs[index] if self._preloaded_designs is not None else self._load_designs(index)
        if len(designs) == 0:
            return native
        return designs[int(rng.integers(len(designs)))]

    def __getitem__(self, item) -> dict:
        index, epoch = (int(item[0]), int(item[1])) if isinstance(item, (tuple, list)) else (int(item), self.epoch)
        chain = self._preloaded[index] if self._preloaded is not None else self.cache.load(index)
        # numpy for the per-example arithmetic: tiny torch matmuls contend for threads.
        atoms_np = np.asarray(chain.atoms, dtype=np.float64)
        if self.center:
            atoms_np = centre_on_ca(atoms_np)
        if self.random_rotation:
            rotation = so3.uniform((), dtype=torch.float64,
                                   generator=_augmentation_generator(self.seed, epoch, index))
            atoms_np = atoms_np @ rotation.numpy().T
        atoms = torch.from_numpy(atoms_np.astype(np.float32))
        rotations, translations = frames_from_backbone(atoms[:, 0], atoms[:, 1], atoms[:, 2])
        residue_index = torch.from_numpy(chain.residue_index.astype(np.int64))
        length = atoms.shape[0]
        return {
            "atoms": atoms,
            "rotations": rotations,
            "translations": translations,
            "aatype": torch.from_numpy(self._sequence(index, epoch, chain.aatype).astype(np.int64)),
            "residue_mask": torch.ones(length, dtype=torch.bool),
            "residue_index": residue_index - residue_index[0] if length else residue_index,
            "length": torch.tensor(length, dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
            "name": chain.name,
        }
