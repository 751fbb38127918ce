"""Seeded random generators from integer keys: every reproducible draw of the project
(training steps, augmentation, sampling chunks, validation, benchmarks, distillation)
is a pure function of a tuple of integers through these two helpers."""

from __future__ import annotations

import numpy as np
import torch


def seed_from(*keys: int) -> int:
    """A 63-bit seed that is a stable function of ``keys`` (numpy's SeedSequence hash)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def seeded_generator(*keys: int, device="cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded by :func:`seed_from` of ``keys``."""
    return torch.Generator(device=device).manual_seed(seed_from(*keys))
