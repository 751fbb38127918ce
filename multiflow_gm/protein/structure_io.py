"""Reading structure files into raw backbone chains (writing lives in ``pdb_writer``).

:func:`read_chains` reads PDB, mmCIF and BinaryCIF files, plain or gzipped, with
biotite: first model, first alternate location, residues keyed by (number,
insertion code). It never raises on a bad file; problems come back as
:class:`Problem` records with a short machine-readable reason. Filtering by
length, breaks, secondary structure etc. lives in :mod:`multiflow_gm.protein.data.filters`.

Coordinates are float32 Angstrom.
"""

from __future__ import annotations

import io
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.protein import alphabet
from multiflow_gm.protein import residue_constants as rc

DEFAULT_MAX_FILE_MB = 100.0
# Largest |coordinate| accepted (Angstrom); the PDB format itself stops at 9999.999.
MAX_ABS_COORDINATE = 9999.0
# A C(i)-N(i+1) distance below this is a peptide bond (Angstrom).
PEPTIDE_BOND_MAX = 2.0

_TEXT_BYTES = bytes([9, 10, 13, *range(32, 127)])
_BACKBONE_SLOT = {name: i for i, name in enumerate(rc.BACKBONE_ATOMS)}
_STRUCTURE_SUFFIXES = {".pdb": "pdb", ".ent": "pdb", ".pdb1": "pdb", ".cif": "cif",
                       ".mmcif": "cif", ".bcif": "bcif"}


@dataclass
class ProteinChain:
    """One protein chain's backbone (numpy).

    atoms float32 [L, 4, 3] (N, CA, C, O; Angstrom), aatype int64 [L] (indices in
    ``AA_ORDER``, 20 = unknown), residue_index int32 [L] (author numbering while it
    increases strictly, otherwise renumbered consecutively from the first number),
    bfactor float32 [L] (CA B-factor), source: the file it came from.
    """

    name: str
    atoms: np.ndarray
    aatype: np.ndarray
    residue_index: np.ndarray
    bfactor: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return int(self.aatype.shape[0])

    @property
    def sequence(self) -> str:
        return alphabet.indices_to_sequence(self.aatype)

    @property
    def ca(self) -> np.ndarray:
        return self.atoms[:, 1]


@dataclass
class Problem:
    """Why a file or a chain was not used. ``chain`` is empty for file-level problems."""

    source: str
    chain: str
    reason: str
    detail: str = ""


@dataclass
class RawChain:
    """A chain as read, before filtering; missing atoms are NaN.

    atoms float32 [R, 4, 3] (N, CA, C, O), aatype int64 [R], res_id int32 [R],
    ins_code [R] str, res_name [R] str, bfactor float32 [R].
    """

    entry: str
    chain_id: str
    atoms: np.ndarray
    aatype: np.ndarray
    res_id: np.ndarray
    ins_code: np.ndarray
    res_name: np.ndarray
    bfactor: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return int(self.aatype.shape[0])

    @property
    def complete(self) -> np.ndarray:
        """[R] bool: all four backbone atoms present."""
        return np.isfinite(self.atoms).all(axis=(1, 2))

    def to_protein_chain(self, keep: np.ndarray | None = None, name: str | None = None) -> ProteinChain:
        """The residues selected by ``keep`` (default: those with a complete backbone)."""
        keep = self.complete if keep is None else keep
        return ProteinChain(
            name=name or f"{self.entry}_{self.chain_id}",
            atoms=np.ascontiguousarray(self.atoms[keep], dtype=np.float32),
            aatype=self.aatype[keep].astype(np.int64),
            residue_index=monotonic_residue_index(self.res_id[keep]),
            bfactor=self.bfactor[keep].astype(np.float32),
            source=self.source,
        )


@dataclass
class ReadResult:
    """Chains read from one file, and the problems met (file-level or per chain)."""

    source: str
    entry: str
    chains: list[RawChain] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.chains)


