"""Atomic writes and safe reads of the benchmark's files (checkpoints, tables, pictures)."""

from __future__ import annotations

from pathlib import Path

import torch

from multiflow_gm.atomic_files import atomic_torch_save, atomic_write_json, atomic_write_text
from multiflow_gm.errors import UserError

__all__ = ["atomic_torch_save", "atomic_write_json", "atomic_write_text", "load_torch_file"]


def load_torch_file(path: Path) -> dict:
    """``torch.load(weights_only=True)``; an unreadable file is a user error naming the path."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported, not a crash
        raise UserError(f"cannot read {path} (delete it to start again): {err}") from None

