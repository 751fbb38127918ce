"""The shared PDB subset through the default preprocess filters (skips where the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from multiflow_gm.protein.data.cache import CHAINS_DIR, ChainCache
from multiflow_gm.protein.data.config import FilterConfig
from multiflow_gm.protein.data.filters import expected_radius_of_gyration

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
# Reasons the shared subset is expected to produce: no file may fail to read.
EXPECTED_REASONS = {"chain_break", "too_short", "too_long", "incomplete_backbone", "too_much_coil",
                    "rg_outlier", "unknown_residues", "bad_backbone_geometry"}

pytestmark = pytest.mark.slow  # the session's real_cache build takes about a minute on 2 cores


def test_default_filters_accept_enough_chains_for_the_expected_reasons(real_cache):
    cache = ChainCache(real_cache)
    assert len(cache) >= 1400
    summary = cache.summary()
    assert summary["files"] >= 2000 and summary["chains_accepted"] == len(cache)
    counts = summary["rejections"]
    assert set(counts) <= EXPECTED_REASONS, counts
    # Breaks, length and missing atoms dominate, as the subset's README says.
    structural = counts.get("chain_break", 0) + counts.get("too_short", 0) + counts.get("too_long", 0) \
        + counts.get("incomplete_backbone", 0)
    assert structural > 0.7 * sum(counts.values())
    assert len(list((real_cache / CHAINS_DIR).glob("*.npz"))) == len(cache)


def test_accepted_chains_satisfy_the_filters(real_cache):
    cache = ChainCache(real_cache)
    limits = FilterConfig()
    lengths = cache.lengths
    assert lengths.min() >= limits.min_length and lengths.max() <= limits.max_length
    records = cache.records
    fractions = np.array([[r.helix, r.strand, r.coil] for r in records])
    assert np.allclose(fractions.sum(1), 1.0, atol=1e-3)
    assert fractions[:, 2].max() <= limits.max_coil_fraction
    rg = np.array([r.radius_of_gyration for r in records])
    assert (rg <= limits.max_rg_ratio * expected_radius_of_gyration(lengths) + 1e-3).all()
    assert all(len(r.sequence) == r.length for r in records)
    clusters = cache.cluster_ids
    assert 0 < clusters.max() + 1 < len(cache)  # homo-oligomer copies share clusters
    for index in np.linspace(0, len(cache) - 1, 25).astype(int):
        chain = cache.load(int(index))
        ca = chain.atoms[:, 1].astype(np.float64)
        assert np.linalg.norm(np.diff(ca, axis=0), axis=1).max() <= limits.max_ca_ca_distance
        assert np.isfinite(chain.atoms).all() and chain.sequence == records[index].sequence


def test_data_lists_match_the_default_preprocess(real_cache):
    cache = ChainCache(real_cache)
    entries = (DATA_DIR / "pdb_subset_entries.txt").read_text().split()
    chains = (DATA_DIR / "pdb_subset_chains.txt").read_text().split()
    assert entries == cache.entries()
    assert chains == sorted(cache.names)
