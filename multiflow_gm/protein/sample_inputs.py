"""Checked inputs of ``multiflow-gm sample``: the sequence to fold and the backbone to design for.

Each check either returns a usable input plus notes on what was left out of it, or
raises :class:`~multiflow_gm.errors.UserError` with a message that names the file,
the chains and the reason; nothing here lets a bad file through as a traceback.
The chain rule is the one of :mod:`multiflow_gm.protein.chain_selection`, shared
with ``evaluate``.
"""

from __future__ import annotations

from pathlib import Path

from multiflow_gm.errors import UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.chain_selection import (
    DEFAULT_MIN_CHAIN_LENGTH,
    chain_overview,
    select_protein_chains,
)
from multiflow_gm.protein.structure import BackboneStructure

# The network's pair features need two residues.
MIN_MODEL_LENGTH = 2


def check_sequence(text: str | None) -> str:
    """The upper-case sequence to fold, or a UserError saying what is wrong with it."""
    if text is None or not "".join(text.split()):
        raise UserError("fold mode needs --sequence (one-letter amino-acid codes)")
    sequence = "".join(text.split()).upper()
    bad = [(i + 1, letter) for i, letter in enumerate(sequence) if letter not in alphabet.AA_ORDER]
    if bad:
        shown = ", ".join(f"{letter!r} at {position}" for position, letter in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UserError(f"--sequence has letters outside the 20 standard amino acids: {shown}{more}")
    if len(sequence) < MIN_MODEL_LENGTH:
        raise UserError(f"--sequence must have at least {MIN_MODEL_LENGTH} residues, got {len(sequence)}")
    return sequence


def _problem_text(problems) -> str:
    return "; ".join(f"{p.reason}" + (f" (chain {p.chain})" if p.chain else "") + (f": {p.detail}" if p.detail else "")
                     for p in problems)


def design_target(path: str | Path, chain: str | None = None,
                  min_length: int = DEFAULT_MIN_CHAIN_LENGTH) -> tuple[BackboneStructure, list[str]]:
    """The one chain of ``path`` to design a sequence for, and notes on what was left out of the file.

    Rule: among the protein chains with at least ``min_length`` complete residues,
    ``chain`` picks one by id; without ``chain`` the file must hold exactly one such
    chain, otherwise the UserError names them. Peptides and other short chains are
    left out (and noted), residues lacking N, CA, C or O are dropped (and noted).
    """
    from multiflow_gm.protein.structure_io import read_chains

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--pdb {path}: no such file")
    min_length = max(min_length, MIN_MODEL_LENGTH)
    result = read_chains(path)
    file_problems = [p for p in result.problems if not p.chain]
    if not result.chains:
        raise UserError(f"cannot read a backbone from {path}: {_problem_text(file_problems) or 'no protein chain'}")
    selected, problems = select_protein_chains(result, [chain] if chain else None, min_length)
    if chain is not None and not selected:
        raise UserError(f"--chain {chain} cannot be used from {path}: "
                        f"{_problem_text([p for p in problems if p.chain == chain])}")
    if not selected:
        raise UserError(f"{path} has no protein chain with at least {min_length} residues with N, CA, C and O "
                        f"(protein chains: {chain_overview(result.chains)}); lower --min-length or pick one "
                        "with --chain")
    if len(selected) > 1:
        raise UserError(f"{path} holds {len(selected)} protein chains: {chain_overview([s.raw for s in selected])}; "
                        "choose the one to design with --chain ID")
    target = selected[0]
    notes = [_problem_text([p]) for p in problems]
    return BackboneStructure(f"{target.raw.entry}_{target.chain_id}", target.atoms, target.aatype, str(path),
                             target.chain_id), notes
