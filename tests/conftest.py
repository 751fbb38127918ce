"""Shared pytest fixtures and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
PDB_SUBSET = SHARED_DATA / "pdb_subset"


@pytest.fixture
def single_thread():
    """One intra-op thread: fastest and steadiest for small tensors on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def pdb_subset() -> Path:
    """The shared real-structure subset; tests using it skip where it is absent."""
    if not PDB_SUBSET.is_dir() or not any(PDB_SUBSET.iterdir()):
        pytest.skip(f"real structures not found at {PDB_SUBSET} (set MULTIFLOW_GM_SHARED_DATA)")
    return PDB_SUBSET


def _require_pdb_subset() -> Path:
    if not PDB_SUBSET.is_dir() or not any(PDB_SUBSET.iterdir()):
        pytest.skip(f"real structures not found at {PDB_SUBSET} (set MULTIFLOW_GM_SHARED_DATA)")
    return PDB_SUBSET


def _build_chain_cache(inputs, out: Path, workers: int) -> Path:
    from multiflow_gm.protein.data.preprocess import run_preprocess

    run_preprocess(inputs, out, workers=workers, progress=False)
    return out


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """Chain cache of the whole shared subset (default filters, 2 workers), built once per session.

    Set MULTIFLOW_GM_TEST_CACHE to a directory to keep it between sessions (reruns resume).
    """
    subset = _require_pdb_subset()
    keep = os.environ.get("MULTIFLOW_GM_TEST_CACHE")
    out = Path(keep) if keep else tmp_path_factory.mktemp("real_cache")
    return _build_chain_cache([subset], out, workers=2)


@pytest.fixture(scope="session")
def small_real_cache(tmp_path_factory) -> Path:
    """Chain cache of 30 real files spread over the shared subset (a few seconds to build)."""
    subset = _require_pdb_subset()
    files = sorted(subset.glob("*.pdb.gz"))[::70][:30]
    return _build_chain_cache(files, tmp_path_factory.mktemp("small_real_cache"), workers=1)


# Loop torsions (phi, psi in degrees) joining three 28-residue alpha helices into a
# compact, clash-free 92-residue bundle (found by a seeded search; Rg 1.45x the
# compact value): it passes the default preprocess filters.
_BUNDLE_LOOPS = (((60, 40), (-80, 170), (-60, 140), (60, 40)),
                 ((-70, -30), (-120, 130), (-90, 0), (-120, 130)))


@pytest.fixture(scope="session")
def compact_backbone():
    """An ideal three-helix protein backbone N, CA, C, O: float64 numpy [92, 4, 3], Angstrom."""
    import numpy as np

    from multiflow_gm.protein.geometry import backbone_from_torsions

    phi, psi = [], []
    for segment in range(3):
        phi += [-57.0] * 28
        psi += [-47.0] * 28
        if segment < 2:
            phi += [float(p) for p, _ in _BUNDLE_LOOPS[segment]]
            psi += [float(s) for _, s in _BUNDLE_LOOPS[segment]]
    return backbone_from_torsions(np.array(phi), np.array(psi)).numpy()


# Lengths of the synthetic chains: prefixes of the 92-residue bundle, all inside the tiny
# config's window [60, 128], two sharing a length so same-length batches hold more than one.
_SYNTHETIC_LENGTHS = (92, 84, 76, 76, 64)


@pytest.fixture(scope="session")
def synthetic_cache(compact_backbone, tmp_path_factory) -> Path:
    """A chain cache of 5 synthetic chains, written with the package's own cache writer.

    Each chain is a prefix (lengths ``_SYNTHETIC_LENGTHS``) of the compact three-helix bundle,
    moved by a seeded rigid shift (Angstrom) and given a seeded random sequence; metadata.csv
    holds one :class:`ChainRecord` per chain (no clusters, no splits). Cheap enough for any
    test that needs a trainable cache without ``../shared/data``.
    """
    import numpy as np

    from multiflow_gm.protein.alphabet import AA_ORDER, NUM_AMINO_ACIDS
    from multiflow_gm.protein.data.cache import (CHAINS_DIR, METADATA_COLUMNS, METADATA_FILE, ChainRecord,
                                                 save_chain, write_csv)
    from multiflow_gm.protein.structure_io import ProteinChain

    out = tmp_path_factory.mktemp("synthetic_cache")
    (out / CHAINS_DIR).mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, length in enumerate(_SYNTHETIC_LENGTHS):
        name = f"syn{i}_A"
        atoms = compact_backbone[:length] + rng.normal(0.0, 5.0, size=3)
        aatype = rng.integers(0, NUM_AMINO_ACIDS, size=length)
        chain = ProteinChain(name=name, atoms=atoms.astype(np.float32), aatype=aatype.astype(np.int64),
                             residue_index=np.arange(1, length + 1, dtype=np.int32),
                             bfactor=np.full(length, 20.0, dtype=np.float32), source=f"synthetic/{name}.pdb")
        save_chain(out / CHAINS_DIR / f"{name}.npz", chain)
        ca = atoms[:, 1]
        rg = float(np.sqrt(((ca - ca.mean(0)) ** 2).sum(-1).mean()))
        rows.append(vars(ChainRecord(name=name, entry=f"syn{i}", chain="A", segment=0, length=length,
                                     helix=0.9, strand=0.0, coil=0.1, radius_of_gyration=rg,
                                     sequence="".join(AA_ORDER[a] for a in aatype), source=chain.source)))
    write_csv(out / METADATA_FILE, rows, METADATA_COLUMNS)
    return out


@pytest.fixture(scope="module")
def split_cache(synthetic_cache, tmp_path_factory) -> Path:
    """The synthetic cache with train / val / test splits (25% val, 10% test)."""
    import shutil

    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import SplitSettings, write_splits

    out = tmp_path_factory.mktemp("split_cache") / "cache"
    shutil.copytree(synthetic_cache, out)
    write_splits(ChainCache(out), SplitSettings(0.25, 0.1, seed=0))
    return out
