"""Bootstrap intervals for the Frechet distance of one generated set, and for the difference
of two sets drawn from the same starting noise.

A cell of the benchmark is one set of ``N`` generated images. Its sampling noise is
estimated by resampling the ``N`` feature vectors with replacement and recomputing
the distance to the (fixed) training statistics; the interval is the percentile
interval of those redraws. Two cells sampled with the same seed start image ``i`` from
the same ``x_0``, so their difference is resampled by pairs (the same indices in both),
which removes the noise the two sets share.

What this does not cover: the variation between training seeds of a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multiflow_gm.images.frechet import FeatureStats, frechet_distance


@dataclass(frozen=True)
class Interval:
    """A point estimate (on the full set) and a percentile interval ``[low, high]``."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def _weighted_stats(features: np.ndarray, counts: np.ndarray) -> FeatureStats:
    """Mean and unbiased covariance of the multiset that repeats row ``i`` ``counts[i]`` times."""
    n = counts.sum()
    mean = counts @ features / n
    centred = features - mean
    cov = (centred * counts[:, None]).T @ centred / (n - 1)
    return FeatureStats(mean, cov, int(n))


def _resample_counts(n: int, draws: int, seed: int) -> np.ndarray:
    """``[draws, n]`` multiplicities of ``draws`` bootstrap resamples of ``n`` items."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(draws, n))
    return np.stack([np.bincount(row, minlength=n) for row in index]).astype(np.float64)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1); got {level}")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def distance_interval(features: np.ndarray, reference: FeatureStats, draws: int = 500,
                      level: float = 0.95, seed: int = 0) -> Interval:
    """Frechet distance of ``features [N, D]`` to ``reference`` with its bootstrap interval."""
    f = np.asarray(features, dtype=np.float64)
    estimate = frechet_distance(_weighted_stats(f, np.ones(len(f))), reference)
    redraws = np.array([frechet_distance(_weighted_stats(f, c), reference)
                        for c in _resample_counts(len(f), draws, seed)])
    return Interval(estimate, *_percentiles(redraws, level))


def difference_interval(features_a: np.ndarray, features_b: np.ndarray, reference: FeatureStats,
                        draws: int = 500, level: float = 0.95, seed: int = 0) -> Interval:
    """``distance(a) - distance(b)`` with a paired bootstrap interval (row ``i`` of ``a`` and
    of ``b`` come from the same starting noise, so they are resampled together)."""
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired sets must have the same shape; got {a.shape} and {b.shape}")
    ones = np.ones(len(a))
    estimate = (frechet_distance(_weighted_stats(a, ones), reference)
                - frechet_distance(_weighted_stats(b, ones), reference))
    redraws = np.array([frechet_distance(_weighted_stats(a, c), reference)
                        - frechet_distance(_weighted_stats(b, c), reference)
                        for c in _resample_counts(len(a), draws, seed)])
    return Interval(estimate, *_percentiles(redraws, level))
