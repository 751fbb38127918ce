"""``kill -9`` at a random moment of ``train``, then ``--resume``: the final weights equal an
uninterrupted run's bit for bit (checkpoints are atomic; the resumed steps redraw the same batches)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "protein" / "tiny.yaml"
SETTINGS = ["trainer.max_steps=24", "trainer.checkpoint_every=4", "trainer.threads=1", "data.max_length=100"]


def _command(cache: Path, out: Path, resume: bool) -> list[str]:
    args = ["train", "--config", str(TINY), "--data", str(cache), "--out", str(out),
            *(f"--set={item}" for item in SETTINGS)]
    return [sys.executable, "-c", "import sys; from multiflow_gm.cli.main import main; sys.exit(main())",
            *args, *(["--resume"] if resume else [])]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_train_killed_then_resumed_equals_uninterrupted(synthetic_cache, tmp_path):
    start = time.perf_counter()
    done = subprocess.run(_command(synthetic_cache, tmp_path / "whole", False), env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    duration = time.perf_counter() - start
    # Kill after the first checkpoint can exist (start-up is most of a short run) but before the end.
    moment = float(np.random.default_rng(0).uniform(0.6, 0.9)) * duration
    process = subprocess.Popen(_command(synthetic_cache, tmp_path / "killed", False), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = subprocess.run(_command(synthetic_cache, tmp_path / "killed", True), env=_env(),
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = load_file(tmp_path / "whole" / "model_ema.safetensors")
    killed = load_file(tmp_path / "killed" / "model_ema.safetensors")
    assert whole.keys() == killed.keys()
    for name in whole:
        assert (whole[name] == killed[name]).all(), name
