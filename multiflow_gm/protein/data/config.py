"""Settings of the structure preprocessing, with defaults and YAML loading.

A config file has up to three sections, each optional; every key has a default
(see ``configs/data/preprocess.yaml`` for the documented defaults)::

    reading:    {max_file_mb, first_chain_only}
    filters:    {min_length, max_length, max_ca_ca_distance, break_policy, ...}
    clustering: {identity, kmer_prefilter}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from multiflow_gm.config import from_dict, load_config
from multiflow_gm.errors import ConfigError


@dataclass(frozen=True)
class ReadConfig:
    """How files are read."""

    max_file_mb: float = 100.0  # files (or their decompressed text) above this are skipped
    first_chain_only: bool = False  # keep only the first chain of an entry that passes


@dataclass(frozen=True)
class FilterConfig:
    """Which chains become training examples. Distances in Angstrom."""

    min_length: int = 60
    max_length: int = 384
    max_ca_ca_distance: float = 4.2  # consecutive CA-CA above this is a chain break
    break_policy: str = "drop"  # "drop" the chain or "split" it into segments
    trim_incomplete_termini: bool = True  # drop end residues missing N, C or O
    max_bond_deviation: float = 0.5  # N-CA, CA-C, C-O lengths off ideal by more: bad geometry
    # P-SEA (biotite annotate_sse) calls more residues coil than DSSP: 0.65 rejects about the
    # same share of the shared subset (~15%) as the DSSP limit of 0.5 used by MultiFlow.
    max_coil_fraction: float = 0.65
    max_unknown_fraction: float = 0.1  # residues outside the 20 standard types
    max_rg_ratio: float = 2.0  # Rg / (2.2 L^0.38): above this the chain is not compact

    def __post_init__(self):
        if self.break_policy not in ("drop", "split"):
            raise ConfigError(f"filters.break_policy must be 'drop' or 'split', got {self.break_policy!r}")
        if not 1 <= self.min_length <= self.max_length:
            raise ConfigError("filters.min_length must be >= 1 and <= filters.max_length")
        for key in ("max_coil_fraction", "max_unknown_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"filters.{key} must be in [0, 1]")


@dataclass(frozen=True)
class ClusterConfig:
    """Greedy clustering by sequence identity (0 or null identity: no clustering)."""

    identity: float | None = 0.5  # minimum identity over the shorter sequence to join a cluster
    kmer_prefilter: float = 0.2  # shared 3-mers / 3-mers of the shorter sequence needed to align


@dataclass(frozen=True)
class PreprocessConfig:
    reading: ReadConfig = field(default_factory=ReadConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Identity of the settings that decide a file's cached result (not clustering)."""
        decisive = {"reading": dataclasses.asdict(self.reading), "filters": dataclasses.asdict(self.filters)}
        return json.dumps(decisive, sort_keys=True)


def preprocess_config_from_dict(data: dict | None) -> PreprocessConfig:
    """Build a config from nested dicts; unknown sections or keys raise ConfigError naming them."""
    return from_dict(PreprocessConfig, data)


def load_preprocess_config(path: str | Path | None, overrides: list[str] | None = None) -> PreprocessConfig:
    """Defaults when path is None, else the YAML file (missing keys keep their defaults); then
    ``key.sub=value`` overrides (``--set``)."""
    return load_config(PreprocessConfig, path, overrides)
