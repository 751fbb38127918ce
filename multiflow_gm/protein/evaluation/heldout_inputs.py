"""Targets of the held-out benchmark: chains of a cache split, or chains of structure files.

Structure files go through the same filter as ``multiflow-gm sample --mode inverse-fold
--pdb``: residues with N, CA and C present, at least two of them. A file or chain that
cannot be used becomes a :class:`SkippedInput` with its reason; nothing here raises on
bad file content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multiflow_gm.errors import UserError
from multiflow_gm.protein import residue_constants as rc
from multiflow_gm.protein.evaluation.heldout import NativeChain

MIN_RESIDUES = 2  # the sampler needs at least two residues


@dataclass
class SkippedInput:
    """A file or chain left out of the benchmark (``chain`` empty for a whole file)."""

    source: str
    chain: str
    reason: str
    detail: str = ""


def chains_from_cache(cache_dir: str | Path, split: str, max_chains: int | None = None,
                      lengths: tuple[int, int] | None = None, seed: int = 0) -> list[NativeChain]:
    """Chains of ``split`` (train / val / test) of a preprocessed cache.

    Chains outside ``lengths`` (inclusive, residues) are dropped first; then
    ``max_chains`` of them are chosen at random with ``seed`` (the same seed and cache
    give the same chains), returned in cache order.
    """
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import split_of

    held_out = split_of(ChainCache(cache_dir), split)
    if lengths is not None:
        held_out = held_out.filter_length(lengths[0], lengths[1])
    if len(held_out) == 0:
        window = f" with {lengths[0]}-{lengths[1]} residues" if lengths else ""
        raise UserError(f"the {split} split of {cache_dir} has no chain{window}")
    indices = np.arange(len(held_out))
    if max_chains is not None and max_chains < len(held_out):
        indices = np.sort(np.random.default_rng(seed).choice(len(held_out), size=max_chains, replace=False))
    chains = []
    for index in indices:
        chain = held_out.load(int(index))
        chains.append(NativeChain(chain.name, chain.atoms.astype(np.float64), chain.aatype, chain.source))
    return chains


def chains_from_structure_files(paths: Sequence[str | Path], lengths: tuple[int, int] | None = None
                                ) -> tuple[list[NativeChain], list[SkippedInput]]:
    """Every usable protein chain of the files, and what was skipped with its reason.

    Each chain keeps its residues with N, CA and C present (O may be missing: NaN);
    chains with fewer than two such residues, with no standard amino acid, or outside
    ``lengths`` (inclusive) are skipped.
    """
    from multiflow_gm.protein.structure_io import read_chains

    chains: list[NativeChain] = []
    skipped: list[SkippedInput] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            skipped.append(SkippedInput(str(path), "", "not_a_file", "no such file"))
            continue
        result = read_chains(path)
        skipped += [SkippedInput(p.source, p.chain, p.reason, p.detail) for p in result.problems]
        for raw in result.chains:
            atoms = np.asarray(raw.atoms, dtype=np.float64)
            complete = np.isfinite(atoms[:, :3]).all(axis=(1, 2))
            aatype = np.asarray(raw.aatype, dtype=np.int64)[complete]
            problem = _chain_problem(int(complete.sum()), aatype, lengths)
            if problem:
                skipped.append(SkippedInput(str(path), raw.chain_id, *problem))
                continue
            chains.append(NativeChain(f"{raw.entry}_{raw.chain_id}", atoms[complete], aatype, str(path)))
    return chains, skipped


def _chain_problem(residues: int, aatype: np.ndarray, lengths) -> tuple[str, str] | None:
    if residues < MIN_RESIDUES:
        return "too_few_residues", f"{residues} residue(s) with N, CA and C; need {MIN_RESIDUES}"
    if not (aatype < rc.NUM_STANDARD).any():
        return "no_standard_residue", "every residue is unknown, so there is nothing to fold or recover"
    if lengths is not None and not lengths[0] <= residues <= lengths[1]:
        return "length_outside_range", f"{residues} residues, outside {lengths[0]}-{lengths[1]}"
    return None