def monotonic_residue_index(res_id: np.ndarray) -> np.ndarray:
    """Author numbers if they increase strictly, else first number + position (int32 [L])."""
    res_id = np.asarray(res_id, dtype=np.int64)
    if res_id.size and np.all(np.diff(res_id) > 0):
        return res_id.astype(np.int32)
    start = int(res_id[0]) if res_id.size else 0
    return (start + np.arange(res_id.size)).astype(np.int32)


def entry_id_from_path(path: str | Path) -> str:
    """'1ABC.pdb.gz' -> '1abc'; 'pdb1abc.ent.gz' -> '1abc'; other stems lower-cased."""
    name = Path(path).name.lower()
    for suffix in (".gz",) + tuple(_STRUCTURE_SUFFIXES):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.startswith("pdb") and len(name) == 7:
        name = name[3:]
    return name


def structure_format(path: str | Path) -> str | None:
    """'pdb', 'cif' or 'bcif' from the file name (a trailing .gz ignored), else None."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _STRUCTURE_SUFFIXES.get(Path(name).suffix)


class _FileProblem(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise _FileProblem("empty_file", "0 bytes")
    if size > max_bytes:
        raise _FileProblem("file_too_large", f"{size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB")
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    # Decompress with a cap so a gzip bomb cannot exhaust memory.
    out = io.BytesIO()
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        chunk = decompressor.decompress(data, max_bytes + 1)
        out.write(chunk)
        while decompressor.unconsumed_tail and out.tell() <= max_bytes:
            out.write(decompressor.decompress(decompressor.unconsumed_tail, max_bytes + 1 - out.tell()))
    except zlib.error as err:
        raise _FileProblem("corrupt_gzip", str(err)) from None
    if out.tell() > max_bytes:
        raise _FileProblem("file_too_large", f"decompresses to more than {max_bytes / 1e6:.1f} MB")
    if not decompressor.eof:
        raise _FileProblem("truncated_file", "gzip stream ends early")
    text = out.getvalue()
    if not text:
        raise _FileProblem("empty_file", "gzip holds 0 bytes")
    return text


def _looks_binary(data: bytes) -> bool:
    head = data[:65536]
    if b"\x00" in head:
        return True
    non_text = len(head.translate(None, _TEXT_BYTES))
    return non_text > 0.05 * len(head)


def _padded_atom_names(names) -> str:
    """Regex alternation of each name in every padding of PDB's 4-character atom-name field."""
    options = [" " * pad + name + " " * (4 - len(name) - pad) for name in names for pad in range(5 - len(name))]
    return "|".join(re.escape(option) for option in options)


# Backbone-named ATOM/HETATM records (waters excluded) and model markers, whole lines.
_PDB_KEPT_LINE = re.compile(
    r"^(?:(?:ATOM  |HETATM).{6}(?:%s).(?!HOH).*|MODEL .*|ENDMDL.*)$" % _padded_atom_names(rc.BACKBONE_ATOMS),
    re.MULTILINE)
_PDB_ATOM_RECORD = re.compile(r"^(?:ATOM  |HETATM)", re.MULTILINE)


