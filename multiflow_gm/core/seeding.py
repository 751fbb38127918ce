"""Seeded torch generators: every seeded random stream of the project is built here, so a
seed means the same stream on every device and in every workload."""

from __future__ import annotations

import torch


def seeded_generator(seed: int, device="cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed`` (its draws come from that device's stream)."""
    return torch.Generator(device=device).manual_seed(seed)
