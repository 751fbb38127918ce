"""Shared pytest fixtures and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
PDB_SUBSET = SHARED_DATA / "pdb_subset"


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def pdb_subset() -> Path:
    """The shared real-structure subset; tests using it skip where it is absent."""
    if not PDB_SUBSET.is_dir() or not any(PDB_SUBSET.iterdir()):
        pytest.skip(f"real structures not found at {PDB_SUBSET} (set MULTIFLOW_GM_SHARED_DATA)")
    return PDB_SUBSET
