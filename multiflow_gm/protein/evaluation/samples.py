"""Reading a directory of generated samples: PDB / mmCIF files (plain or gzipped) plus an
optional FASTA file, with every skipped file listed with its reason.

A sample is one protein chain with at least ``min_length`` residues that have a
complete backbone (the rule of :mod:`multiflow_gm.protein.chain_selection`);
residue names give its sequence. A file with one such chain gives a sample named
after the file, a file with several gives one sample per chain (``name_A``,
``name_B``). Where a FASTA record has the sample's name, it must agree with the
structure's sequence in length; it then fills residues the structure file names UNK.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multiflow_gm.protein.chain_selection import DEFAULT_MIN_CHAIN_LENGTH
from multiflow_gm.protein.alphabet import indices_to_sequence

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas")
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".bcif")
MIN_SAMPLE_LENGTH = DEFAULT_MIN_CHAIN_LENGTH


@dataclass
class EvaluationChain:
    """One chain to evaluate. ``atoms`` float64 ``[L, 4, 3]`` (N, CA, C, O) in Angstrom."""

    name: str
    atoms: np.ndarray
    sequence: str
    source: str = ""

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def ca(self) -> np.ndarray:
        return self.atoms[:, 1]


@dataclass
class SkippedInput:
    """A sample file, chain or residues left out of the evaluation, and why
    (``chain`` is empty for a whole file)."""

    source: str
    reason: str
    detail: str = ""
    chain: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "chain": self.chain, "reason": self.reason, "detail": self.detail}


def _strip_suffixes(path: Path) -> str:
    name = path.name
    for suffix in (".gz",) + STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _files_below(directory: Path) -> list[Path]:
    """Files in ``directory`` and its subdirectories (hidden ones left out), sorted."""
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def sample_name(path: Path, directory: Path) -> str:
    """Name of a sample file: its path below ``directory`` without suffixes, '/' -> '_'."""
    try:
        relative = path.relative_to(directory)
    except ValueError:
        return _strip_suffixes(path)
    return "_".join(relative.parent.parts + (_strip_suffixes(relative),))


def is_structure_file(path: Path) -> bool:
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return name.endswith(STRUCTURE_SUFFIXES)


def read_fasta(path: Path) -> dict[str, str]:
    """Records ``{name: sequence}`` of a FASTA file; the name is the header's first word."""
    records: dict[str, str] = {}
    name = None
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split()[0] if line[1:].split() else f"record_{len(records)}"
            records[name] = ""
        elif name is not None and line:
            records[name] += line.upper()
    return records


def _fasta_records(directory: Path, skipped: list[SkippedInput]) -> dict[str, str]:
    records: dict[str, str] = {}
    for path in _files_below(directory):
        if path.name.lower().endswith(FASTA_SUFFIXES):
            # Records are named like the samples beside them (prefixed by their subdirectory).
            prefix = "".join(f"{part}_" for part in path.relative_to(directory).parent.parts)
            try:
                records.update({prefix + name: seq for name, seq in read_fasta(path).items()})
            except (OSError, UnicodeError) as err:
                skipped.append(SkippedInput(str(path), "unreadable_fasta", str(err)))
    return records


def _merge_sequence(name: str, structure_sequence: str, fasta: dict[str, str],
                    source: str, skipped: list[SkippedInput]) -> str:
    fasta_sequence = fasta.get(name)
    if fasta_sequence is None:
        return structure_sequence
    if len(fasta_sequence) != len(structure_sequence):
        skipped.append(SkippedInput(source, "fasta_length_mismatch",
                                    f"FASTA {len(fasta_sequence)} vs structure {len(structure_sequence)} residues; "
                                    "structure sequence used"))
        return structure_sequence
    return "".join(f if s == "X" else s for s, f in zip(structure_sequence, fasta_sequence))


def load_sample_directory(directory: str | Path, chain_ids: list[str] | None = None,
                          min_length: int = MIN_SAMPLE_LENGTH) -> tuple[list[EvaluationChain], list[SkippedInput]]:
    """Every usable protein chain of the structure files in ``directory`` and its
    subdirectories (a sample in ``length_100/sample_3.pdb`` is named ``length_100_sample_3``).

    Returns (chains, skipped). ``chain_ids`` keeps only those chains of each file;
    ``min_length`` is the fewest complete residues a chain needs. Unreadable files,
    absent chains and short chains are skipped with a reason; residues missing a
    backbone atom are dropped from their chain (and listed). Never raises for a bad
    file; raises ``FileNotFoundError`` / ``NotADirectoryError`` for a missing directory.
    """
    from multiflow_gm.protein.chain_selection import select_protein_chains
    from multiflow_gm.protein.structure_io import read_chains

    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"samples directory {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"samples path {directory} is not a directory")
    skipped: list[SkippedInput] = []
    fasta = _fasta_records(directory, skipped)
    chains: list[EvaluationChain] = []
    file_names: set[str] = set()
    for path in _files_below(directory):
        if not is_structure_file(path):
            if not path.name.lower().endswith(FASTA_SUFFIXES):
                skipped.append(SkippedInput(str(path), "not_a_structure_file", "unknown file suffix"))
            continue
        selected, problems = select_protein_chains(read_chains(path), chain_ids, min_length)
        skipped.extend(SkippedInput(p.source, p.reason, p.detail, p.chain) for p in problems)
        stem = sample_name(path, directory)
        file_names.add(stem)
        for item in selected:
            name = stem if len(selected) == 1 else f"{stem}_{item.chain_id}"
            sequence = _merge_sequence(name, indices_to_sequence(item.aatype), fasta, str(path), skipped)
            chains.append(EvaluationChain(name=name, atoms=item.atoms, sequence=sequence, source=str(path)))
    seen = {chain.name for chain in chains} | file_names
    for name in fasta:
        if name not in seen:
            skipped.append(SkippedInput(f"FASTA record {name}", "missing_structure_file",
                                        f"no structure file named {name}.pdb (or .cif) in {directory}"))
    return chains, skipped
