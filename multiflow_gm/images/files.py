"""Safe reads of the benchmark's torch files (checkpoints, cached classifier); writes use atomic_files."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multiflow_gm.errors import UserError


def read_json_or_empty(path: Path) -> dict:
    """A JSON record the benchmark wrote, or ``{}`` when it is missing or unreadable (then redone)."""
    try:
        return json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    except (OSError, ValueError):
        return {}


def load_torch_file(path: Path) -> dict:
    """``torch.load(weights_only=True)``; an unreadable file is a user error naming the path."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported, not a crash
        raise UserError(f"cannot read {path} (delete it to start again): {err}") from None

