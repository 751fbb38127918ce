"""Which chains of a structure file a command uses: one rule for ``evaluate`` and ``sample``.

A *protein chain* is a chain with at least one amino-acid ATOM record (chains made
only of HETATM amino acids are ligands and are not chains here; see
:func:`multiflow_gm.protein.structure_io.read_chains`, which also decides first
model, first alternate location, insertion codes and MSE-like residues for every
command). Within a protein chain, a residue is used only if it has all four
backbone atoms N, CA, C and O; residues lacking one are dropped and the drop is
reported. A chain is usable when at least ``min_length`` residues remain; shorter
chains (peptides) are reported as ``too_short``. ``chain_ids`` restricts the
choice to the named chains (author chain ids, case-sensitive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multiflow_gm.protein.structure_io import Problem, ReadResult, RawChain

# Shorter chains are peptides bound to a protein rather than samples or design
# targets; --min-length lowers it.
DEFAULT_MIN_CHAIN_LENGTH = 10


@dataclass
class SelectedChain:
    """A usable chain and the residues kept (``keep`` bool ``[R]``: complete backbone)."""

    raw: RawChain
    keep: np.ndarray

    @property
    def chain_id(self) -> str:
        return self.raw.chain_id

    @property
    def atoms(self) -> np.ndarray:
        """float64 ``[L, 4, 3]`` N, CA, C, O of the kept residues (Angstrom)."""
        return self.raw.atoms[self.keep].astype(np.float64)

    @property
    def aatype(self) -> np.ndarray:
        """int64 ``[L]`` residue types of the kept residues (20 = unknown)."""
        return self.raw.aatype[self.keep]

    def __len__(self) -> int:
        return int(self.keep.sum())


def residue_label(raw: RawChain, index: int) -> str:
    """Author label of residue ``index``: number plus insertion code, e.g. '52A'."""
    return f"{int(raw.res_id[index])}{str(raw.ins_code[index]).strip()}"


def chain_overview(chains: Sequence[RawChain]) -> str:
    """'A (120 residues), B (5 residues)': complete-backbone residues per chain."""
    return ", ".join(f"{raw.chain_id} ({int(raw.complete.sum())} residues)" for raw in chains) or "none"


def select_protein_chains(result: ReadResult, chain_ids: Sequence[str] | None = None,
                          min_length: int = DEFAULT_MIN_CHAIN_LENGTH) -> tuple[list[SelectedChain], list[Problem]]:
    """The usable chains of one read file (file order) and what was left out, with reasons.

    Problems: the reader's own (unreadable file, duplicate atoms, ...), then
    ``chain_not_found`` (a requested id absent; the detail names the chains present),
    ``incomplete_residues_dropped`` (residues lacking a backbone atom, with the first
    one) and ``too_short`` (fewer than ``min_length`` complete residues).
    """
    problems = list(result.problems)
    chains = result.chains
    if chain_ids:
        present = {raw.chain_id for raw in chains}
        for wanted in chain_ids:
            if wanted not in present:
                problems.append(Problem(result.source, wanted, "chain_not_found",
                                        f"no protein chain {wanted!r}; protein chains: {chain_overview(chains)}"))
        chains = [raw for raw in chains if raw.chain_id in set(chain_ids)]
    selected = []
    for raw in chains:
        keep = raw.complete
        dropped = np.flatnonzero(~keep)
        if dropped.size:
            problems.append(Problem(result.source, raw.chain_id, "incomplete_residues_dropped",
                                    f"{dropped.size} of {len(raw)} residues lack N, CA, C or O "
                                    f"(first: {residue_label(raw, int(dropped[0]))})"))
        if int(keep.sum()) < min_length:
            problems.append(Problem(result.source, raw.chain_id, "too_short",
                                    f"{int(keep.sum())} residues with a complete backbone < {min_length} "
                                    "(--min-length)"))
            continue
        selected.append(SelectedChain(raw, keep))
    return selected, problems
