"""Atomic file writes shared by every part of the package.

Each writer fills a temporary file in the destination's directory and renames it
over the destination, so a run killed at any moment leaves either the old file or
the new one, never half of one. Temporary names are hidden and end in ``.tmp``, so
no reader that globs for ``*.json``, ``*.pdb`` or ``*.ckpt`` ever picks one up, and
a cleanup can find leftovers of a killed run with ``.*.tmp``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_current_umask())  # mkstemp makes 0600; outputs should read like any new file
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` through a temporary file (plain containers of tensors, numbers, strings)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically and close it (format from the suffix of ``path``)."""
    import matplotlib.pyplot as plt

    savefig_kwargs.setdefault("format", Path(path).suffix.lstrip(".") or "png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **savefig_kwargs)
    finally:
        plt.close(fig)
    return Path(path)
