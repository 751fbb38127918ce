"""Atomic writes and safe reads of the benchmark's files (checkpoints, tables, pictures)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from multiflow_gm.errors import UserError


def atomic_torch_save(obj: dict, path: Path) -> Path:
    """``torch.save`` of a plain dict of tensors / numbers / strings to a temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_torch_file(path: Path) -> dict:
    """``torch.load(weights_only=True)``; an unreadable file is a user error naming the path."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported, not a crash
        raise UserError(f"cannot read {path} (delete it to start again): {err}") from None


def atomic_write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def atomic_write_json(path: Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
