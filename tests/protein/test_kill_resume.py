"""``kill -9`` at a random moment of ``preprocess``, ``sample`` and ``evaluate``, then a rerun:
the outputs equal those of an uninterrupted run and no visible file is half-written.

(The same check for ``train`` with ``--resume`` belongs with the training tests.)
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "import sys; from multiflow_gm.cli.main import main; sys.exit(main())", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _run(args: list[str]) -> float:
    """Seconds the command took; it must succeed (exit 3: done, with inputs skipped)."""
    start = time.perf_counter()
    done = subprocess.run(_command(args), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 3), done.stderr[-2000:]
    return time.perf_counter() - start


def _kill_at(args: list[str], seconds: float) -> None:
    process = subprocess.Popen(_command(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _visible_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _check_killed_then_rerun(args_for, tmp_path: Path, seed: int, compare) -> None:
    """Run once whole; then kill -9 a second run at a seeded random moment and rerun it."""
    duration = _run(args_for(tmp_path / "whole"))
    moment = float(np.random.default_rng(seed).uniform(0.3, 0.9)) * duration
    _kill_at(args_for(tmp_path / "killed"), moment)
    _run(args_for(tmp_path / "killed"))
    compare(tmp_path / "whole", tmp_path / "killed")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.soak)])
def test_preprocess_killed_then_rerun(pdb_subset, tmp_path, seed):
    files = [str(p) for p in sorted(pdb_subset.glob("*.pdb.gz"))[:40]]

    def compare(whole: Path, killed: Path):
        assert (whole / "metadata.csv").read_text() == (killed / "metadata.csv").read_text()
        assert (whole / "rejections.csv").read_text() == (killed / "rejections.csv").read_text()
        for name in sorted(p.name for p in (whole / "chains").glob("*.npz")):
            with np.load(whole / "chains" / name) as a, np.load(killed / "chains" / name) as b:
                assert all(np.array_equal(a[k], b[k]) for k in a.files)
        assert not list(killed.rglob(".*.tmp"))  # the rerun removed what the killed run left

    _check_killed_then_rerun(lambda out: ["preprocess", *files, "--out", str(out), "--workers", "1",
                                          "--no-progress"], tmp_path, seed, compare)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.soak)])
def test_sample_killed_then_rerun(tmp_path, seed):
    def compare(whole: Path, killed: Path):
        a, b = _visible_files(whole), _visible_files(killed)
        a.pop("summary.json"), b.pop("summary.json")  # holds this run's timings
        a = {k: v for k, v in a.items() if not k.startswith("records/")}
        b = {k: v for k, v in b.items() if not k.startswith("records/")}
        assert a == b  # every PDB and the FASTA, byte for byte
        for path in (killed / "records").glob("*.json"):
            json.loads(path.read_text())

    _check_killed_then_rerun(lambda out: ["sample", "--lengths", "30", "40", "--num", "4", "--batch-size", "2",
                                          "--steps", "20", "--threads", "1", "--no-progress", "--out", str(out)],
                             tmp_path, seed, compare)


@pytest.mark.slow
def test_evaluate_killed_then_rerun(tmp_path, compact_backbone):
    from multiflow_gm.protein.pdb_writer import write_backbone_pdb

    samples = tmp_path / "samples"
    for index in range(6):
        write_backbone_pdb(samples / f"s{index}.pdb", compact_backbone[: 40 + 8 * index], "ALKE" * 10 + "A" * 8 * index)
    (samples / "broken.pdb").write_text("ATOM  garbage\n")

    def compare(whole: Path, killed: Path):
        a = json.loads((whole / "metrics.json").read_text())
        b = json.loads((killed / "metrics.json").read_text())
        for document in (a, b):
            document.pop("created"), document.pop("timings_s")
        assert a == b
        with open(whole / "per_sample.csv") as x, open(killed / "per_sample.csv") as y:
            assert list(csv.DictReader(x)) == list(csv.DictReader(y))
        assert (killed / "report.md").read_text().startswith("# Protein evaluation report")

    _check_killed_then_rerun(lambda out: ["evaluate", str(samples), "--out", str(out), "--no-mpnn",
                                          "--no-progress"], tmp_path, 0, compare)
