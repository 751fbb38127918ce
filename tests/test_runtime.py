"""Allocator tuning: applied once on glibc, skippable by environment, and it removes page faults."""

import os
import platform
import subprocess
import sys

import pytest

from multiflow_gm import runtime

# Repeated layer-sized work, as in a training or sampling loop; prints page faults after warm-up.
_LOOP = """
import resource, sys, torch
from multiflow_gm.runtime import tune_allocator
tune_allocator()
torch.set_num_threads(1)
w_up, w_down = torch.randn(128, 1024) / 12, torch.randn(1024, 128) / 32
def work():
    x = torch.randn(10000, 128)
    for _ in range(3):
        x = torch.relu(x @ w_up) @ w_down + x  # 40 MB hidden activations, 5 MB residual stream
for _ in range(3):
    work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
work()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(tuning: str) -> int:
    env = {**os.environ, "MULTIFLOW_GM_MALLOC_TUNING": tuning}
    out = subprocess.run([sys.executable, "-c", _LOOP], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def test_opt_out_by_environment(monkeypatch):
    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setenv("MULTIFLOW_GM_MALLOC_TUNING", "0")
    assert runtime.tune_allocator() is False
    assert runtime.tune_allocator() is False  # decided once per process


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds exist only in glibc")
def test_tuning_removes_page_faults_of_a_warm_loop():
    untuned, tuned = _faults("0"), _faults("1")
    # Untuned, the 40 MB blocks (above glibc's adaptive limit) are fresh mappings each time.
    assert untuned > 5000
    assert tuned < untuned / 20
