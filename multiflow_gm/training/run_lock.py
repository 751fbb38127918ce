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
def exclusive_run_dir(out: str | Path) -> Iterator[Path]:
    """Create ``out`` if needed and hold its lock until the block ends.

    Raises ``RunDirectoryBusy`` naming the process that holds it (its PID is written into
    the lock file) instead of waiting.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunDirectoryBusy(f"{out} is being written by another process (pid {holder}); wait for it "
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
