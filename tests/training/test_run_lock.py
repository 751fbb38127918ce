"""A run directory takes one writer; the lock dies with its process."""

import os
import subprocess
import sys
import textwrap

import pytest

from multiflow_gm.training.protein.decoder_pretraining import DecoderPretraining, pretrain_decoder
from multiflow_gm.training.run_lock import RunDirectoryBusy, exclusive_run_dir, is_launching_process

HOLDER = textwrap.dedent("""
    import sys, time
    from multiflow_gm.training.run_lock import exclusive_run_dir
    with exclusive_run_dir(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def held_by_other_process(tmp_path):
    """A second process that holds ``tmp_path / "run"`` until the fixture ends."""
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield run, holder
    if holder.poll() is None:
        holder.communicate("\n", timeout=30)


def test_second_writer_is_refused_with_the_holders_pid(held_by_other_process):
    run, holder = held_by_other_process
    with pytest.raises(RunDirectoryBusy, match=f"pid {holder.pid}"):
        with exclusive_run_dir(run):
            pass


def test_lock_is_free_once_the_holder_exits_even_when_killed(held_by_other_process):
    run, holder = held_by_other_process
    holder.kill()
    holder.wait(timeout=30)
    with exclusive_run_dir(run) as out:
        assert (out / ".lock").read_text() == str(os.getpid())


def test_same_process_can_reenter_after_release(tmp_path):
    with exclusive_run_dir(tmp_path / "run"):
        pass
    with exclusive_run_dir(tmp_path / "run"):
        pass


def test_decoder_pretraining_refuses_a_busy_directory_before_touching_it(held_by_other_process, tmp_path):
    run, _ = held_by_other_process
    with pytest.raises(RunDirectoryBusy):
        pretrain_decoder(tmp_path / "no_cache", run, DecoderPretraining(steps=1))
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


@pytest.mark.parametrize("variable", ["RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"])
def test_only_rank_zero_is_the_launching_process(monkeypatch, variable):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert is_launching_process()
    monkeypatch.setenv(variable, "0")
    assert is_launching_process()
    monkeypatch.setenv(variable, "1")
    assert not is_launching_process()
