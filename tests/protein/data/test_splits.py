"""Cluster splits: whole clusters per split, stated fractions, determinism, the CLI."""

import numpy as np
import pytest

from multiflow_gm.cli.main import main
from multiflow_gm.errors import ConfigError, MissingResourceError
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.splits import SplitSettings, assign_splits, read_splits, split_of


def test_clusters_never_straddle_splits_and_fractions_hold():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(400), rng.integers(1, 6, size=400))
    labels = assign_splits(clusters, SplitSettings(0.05, 0.05, seed=1))
    for cluster in np.unique(clusters):
        assert len(set(labels[clusters == cluster])) == 1
    for split in ("val", "test"):
        assert abs((labels == split).mean() - 0.05) < 0.01
    assert (labels == "train").mean() > 0.88


def test_split_is_a_function_of_the_seed():
    clusters = np.arange(200) // 2
    first = assign_splits(clusters, SplitSettings(0.1, 0.1, seed=3))
    assert (first == assign_splits(clusters, SplitSettings(0.1, 0.1, seed=3))).all()
    assert (first != assign_splits(clusters, SplitSettings(0.1, 0.1, seed=4))).any()


def test_one_huge_cluster_cannot_fill_the_validation_split():
    clusters = np.concatenate([np.zeros(500, dtype=int), np.arange(1, 501)])
    labels = assign_splits(clusters, SplitSettings(0.05, 0.05, seed=0))
    assert (labels[:500] == "train").all()


def test_bad_fractions_name_the_problem():
    with pytest.raises(ConfigError, match="split fractions"):
        SplitSettings(0.6, 0.5)


def test_cli_writes_a_split_the_training_reader_uses(small_real_cache, tmp_path, capsys):
    import shutil

    cache_dir = tmp_path / "cache"
    shutil.copytree(small_real_cache, cache_dir)
    cache = ChainCache(cache_dir)
    with pytest.raises(MissingResourceError, match="multiflow-gm split"):
        split_of(cache, "val")
    assert len(split_of(cache, "train", required=False)) == len(cache)
    assert main(["split", str(cache_dir), "--val", "0.2", "--test", "0.2"]) == 0
    assert "val" in capsys.readouterr().out
    labels = read_splits(cache_dir)
    assert set(labels) == set(cache.names)
    parts = {s: split_of(cache, s).names for s in ("train", "val", "test")}
    assert sum(len(v) for v in parts.values()) == len(cache)
    assert not set(parts["train"]) & set(parts["val"])
    assert main(["split", str(cache_dir)]) == 2  # refuses to replace a split without --force
