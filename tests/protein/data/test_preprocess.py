"""The preprocess command: cache layout, rejection report, resume after a kill, settings guard."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest

from multiflow_gm.cli.main import main
from multiflow_gm.errors import ConfigError, MissingResourceError, UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data import cache as layout
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.config import PreprocessConfig, preprocess_config_from_dict
from multiflow_gm.protein.data.preprocess import discover_inputs, run_preprocess
from multiflow_gm.protein.pdb_writer import write_backbone_pdb

SEQUENCE = ("MKTAYIAKQRQISFVKSHFSRQLEERLG" + "DPNG" + "LIEVQAPILSRVGDGTQDNLSGAEKAVQ" + "GSGD"
            + "VKVKALPDAQFEVVHSLAKWKRQTLGQH")


@pytest.fixture
def inputs(tmp_path, compact_backbone):
    """A folder of synthetic entries: good ones (plain/gz/multi-chain) and bad ones."""
    folder = tmp_path / "structures"
    (folder / "nested").mkdir(parents=True)
    write_backbone_pdb(folder / "1aaa.pdb", compact_backbone, SEQUENCE)
    text = (folder / "1aaa.pdb").read_text()
    (folder / "nested" / "2bbb.pdb.gz").write_bytes(gzip.compress(text.encode()))
    # Two chains: A is the bundle, B a 20-residue fragment of it moved away (too short).
    chain_b = text.replace(" A ", " B ").splitlines()[: 20 * 5]
    shifted = [line[:30] + "".join(f"{float(line[30 + 8 * k: 38 + 8 * k]) + 60.0:8.3f}" for k in range(3))
               + line[54:] for line in chain_b if line.startswith("ATOM")]
    (folder / "3ccc.pdb").write_text(text.replace("END\n", "") + "\n".join(shifted) + "\nEND\n")
    (folder / "4ddd.pdb").write_text("")
    (folder / "5eee.pdb.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    (folder / "notes.md").write_text("not a structure")
    return folder


def _read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_preprocess_writes_cache_tables_and_safe_arrays(tmp_path, inputs, compact_backbone):
    out = tmp_path / "cache"
    report = run_preprocess([inputs], out, progress=False)
    assert report.files == 5 and report.files_processed == 5 and report.files_cached == 0
    assert report.chains_accepted == 3 and report.entries_accepted == 3
    assert report.rejections == {"too_short": 1, "empty_file": 1, "corrupt_gzip": 1}
    metadata = _read_csv(out / layout.METADATA_FILE)
    assert [row["name"] for row in metadata] == ["1aaa_A", "2bbb_A", "3ccc_A"]
    for column in ("name", "entry", "chain", "length", "helix", "strand", "coil", "radius_of_gyration",
                   "sequence", "source", "cluster"):
        assert column in metadata[0]
    assert {row["sequence"] for row in metadata} == {SEQUENCE}
    assert {row["cluster"] for row in metadata} == {"0"}  # identical sequences: one cluster
    rejections = _read_csv(out / layout.REJECTIONS_FILE)
    assert sorted(row["reason"] for row in rejections) == ["corrupt_gzip", "empty_file", "too_short"]
    assert {row["chain"] for row in rejections if row["reason"] == "too_short"} == {"B"}

    with np.load(out / layout.CHAINS_DIR / "2bbb_A.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["aatype", "atoms", "bfactor", "residue_index"]
        assert data["atoms"].dtype == np.float32 and data["atoms"].shape == (92, 4, 3)
        assert data["aatype"].dtype == np.int64 and data["residue_index"].dtype == np.int32
        assert data["bfactor"].dtype == np.float32
    assert (out / layout.SUMMARY_PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cache = ChainCache(out)
    assert len(cache) == 3 and cache.lengths.tolist() == [92, 92, 92]
    chain = cache.load("3ccc_A")
    assert np.allclose(chain.atoms, compact_backbone, atol=1e-3)
    assert chain.sequence == SEQUENCE and chain.residue_index.tolist() == list(range(1, 93))
    assert cache.load(0).name == "1aaa_A" and cache.record("2bbb_A").entry == "2bbb"
    assert alphabet.indices_to_sequence(cache.load(1).aatype) == SEQUENCE


def test_rerun_skips_cached_and_resumes_after_a_kill(tmp_path, inputs):
    out = tmp_path / "cache"
    run_preprocess([inputs], out, progress=False)
    first = (out / layout.METADATA_FILE).read_text()
    clustered_at = (out / layout.CLUSTERS_FILE).stat().st_mtime_ns
    again = run_preprocess([inputs], out, progress=False)
    assert again.files_processed == 0 and again.files_cached == 5
    assert (out / layout.METADATA_FILE).read_text() == first
    assert (out / layout.CLUSTERS_FILE).stat().st_mtime_ns == clustered_at  # same chains: clusters reused
    # Simulate a run killed mid-file: the record is missing, a chain file is half-written.
    (out / layout.RECORDS_DIR / "2bbb.json").unlink()
    (out / layout.CHAINS_DIR / "2bbb_A.npz").unlink()
    (out / layout.CHAINS_DIR / ".2bbb_A.npz.abc.tmp").write_bytes(b"partial")
    (out / layout.RECORDS_DIR / "1aaa.json").write_text("{truncated")
    resumed = run_preprocess([inputs], out, progress=False)
    assert resumed.files_processed == 2 and resumed.files_cached == 3
    assert (out / layout.METADATA_FILE).read_text() == first
    assert ChainCache(out).load("2bbb_A").atoms.shape == (92, 4, 3)
    assert not list(out.rglob("*.tmp"))


def test_other_settings_need_rebuild(tmp_path, inputs):
    out = tmp_path / "cache"
    run_preprocess([inputs], out, progress=False)
    stricter = preprocess_config_from_dict({"filters": {"max_length": 80}})
    with pytest.raises(ConfigError, match="--rebuild"):
        run_preprocess([inputs], out, config=stricter, progress=False)
    report = run_preprocess([inputs], out, config=stricter, progress=False, rebuild=True)
    assert report.chains_accepted == 0 and report.rejections["too_long"] == 3
    assert not list((out / layout.CHAINS_DIR).iterdir())
    # Clustering settings do not decide a file's result: changing them needs no rebuild.
    unclustered = preprocess_config_from_dict({"filters": {"max_length": 80}, "clustering": {"identity": None}})
    assert run_preprocess([inputs], out, config=unclustered, progress=False).files_processed == 0


def test_first_chain_only_and_two_workers_agree(tmp_path, inputs):
    one = run_preprocess([inputs], tmp_path / "one", progress=False, workers=1)
    two = run_preprocess([inputs], tmp_path / "two", progress=False, workers=2)
    assert (tmp_path / "one" / layout.METADATA_FILE).read_text() == (tmp_path / "two" / layout.METADATA_FILE).read_text()
    assert one.rejections == two.rejections
    split = preprocess_config_from_dict({"reading": {"first_chain_only": True},
                                         "filters": {"min_length": 20, "max_rg_ratio": 10.0}})
    report = run_preprocess([inputs / "3ccc.pdb"], tmp_path / "first", config=split, progress=False)
    assert report.chains_accepted == 1 and report.rejections == {"not_first_chain": 1}


def test_list_files_duplicates_and_missing_inputs(tmp_path, inputs):
    listing = tmp_path / "files.txt"
    listing.write_text(f"# training entries\n{inputs / '1aaa.pdb'}\nstructures/nested/2bbb.pdb.gz\n\n")
    assert [p.name for p in discover_inputs([listing])] == ["1aaa.pdb", "2bbb.pdb.gz"]
    copy = tmp_path / "elsewhere" / "1aaa.pdb.gz"
    copy.parent.mkdir()
    copy.write_bytes(gzip.compress((inputs / "1aaa.pdb").read_bytes()))
    report = run_preprocess([listing, copy], tmp_path / "cache", progress=False)
    assert report.chains_accepted == 2 and report.rejections == {"duplicate_entry": 1}
    with pytest.raises(UserError, match="not found"):
        discover_inputs([tmp_path / "absent"])
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UserError, match="no structure files"):
        run_preprocess([empty], tmp_path / "c2", progress=False)


def test_chain_cache_requires_a_cache(tmp_path):
    with pytest.raises(MissingResourceError, match="not a chain cache"):
        ChainCache(tmp_path)


def test_cli_preprocess(tmp_path, inputs, capsys):
    out = tmp_path / "cache"
    assert main(["preprocess", str(inputs), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "accepted 3 chains from 3 entries" in printed and "too_short 1" in printed
    summary = json.loads((out / layout.SUMMARY_FILE).read_text())
    assert summary["chains_accepted"] == 3
    saved = json.loads((out / layout.CONFIG_FILE).read_text())
    assert saved == PreprocessConfig().to_dict()
    assert main(["preprocess", str(tmp_path / "absent"), "--out", str(out)]) == 2
    config = tmp_path / "bad.yaml"
    config.write_text("filters: {nope: 1}\n")
    assert main(["preprocess", str(inputs), "--out", str(out), "--config", str(config)]) == 2
    assert "filters.nope" in capsys.readouterr().err
