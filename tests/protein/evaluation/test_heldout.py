"""Held-out folding / inverse-folding benchmark: metrics against exact answers, inputs, CLI files."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from multiflow_gm.cli.main import build_parser, main
from multiflow_gm.config import load_config, to_dict
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.evaluation.heldout import (fold_and_design, fold_scores, proteinmpnn_anchor,
                                                     sequence_recovery, summarize)
from multiflow_gm.protein.evaluation.heldout_inputs import chains_from_cache, chains_from_structure_files
from multiflow_gm.protein.pdb_writer import write_backbone_pdb
from multiflow_gm.protein.structure import BackboneStructure, backbone_frames

TINY = Path(__file__).resolve().parents[3] / "configs" / "protein" / "tiny.yaml"
LENGTH = 40


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)


def _native(compact_backbone, length=LENGTH, name="bundle_A", seed=0) -> BackboneStructure:
    aatype = np.random.default_rng(seed).integers(0, alphabet.NUM_AMINO_ACIDS, size=length)
    return BackboneStructure(name, compact_backbone[:length].copy(), aatype)


@pytest.fixture(scope="module")
def tiny_model():
    """Randomly initialised tiny network, its process and config (2 sampling steps)."""
    from multiflow_gm.protein.model.network import CoDesignNetwork
    from multiflow_gm.protein.process import CoDesignProcess
    from multiflow_gm.training.protein.config import TrainConfig

    torch.manual_seed(0)
    cfg = load_config(TrainConfig, TINY, ["trainer.threads=1", "sampling.num_steps=2"])
    return CoDesignNetwork(cfg.model).eval(), CoDesignProcess(cfg.process), cfg


@pytest.fixture
def tiny_checkpoint(tiny_model, tmp_path):
    from multiflow_gm.protein.model_file import export_weights

    network, _, cfg = tiny_model
    return export_weights(network.state_dict(), to_dict(cfg), tmp_path / "tiny.safetensors")


@pytest.fixture
def structure_files(compact_backbone, tmp_path):
    """One good 40-residue PDB file, one file of garbage and one path that does not exist."""
    good = write_backbone_pdb(tmp_path / "good.pdb", compact_backbone[:LENGTH], "ACDEFGHIKL" * 4)
    bad = tmp_path / "bad.pdb"
    bad.write_bytes(b"\x00\x01 not a structure \xff" * 10)
    return good, bad, tmp_path / "missing.pdb"


def test_recovery_of_a_sequence_against_itself_is_one_and_unknowns_are_ignored():
    assert sequence_recovery("MKTAYIAKQR", "MKTAYIAKQR") == 1.0
    assert sequence_recovery("ADCE", "AXCE") == 1.0  # the native X is left out
    assert sequence_recovery("ADCW", "ADCE") == pytest.approx(0.75)
    assert sequence_recovery(np.array([0, 1, 2]), np.array([0, 1, 3])) == pytest.approx(2 / 3)
    assert math.isnan(sequence_recovery("AAA", "XXX"))
    with pytest.raises(ValueError, match="residues"):
        sequence_recovery("AA", "AAA")


def test_a_fold_equal_to_the_native_scores_tm_one_and_rmsd_zero(compact_backbone):
    native_ca = compact_backbone[:, 1]
    moved = native_ca @ _rotation(1).T + np.array([12.0, -3.0, 40.0])
    scores = fold_scores(moved, native_ca)
    assert scores["tm"] == pytest.approx(1.0, abs=1e-4)
    assert scores["rmsd"] == pytest.approx(0.0, abs=1e-6)


def test_rmsd_of_a_scaled_copy_is_the_scale_change_times_the_radius_of_gyration(compact_backbone):
    # Scaling about the centroid leaves the identity as the best rotation, so the RMSD is exact.
    native_ca = compact_backbone[:, 1]
    centre = native_ca.mean(axis=0)
    radius_of_gyration = np.sqrt(((native_ca - centre) ** 2).sum(-1).mean())
    scaled = (native_ca - centre) * 1.1 + centre
    moved = scaled @ _rotation(2).T
    assert fold_scores(moved, native_ca)["rmsd"] == pytest.approx(0.1 * radius_of_gyration, rel=1e-9)
    assert fold_scores(moved, native_ca)["tm"] < 1.0


def test_fold_and_design_rows_are_complete_and_reproducible(tiny_model, compact_backbone, single_thread):
    network, process, cfg = tiny_model
    chains = [_native(compact_backbone, 30, "first"), _native(compact_backbone, 24, "second", seed=1)]
    network.train()
    rows = fold_and_design(network, process, chains, cfg.sampling, num_designs=2, num_structures=2, seed=3)
    assert network.training  # restored after sampling in eval mode
    network.eval()
    again = fold_and_design(network, process, chains[:1], cfg.sampling, num_designs=2, num_structures=2, seed=3)
    assert again[0]["designs"] == rows[0]["designs"]  # a chain's draws do not depend on the others
    assert again[0]["fold_tm"] == pytest.approx(rows[0]["fold_tm"])
    for row, chain in zip(rows, chains):
        assert row["length"] == len(chain) and len(row["designs"]) == 2
        assert all(len(design) == len(chain) for design in row["designs"])
        assert 0.0 <= row["recovery"] <= row["recovery_best"] <= 1.0
        assert 0.0 < row["fold_tm"] <= row["fold_tm_best"] <= 1.0
        assert row["fold_rmsd"] >= row["fold_rmsd_best"] > 0.0
    summary = summarize(rows)
    assert summary["chains"] == 2
    assert summary["recovery_mean"] == pytest.approx(np.mean([r["recovery"] for r in rows]))
    assert summary["fold_tm_above_0.5"] in (0.0, 0.5, 1.0)


def test_a_chain_given_as_frames_keeps_its_frames(compact_backbone):
    rotations, translations = backbone_frames(compact_backbone[:LENGTH])
    chain = BackboneStructure.from_frames("frames", rotations, translations, torch.zeros(LENGTH, dtype=torch.long))
    again_rotations, again_translations = chain.frames()
    assert torch.allclose(again_rotations, rotations, atol=1e-5)
    assert torch.allclose(again_translations, translations, atol=1e-5)
    assert chain.atoms.shape == (LENGTH, 4, 3) and np.isfinite(chain.atoms).all()


def test_only_the_requested_task_is_run(tiny_model, compact_backbone, single_thread):
    network, process, cfg = tiny_model
    rows = fold_and_design(network, process, [_native(compact_backbone, 20)], cfg.sampling,
                           tasks=("inverse-fold",), num_designs=1)
    assert "recovery" in rows[0] and "fold_tm" not in rows[0]
    assert "fold_tm_mean" not in summarize(rows)
    with pytest.raises(ValueError, match="tasks"):
        fold_and_design(network, process, [], cfg.sampling, tasks=("design",))


def test_bad_structure_files_are_skipped_with_their_reason(structure_files):
    good, bad, missing = structure_files
    chains, skipped, notes = chains_from_structure_files([good, bad, missing])
    assert [len(c) for c in chains] == [LENGTH]
    assert chains[0].sequence == "ACDEFGHIKL" * 4
    assert len(skipped) == 2
    assert {s.source for s in skipped} == {str(bad), str(missing)}
    assert all(s.reason for s in skipped)
    assert notes == []
    _, outside, _ = chains_from_structure_files([good], lengths=(50, 60))
    assert [s.reason for s in outside] == ["length_outside_range"]
    _, peptide, _ = chains_from_structure_files([good], min_length=LENGTH + 1)
    assert [s.reason for s in peptide] == ["too_short"]


def test_residues_without_a_full_backbone_are_dropped_and_noted(compact_backbone, tmp_path):
    path = write_backbone_pdb(tmp_path / "gap.pdb", compact_backbone[:LENGTH], "A" * LENGTH)
    lines = path.read_text().splitlines()
    # Residue 5 loses its O atom: the chain is still used, without that residue.
    path.write_text("\n".join(l for l in lines if not (l[12:16].strip() == "O" and l[22:26].strip() == "5")) + "\n")
    chains, skipped, notes = chains_from_structure_files([path])
    assert [len(c) for c in chains] == [LENGTH - 1] and skipped == []
    assert [n.reason for n in notes] == ["incomplete_residues_dropped"]


def test_cache_split_chains_are_chosen_by_seed(compact_backbone, tmp_path):
    from multiflow_gm.errors import MissingResourceError
    from multiflow_gm.protein.data.cache import (CHAINS_DIR, METADATA_COLUMNS, METADATA_FILE, ChainCache,
                                                 ChainRecord, save_chain, write_csv)
    from multiflow_gm.protein.data.splits import SplitSettings, write_splits
    from multiflow_gm.protein.structure_io import ProteinChain

    records = []
    for index in range(10):
        length = 20 + 4 * index
        name = f"entry{index}_A"
        save_chain(tmp_path / CHAINS_DIR / f"{name}.npz",
                   ProteinChain(name, compact_backbone[:length].astype(np.float32), np.zeros(length, np.int64),
                                np.arange(length, dtype=np.int32), np.zeros(length, np.float32)))
        records.append(ChainRecord(name, f"entry{index}", "A", 0, length, 0.5, 0.1, 0.4, 10.0,
                                   "A" * length, "synthetic", cluster=index))
    write_csv(tmp_path / METADATA_FILE, [vars(r) for r in records], METADATA_COLUMNS)
    with pytest.raises(MissingResourceError, match="multiflow-gm split"):
        chains_from_cache(tmp_path, "test")
    write_splits(ChainCache(tmp_path), SplitSettings(val_fraction=0.3, test_fraction=0.3, seed=0))
    test_names = {r.name for r in ChainCache(tmp_path).records} & {
        row.split(",")[0] for row in (tmp_path / "splits.csv").read_text().splitlines() if row.endswith(",test")}
    first = chains_from_cache(tmp_path, "test", max_chains=2, seed=5)
    assert len(first) == 2 and {c.name for c in first} <= test_names
    assert [c.name for c in chains_from_cache(tmp_path, "test", max_chains=2, seed=5)] == [c.name for c in first]
    window = chains_from_cache(tmp_path, "test", lengths=(20, 40))
    assert all(20 <= len(c) <= 40 for c in window)


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["benchmark", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--num-designs" in text and "--cache" in text and "--pdb" in text


def test_cli_writes_files_and_reports_missing_proteinmpnn_as_not_computed(
        tiny_checkpoint, structure_files, tmp_path, monkeypatch, capsys, single_thread):
    import multiflow_gm.protein.evaluation.mpnn as mpnn

    monkeypatch.setattr(mpnn, "mpnn_status", lambda: (False, "the optional 'proteinmpnn' package is not installed"))
    good, bad, _ = structure_files
    out = tmp_path / "bench"
    code = main(["benchmark", "--pdb", str(good), str(bad), "--ckpt", str(tiny_checkpoint), "--num-steps", "2",
                 "--num-designs", "2", "--out", str(out), "--no-progress", "--threads", "1"])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"benchmark.json", "benchmark.md", "per_chain.csv", "benchmark.png"}
    document = json.loads((out / "benchmark.json").read_text())
    assert document["summary"]["chains"] == 1 and len(document["skipped"]) == 1
    assert document["summary"]["mpnn_recovery_mean"] is None
    assert document["mpnn_status"].startswith("not computed") and "pip install" in document["mpnn_status"]
    assert document["rows"][0]["native_sequence"] == "ACDEFGHIKL" * 4
    assert "not computed" in (out / "benchmark.md").read_text()
    row = next(csv.DictReader((out / "per_chain.csv").open()))
    assert row["mpnn_recovery"] == "not computed" and 0.0 <= float(row["recovery"]) <= 1.0
    assert "benchmark: 1 chains (1 inputs skipped)" in capsys.readouterr().out


def test_cli_with_only_unusable_inputs_is_a_clear_error(tiny_checkpoint, structure_files, tmp_path, capsys):
    _, bad, missing = structure_files
    code = main(["benchmark", "--pdb", str(bad), str(missing), "--ckpt", str(tiny_checkpoint),
                 "--out", str(tmp_path / "none"), "--no-progress"])
    assert code == 2
    assert "no usable protein chain" in capsys.readouterr().err


def test_proteinmpnn_anchor_scores_the_native_backbone(compact_backbone, single_thread):
    from multiflow_gm.protein.evaluation.mpnn import mpnn_status

    available, reason = mpnn_status()
    if not available:
        pytest.skip(f"ProteinMPNN not available: {reason}")
    chain = _native(compact_backbone, 30)
    chain.atoms[4, 3] = np.nan  # a missing O is placed ideally rather than dropping the residue
    rows, status = proteinmpnn_anchor([chain], num_designs=2, seed=0)
    assert status.startswith("computed")
    assert 0.0 <= rows[0]["mpnn_recovery"] <= rows[0]["mpnn_recovery_best"] <= 1.0
    assert math.isfinite(rows[0]["mpnn_native_nll"]) and rows[0]["mpnn_native_nll"] > 0
    assert all(len(s) == 30 for s in rows[0]["mpnn_designs"])


def test_a_real_structure_file_gives_its_chains(pdb_subset):
    path = sorted(pdb_subset.glob("*.pdb.gz"))[0]
    chains, skipped, _ = chains_from_structure_files([path])
    assert chains or skipped  # every chain is either a target or skipped with a reason
    for chain in chains:
        assert np.isfinite(chain.atoms[:, :3]).all() and sequence_recovery(chain.aatype, chain.aatype) == 1.0
