"""One writer per run directory.

Two processes training into the same directory (a second ``--resume`` while the first still
runs) would interleave checkpoints and curves. ``exclusive_run_dir`` holds an advisory
``flock`` on ``RUN/.lock`` for the life of the training call; the operating system drops it
when the process ends, however it ends, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from multiflow_gm.errors import UserError

LOCK_FILE = ".lock"
# Set by torchrun, Lightning's DDP launcher and SLURM in every process but the one the user started.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunDirectoryBusy(UserError):
    """Another live process is writing this run directory."""


@contextmanager
def exclusive_run_dir(out: str | Path, lock_name: str = LOCK_FILE) -> Iterator[Path]:
    """Create ``out`` if needed and hold its lock ``out/lock_name`` until the block ends
    (a writer of one part of a run, e.g. one network's checkpoint, locks only that part).

    Raises ``RunDirectoryBusy`` naming the process that holds it (its PID is written into
    the lock file) instead of waiting.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / lock_name
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            part = "" if lock_name == LOCK_FILE else f" ({lock_name})"
            raise RunDirectoryBusy(f"{out}{part} is being written by another process (pid {holder}); wait for it "
                                   f"to finish or stop it before resuming, or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield out
    finally:
        handle.close()  # closing the descriptor releases the lock


def is_launching_process() -> bool:
    """True unless the environment marks this process as a non-zero distributed rank."""
    return all(os.environ.get(name, "0") == "0" for name in _RANK_VARIABLES)
