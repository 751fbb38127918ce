"""One real, cheap call of every command (``--help`` of each is in test_cli.py).

Everything runs on synthetic data (the ``synthetic_cache`` fixture and the compact bundle
backbone), so no command is left untested where ``../shared/data`` is absent. The calls
check that a command runs end to end and writes its main output, not its numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multiflow_gm.cli.main import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "protein" / "tiny.yaml"
# A digits network small enough to train for 2 steps in about a second.
TINY_IMAGE_MODEL = ["model.base_channels=8", "model.channel_mults=[1, 2]", "model.attention_heads=2",
                    "model.groups=4", "jump.bins=8"]


@pytest.fixture(scope="module")
def trained(synthetic_cache, tmp_path_factory) -> Path:
    """`train` for 2 steps of the tiny config on the synthetic cache; the run directory."""
    out = tmp_path_factory.mktemp("cli_train") / "run"
    code = main(["train", "--config", str(TINY), "--data", str(synthetic_cache), "--out", str(out),
                 "--set", "trainer.max_steps=2", "--set", "trainer.threads=1", "--set", "trainer.log_every=1"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def sampled(trained, tmp_path_factory) -> Path:
    """`sample`: one 30-residue sample in 2 steps from the 2-step model; the output directory."""
    out = tmp_path_factory.mktemp("cli_sample")
    code = main(["sample", "--ckpt", str(trained / "model_ema.safetensors"), "--lengths", "30", "--num", "1",
                 "--steps", "2", "--out", str(out), "--no-progress", "--no-gallery", "--threads", "1"])
    assert code == 0
    return out


def test_train(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["batches_consumed"] == 2 and summary["skipped_batches"] == 0
    assert (trained / "model_ema.safetensors").stat().st_size > 0
    assert (trained / "checkpoints" / "last.ckpt").is_file()


def test_sample(sampled):
    assert len(list((sampled / "samples").glob("*.pdb"))) == 1
    assert (sampled / "samples.fasta").read_text().count(">") == 1


def test_preprocess(compact_backbone, tmp_path):
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.pdb_writer import write_backbone_pdb

    for i, sequence in enumerate(("ALKE" * 23, "GSVD" * 23)):
        write_backbone_pdb(tmp_path / "inputs" / f"bundle{i}.pdb", compact_backbone, sequence)
    assert main(["preprocess", str(tmp_path / "inputs"), "--out", str(tmp_path / "cache"), "--workers", "1",
                 "--no-progress"]) == 0
    assert len(ChainCache(tmp_path / "cache")) == 2


def test_split(synthetic_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(synthetic_cache, cache)
    assert main(["split", str(cache), "--val", "0.2", "--test", "0.2"]) == 0
    assert (cache / "splits.csv").is_file()


def test_evaluate(sampled, synthetic_cache, tmp_path):
    out = tmp_path / "report"
    code = main(["evaluate", str(sampled / "samples"), "--reference", str(synthetic_cache), "--out", str(out),
                 "--no-mpnn", "--no-dssp", "--compare", "none", "--workers", "1", "--no-progress"])
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["sets"]


def test_benchmark(trained, compact_backbone, tmp_path):
    from multiflow_gm.protein.pdb_writer import write_backbone_pdb

    pdb = write_backbone_pdb(tmp_path / "native.pdb", compact_backbone[:40], "ACDEFGHIKL" * 4)
    out = tmp_path / "bench"
    code = main(["benchmark", "--pdb", str(pdb), "--ckpt", str(trained / "model_ema.safetensors"),
                 "--num-steps", "2", "--num-designs", "1", "--out", str(out), "--no-mpnn", "--no-progress",
                 "--threads", "1", "--workers", "1"])
    assert code == 0
    assert json.loads((out / "benchmark.json").read_text())["summary"]["chains"] == 1


def test_bench_images(tmp_path):
    out = tmp_path / "images"
    code = main(["bench-images", "--dataset", "digits", "--models", "flow", "--nfe", "3", "--out", str(out),
                 "--train-steps", "2", "--num-samples", "20", "--threads", "1", "--no-progress",
                 "--set", "eval.classifier_steps=20", "--set", "train.batch_size=16",
                 *[a for o in TINY_IMAGE_MODEL for a in ("--set", o)]])
    assert code == 0
    assert any(out.iterdir())


def test_distill(synthetic_cache, tmp_path):
    from multiflow_gm.protein.evaluation.mpnn import mpnn_status

    available, reason = mpnn_status()
    if not available:
        pytest.skip(reason)
    cache = tmp_path / "cache"
    shutil.copytree(synthetic_cache, cache)
    assert main(["distill", str(cache), "--num-sequences", "1", "--max-chains", "1", "--workers", "1",
                 "--threads", "1", "--no-progress"]) == 0
    assert any((cache / "designed").iterdir())


def test_demo(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--samples", "200", "--steps", "10"]) == 0
    assert any(tmp_path.iterdir())
