"""Learning-rate schedules shared by the protein and image trainers."""

from __future__ import annotations

import math


def warmup_cosine_scale(step: int, warmup_steps: int, decay_start: int, decay_end: int | None,
                        final_fraction: float) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup_steps`` (0: none); then, when ``decay_end`` is given and
    after ``decay_start``, a half cosine from 1 down to ``final_fraction`` at ``decay_end``,
    held there afterwards. ``decay_end=None`` is a constant rate after warm-up.
    """
    scale = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if decay_end is not None and decay_end > decay_start:
        progress = min(1.0, max(0.0, (step - decay_start) / (decay_end - decay_start)))
        scale *= final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return scale
