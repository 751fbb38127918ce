"""Options several commands share, with one definition (and one default) each.

* ``--set KEY=VALUE`` (repeatable): a config override, parsed by :mod:`multiflow_gm.config`;
  only commands that load a typed config take it.
* ``--workers N``: worker processes; default: the CPU cores this process may use.
* ``--threads N``: torch CPU threads of each process that runs torch; default: those cores
  shared among the processes that run torch at once, at least 1 and at most
  :data:`MAX_DEFAULT_THREADS` (the networks here are small: more threads mostly add overhead).
"""

from __future__ import annotations

import argparse
import os

MAX_DEFAULT_THREADS = 4


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """Worker processes when ``--workers`` is not given: one per available core."""
    return available_cores()


def default_threads(processes: int = 1) -> int:
    """Torch threads per process when ``--threads`` is not given, for ``processes`` running torch at once."""
    return max(1, min(MAX_DEFAULT_THREADS, available_cores() // max(1, processes)))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_set_argument(parser: argparse.ArgumentParser, example: str, what: str = "a config key") -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``; values are read as YAML."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override {what}, e.g. --set {example} (repeatable; unknown keys are an error)")


def add_workers_argument(parser, help: str = "worker processes", flag: str = "--workers") -> None:
    """``--workers N`` (default None: :func:`default_workers` when the command runs)."""
    parser.add_argument(flag, type=positive_int, default=None, metavar="N",
                        help=f"{help} (default: the available CPU cores, {default_workers()} here)")


def add_threads_argument(parser, help: str = "torch CPU threads", flag: str = "--threads",
                         per_worker: bool = False) -> None:
    """``--threads N`` (default None: :func:`default_threads` when the command runs)."""
    rule = ("the available cores shared among the workers" if per_worker
            else f"the available cores, at most {MAX_DEFAULT_THREADS}")
    parser.add_argument(flag, type=positive_int, default=None, metavar="N",
                        help=f"{help} (default: {rule}; 1 is often faster on a busy machine)")


def set_torch_threads(threads: int | None, processes: int = 1) -> int:
    """Set torch's CPU threads to ``threads`` (or the default for ``processes``); returns the number set."""
    import torch

    value = threads if threads is not None else default_threads(processes)
    torch.set_num_threads(value)
    return value
