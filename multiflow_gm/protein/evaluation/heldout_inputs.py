"""Targets of the held-out benchmark: chains of a cache split, or chains of structure files.

Structure files go through the chain rule of ``multiflow-gm sample --mode inverse-fold
--pdb`` and ``evaluate`` (:mod:`multiflow_gm.protein.chain_selection`): residues with
N, CA, C and O, at least ``min_length`` of them, every such protein chain a target. A
file or chain that cannot be used becomes a :class:`SkippedInput` with its reason;
dropped residues of a used chain become notes. Nothing here raises on bad file content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multiflow_gm.errors import UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.chain_selection import DEFAULT_MIN_CHAIN_LENGTH, select_protein_chains
from multiflow_gm.protein.seeding import seeded_rng
from multiflow_gm.protein.structure import BackboneStructure

MIN_MODEL_LENGTH = 2  # the network's pair features need two residues

# Reader / selection reasons that leave the chain usable (it lost some residues).
NOTE_REASONS = ("incomplete_residues_dropped",)


@dataclass
class SkippedInput:
    """A file or chain left out of the benchmark (``chain`` empty for a whole file)."""

    source: str
    chain: str
    reason: str
    detail: str = ""


def chains_from_cache(cache_dir: str | Path, split: str, max_chains: int | None = None,
                      lengths: tuple[int, int] | None = None, seed: int = 0) -> list[BackboneStructure]:
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
        indices = np.sort(seeded_rng(seed).choice(len(held_out), size=max_chains, replace=False))
    chains = []
    for index in indices:
        chain = held_out.load(int(index))
        chains.append(BackboneStructure(chain.name, chain.atoms.astype(np.float64), chain.aatype, chain.source))
    return chains


def chains_from_structure_files(paths: Sequence[str | Path], lengths: tuple[int, int] | None = None,
                                min_length: int = DEFAULT_MIN_CHAIN_LENGTH
                                ) -> tuple[list[BackboneStructure], list[SkippedInput], list[SkippedInput]]:
    """``(chains, skipped, notes)``: every usable protein chain of the files, what was left out and why.

    A chain keeps its residues with N, CA, C and O and needs ``min_length`` of them
    (at least two, for the network); chains with no standard amino acid or outside
    ``lengths`` (inclusive) are skipped too. ``notes`` list used chains that lost residues.
    """
    from multiflow_gm.protein.structure_io import read_chains

    min_length = max(min_length, MIN_MODEL_LENGTH)
    chains: list[BackboneStructure] = []
    skipped: list[SkippedInput] = []
    notes: list[SkippedInput] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            skipped.append(SkippedInput(str(path), "", "not_a_file", "no such file"))
            continue
        result = read_chains(path)
        selected, problems = select_protein_chains(result, None, min_length)
        for problem in problems:
            item = SkippedInput(problem.source, problem.chain, problem.reason, problem.detail)
            (notes if problem.reason in NOTE_REASONS else skipped).append(item)
        for chain in selected:
            problem = _chain_problem(len(chain), chain.aatype, lengths)
            if problem:
                skipped.append(SkippedInput(str(path), chain.chain_id, *problem))
                continue
            chains.append(BackboneStructure(f"{chain.raw.entry}_{chain.chain_id}", chain.atoms,
                                            np.asarray(chain.aatype, dtype=np.int64), str(path), chain.chain_id))
    return chains, skipped, notes


def _chain_problem(residues: int, aatype: np.ndarray, lengths) -> tuple[str, str] | None:
    if not (aatype < alphabet.NUM_AMINO_ACIDS).any():
        return "no_standard_residue", "every residue is unknown, so there is nothing to fold or recover"
    if lengths is not None and not lengths[0] <= residues <= lengths[1]:
        return "length_outside_range", f"{residues} residues, outside {lengths[0]}-{lengths[1]}"
    return None
