"""The preprocessed chain cache: layout, safe (pickle-free) storage and the reader.

Layout of a cache directory::

    chains/<name>.npz      one per accepted chain (np.savez_compressed, no pickle):
                           atoms float32 [L, 4, 3] (N, CA, C, O; Angstrom),
                           aatype int64 [L], residue_index int32 [L], bfactor float32 [L]
    records/<entry>.json   per input file: accepted chain metadata and rejections
                           (written last, so a file counts as done only when complete)
    metadata.csv           one row per accepted chain (METADATA_COLUMNS)
    rejections.csv         source, chain, reason, detail
    preprocess_config.json the settings the cache was built with
    summary.json           counts per reason
    clusters.json          cluster ids with the chains and settings they were computed for
    summary.png            lengths, secondary structure, Rg and rejection counts

Every file is written to a temporary name and renamed, so a killed run leaves no
half-written entry.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from multiflow_gm.errors import MissingResourceError
from multiflow_gm.atomic_files import atomic_write_bytes
from multiflow_gm.protein.structure_io import ProteinChain

CHAINS_DIR = "chains"
RECORDS_DIR = "records"
METADATA_FILE = "metadata.csv"
REJECTIONS_FILE = "rejections.csv"
CONFIG_FILE = "preprocess_config.json"
SUMMARY_FILE = "summary.json"
CLUSTERS_FILE = "clusters.json"
SUMMARY_PLOT_FILE = "summary.png"

REJECTION_COLUMNS = ("source", "chain", "reason", "detail")


@dataclass
class ChainRecord:
    """Metadata of one cached chain (a row of metadata.csv). Fractions in [0, 1], Rg in Angstrom."""

    name: str
    entry: str
    chain: str
    segment: int
    length: int
    helix: float
    strand: float
    coil: float
    radius_of_gyration: float
    sequence: str
    source: str
    cluster: int = -1  # -1 when no clustering was computed


METADATA_COLUMNS = tuple(f.name for f in fields(ChainRecord))
_CASTS = {f.name: {"int": int, "float": float, "str": str}[f.type] for f in fields(ChainRecord)}


def record_from_row(row: dict) -> ChainRecord:
    return ChainRecord(**{key: _CASTS[key](row[key]) for key in METADATA_COLUMNS if key in row})


def save_chain(path: Path, chain: ProteinChain) -> None:
    """Store one chain as a compressed npz (atomic)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        atoms=np.asarray(chain.atoms, dtype=np.float32),
        aatype=np.asarray(chain.aatype, dtype=np.int64),
        residue_index=np.asarray(chain.residue_index, dtype=np.int32),
        bfactor=np.asarray(chain.bfactor, dtype=np.float32),
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_chain(path: Path, name: str, source: str = "") -> ProteinChain:
    """Read one chain npz (pickle disabled)."""
    with np.load(path, allow_pickle=False) as data:
        return ProteinChain(
            name=name, atoms=data["atoms"].astype(np.float32), aatype=data["aatype"].astype(np.int64),
            residue_index=data["residue_index"].astype(np.int32), bfactor=data["bfactor"].astype(np.float32),
            source=source,
        )


def write_csv(path: Path, rows: list[dict], columns) -> None:
    """Write rows (dicts) as CSV with the given columns, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_json(path: Path, data) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


class ChainCache:
    """Read access to a preprocessed cache directory.

    ``records``: list of :class:`ChainRecord` (metadata.csv order); ``len(cache)``;
    ``load(name_or_index) -> ProteinChain``; ``lengths`` / ``cluster_ids`` arrays.
    """

    def __init__(self, path: str | Path, records: list[ChainRecord] | None = None):
        self.path = Path(path)
        metadata = self.path / METADATA_FILE
        if records is None:
            if not metadata.is_file() or not (self.path / CHAINS_DIR).is_dir():
                raise MissingResourceError(
                    f"{self.path} is not a chain cache (no {METADATA_FILE} or {CHAINS_DIR}/); "
                    "build one with `multiflow-gm preprocess INPUT --out DIR`")
            records = [record_from_row(row) for row in read_csv(metadata)]
        self.records = records
        self._index = {record.name: i for i, record in enumerate(records)}

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"ChainCache({str(self.path)!r}, {len(self)} chains)"

    @property
    def names(self) -> list[str]:
        return [record.name for record in self.records]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([record.length for record in self.records], dtype=np.int64)

    @property
    def cluster_ids(self) -> np.ndarray:
        """[N] int64 cluster id per chain; each chain its own cluster where none was computed."""
        ids = np.array([record.cluster for record in self.records], dtype=np.int64)
        if ids.size and (ids < 0).any():
            return np.arange(len(ids), dtype=np.int64)
        return ids

    def index_of(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no chain named {name!r} in {self.path}") from None

    def record(self, name_or_index: str | int) -> ChainRecord:
        index = self.index_of(name_or_index) if isinstance(name_or_index, str) else int(name_or_index)
        return self.records[index]

    def load(self, name_or_index: str | int) -> ProteinChain:
        record = self.record(name_or_index)
        return load_chain(self.path / CHAINS_DIR / f"{record.name}.npz", record.name, record.source)

    def subset(self, indices) -> ChainCache:
        """A view of some chains (e.g. a length window or a train/validation split)."""
        return ChainCache(self.path, [self.records[int(i)] for i in indices])

    def filter_length(self, min_length: int = 1, max_length: int | None = None) -> ChainCache:
        lengths = self.lengths
        keep = (lengths >= min_length) & (lengths <= (max_length or lengths.max(initial=0)))
        return self.subset(np.flatnonzero(keep))

    def entries(self) -> list[str]:
        """Sorted ids of the entries with at least one cached chain."""
        return sorted({record.entry for record in self.records})

    def summary(self) -> dict:
        path = self.path / SUMMARY_FILE
        return json.loads(path.read_text()) if path.is_file() else {}