def _pdb_backbone_lines(text: str) -> list[str]:
    """ATOM/HETATM lines of backbone-named atoms (waters excluded) plus model markers.

    Pre-selecting lines (one C-level regex pass) keeps biotite's parser on about a
    third of the records; raises _FileProblem for coordinate records too short to
    hold coordinates.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not _PDB_ATOM_RECORD.search(text):
        raise _FileProblem("no_atoms", "no ATOM or HETATM records")
    kept = _PDB_KEPT_LINE.findall(text)
    for line in kept:
        if len(line.rstrip()) < 54 and not line.startswith(("MODEL", "ENDMDL")):
            raise _FileProblem("malformed_file", f"coordinate record cut short: {line.strip()[:40]!r}")
    return kept


def _parse_atoms(data: bytes, fmt: str):
    """biotite AtomArray of the first model, first altloc, with B-factors."""
    import biotite.structure.io.pdb as pdb
    import biotite.structure.io.pdbx as pdbx

    if fmt == "bcif":
        block_file = pdbx.BinaryCIFFile.read(io.BytesIO(data))
        return pdbx.get_structure(block_file, model=1, altloc="first", extra_fields=["b_factor"])
    if _looks_binary(data):
        raise _FileProblem("binary_garbage", "not a text structure file")
    text = data.decode("latin-1")
    if fmt == "cif" or (fmt is None and text.lstrip().startswith("data_")):
        cif = pdbx.CIFFile.read(io.StringIO(text))
        return pdbx.get_structure(cif, model=1, altloc="first", extra_fields=["b_factor"])
    lines = _pdb_backbone_lines(text)
    if not any(line.startswith(("ATOM", "HETATM")) for line in lines):
        raise _FileProblem("no_protein", "no backbone atoms")
    pdb_file = pdb.PDBFile.read(io.StringIO("\n".join(lines)))
    return pdb_file.get_structure(model=1, altloc="first", extra_fields=["b_factor"])


def read_chains(path: str | Path, *, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> ReadResult:
    """Read the protein chains of one structure file; never raises on a bad file.

    Returns a :class:`ReadResult` whose ``chains`` hold every chain with at least
    one amino-acid ATOM record (missing backbone atoms as NaN) and whose
    ``problems`` say why the file or a chain was dropped (reasons: empty_file,
    file_too_large, corrupt_gzip, truncated_file, binary_garbage, malformed_file,
    no_atoms, no_protein, parse_error, unreadable; per chain: duplicate_atoms,
    absurd_coordinates). The size limit is checked before anything is parsed.
    """
    path = Path(path)
    source = str(path)
    result = ReadResult(source=source, entry=entry_id_from_path(path))
    try:
        data = _read_bytes(path, int(max_file_mb * 1e6))
        with warnings.catch_warnings():  # biotite warns about absent optional CIF columns; not a problem
            warnings.simplefilter("ignore", UserWarning)
            atoms = _parse_atoms(data, structure_format(path))
        result.chains, result.problems = _chains_from_atoms(atoms, result.entry, source)
    except _FileProblem as problem:
        result.problems.append(Problem(source, "", problem.reason, problem.detail))
        return result
    except (OSError, EOFError) as err:
        reason = "truncated_file" if isinstance(err, EOFError) else "unreadable"
        result.problems.append(Problem(source, "", reason, _short(err)))
        return result
    except Exception as err:  # biotite raises many types on malformed content
        result.problems.append(Problem(source, "", "parse_error", f"{type(err).__name__}: {_short(err)}"))
        return result
    if not result.chains and not result.problems:
        result.problems.append(Problem(source, "", "no_protein", "no amino-acid ATOM records"))
    return result


def _short(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text[:limit]


def _amino_acid_names(names) -> list[str]:
    """The residue names among ``names`` that are amino acids (PDB chemical component dictionary) or UNK."""
    import biotite.structure as struc

    probe = struc.AtomArray(len(names))
    probe.res_name = np.asarray(names)
    return [name for name, keep in zip(names, struc.filter_amino_acids(probe)) if keep or name == "UNK"]


def _chains_from_atoms(array, entry: str, source: str):
    """Split a biotite AtomArray into RawChains of amino-acid residues (file order kept)."""
    array = array[np.isin(array.atom_name, list(_BACKBONE_SLOT))]
    if array.array_length() == 0:
        return [], [Problem(source, "", "no_protein", "no backbone atoms")]
    array = array[np.isin(array.res_name, _amino_acid_names(np.unique(array.res_name)))]
    if array.array_length() == 0:
        return [], [Problem(source, "", "no_protein", "no amino-acid residues")]
    if not (~array.hetero).any():
        return [], [Problem(source, "", "no_protein", "amino acids only as HETATM records")]

    chains, problems = [], []
    chain_ids = list(dict.fromkeys(array.chain_id.tolist()))
    for chain_id in chain_ids:
        sub = array[array.chain_id == chain_id]
        if not (~sub.hetero).any():
            continue  # a ligand made of amino acids, not a polymer chain
        raw, problem = _raw_chain(sub, entry, str(chain_id), source)
        if problem is not None:
            problems.append(problem)
        else:
            chains.append(raw)
    return chains, problems


def _raw_chain(sub, entry: str, chain_id: str, source: str):
    import biotite.structure as struc

    starts = struc.get_residue_starts(sub)
    n_res = len(starts)
    residue_of_atom = np.searchsorted(starts, np.arange(sub.array_length()), side="right") - 1
    slot = np.array([_BACKBONE_SLOT[name] for name in sub.atom_name], dtype=np.int64)
    counts = np.zeros((n_res, 4), dtype=np.int64)
    np.add.at(counts, (residue_of_atom, slot), 1)
    res_id = sub.res_id[starts].astype(np.int32)
    ins_code = sub.ins_code[starts].astype(str)
    keys = list(zip(res_id.tolist(), ins_code.tolist()))
    if (counts > 1).any() or len(set(keys)) != len(keys):
        bad = int(np.argmax((counts > 1).any(axis=1))) if (counts > 1).any() else _first_repeat(keys)
        detail = f"residue {res_id[bad]}{ins_code[bad].strip()} has repeated backbone atoms"
        return None, Problem(source, chain_id, "duplicate_atoms", detail)

    coords = np.asarray(sub.coord, dtype=np.float64)
    if not np.isfinite(coords).all() or np.abs(coords).max() > MAX_ABS_COORDINATE:
        return None, Problem(source, chain_id, "absurd_coordinates",
                             f"non-finite or |x| > {MAX_ABS_COORDINATE:g} A")
    atoms = np.full((n_res, 4, 3), np.nan, dtype=np.float32)
    atoms[residue_of_atom, slot] = coords
    bfactor = np.zeros(n_res, dtype=np.float32)
    is_ca = slot == 1
    bfactor[residue_of_atom[is_ca]] = sub.b_factor[is_ca]
    res_name = sub.res_name[starts].astype(str)
    hetero = sub.hetero[starts]
    keep = _trim_unbonded_hetero_ends(atoms, hetero)
    raw = RawChain(
        entry=entry, chain_id=chain_id, atoms=atoms[keep],
        aatype=np.array([alphabet.residue_index(name) for name in res_name[keep]], dtype=np.int64),
        res_id=res_id[keep], ins_code=ins_code[keep], res_name=res_name[keep],
        bfactor=bfactor[keep], source=source,
    )
    return raw, None


def _first_repeat(keys) -> int:
    seen = set()
    for i, key in enumerate(keys):
        if key in seen:
            return i
        seen.add(key)
    return 0


def _trim_unbonded_hetero_ends(atoms: np.ndarray, hetero: np.ndarray) -> np.ndarray:
    """Drop HETATM amino acids at either end that are not peptide-bonded (bound ligands)."""
    keep = np.ones(len(hetero), dtype=bool)

    def bonded(i: int, j: int) -> bool:  # C of residue i to N of residue j
        d = np.linalg.norm(atoms[i, 2] - atoms[j, 0])
        return bool(np.isfinite(d) and d <= PEPTIDE_BOND_MAX)

    lo, hi = 0, len(hetero) - 1
    while lo < hi and hetero[lo] and not bonded(lo, lo + 1):
        keep[lo] = False
        lo += 1
    while hi > lo and hetero[hi] and not bonded(hi - 1, hi):
        keep[hi] = False
        hi -= 1
    return keep
