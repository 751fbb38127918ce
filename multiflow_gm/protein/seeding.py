"""Seeds from integer keys: every reproducible draw of the protein workload (training steps,
augmentation, sampling chunks, validation, benchmarks, distillation) is a pure function of a
tuple of integers (a run's seed and, e.g., the step and rank), so a resumed or re-sharded run
draws the same. Torch generators are the core's ``seeded_generator(seed_from(*keys))``, numpy
generators come from :func:`seeded_rng`."""

from __future__ import annotations

import numpy as np


def seed_from(*keys: int) -> int:
    """A 63-bit seed that is a stable function of ``keys`` (numpy's SeedSequence hash)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def seeded_rng(*keys: int, spawn_key: tuple[int, ...] = ()) -> np.random.Generator:
    """A numpy generator seeded by the integer ``keys`` (numpy's SeedSequence of them).

    ``seeded_rng(s)`` draws exactly what ``np.random.default_rng(s)`` draws; a ``spawn_key``
    gives an independent stream from the same keys (e.g. a second draw per example).
    """
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys], spawn_key=spawn_key))
