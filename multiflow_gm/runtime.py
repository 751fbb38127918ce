"""Process-wide settings for fast CPU tensor work: the C allocator's thresholds.

By default glibc serves every large block (over 128 KiB, adapting up to 32 MiB)
with a fresh ``mmap`` and unmaps it on free, so each new activation tensor pays one
page fault per 4 KiB page. On the paper-size co-design network that was 10,000
faults and about a quarter of the time of a forward pass at 100 residues, and a
third at 400 (``scripts/bench_protein.py``). Raising the mmap and trim thresholds
keeps freed blocks in the heap for reuse. The price is fragmentation: forward +
backward at 400 residues ran 1.58x faster (9.1 -> 5.8 s) with peak memory 3.5 -> 4.7 GB.
A 64 MiB threshold kept the memory but lost all of the speed at 400 residues, where the
pair tensors are 82 MB each.

Called by the command-line entry point and the benchmark scripts, not on import:
a library should not change its host process's allocator unasked. Set
``MULTIFLOW_GM_MALLOC_TUNING=0`` to opt out.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1   # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_THRESHOLD_BYTES = 1 << 30
_applied: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GiB; True if applied (once per process).

    A no-op returning False on other C libraries, or when ``MULTIFLOW_GM_MALLOC_TUNING=0``.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MULTIFLOW_GM_MALLOC_TUNING", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD_BYTES))
    return _applied
