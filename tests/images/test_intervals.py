"""Bootstrap intervals of the Frechet distance, checked against repeated independent sets."""

import numpy as np
import pytest

from multiflow_gm.images.frechet import FeatureStats, feature_stats, frechet_distance
from multiflow_gm.images.intervals import _weighted_stats, difference_interval, distance_interval

DIM, N = 4, 400
REFERENCE = FeatureStats(np.zeros(DIM), np.eye(DIM), 10**6)
SHIFT = np.array([1.0, 0.0, 0.0, 0.0])  # population distance |shift|^2 = 1


def _set(rng, shift=SHIFT):
    return rng.standard_normal((N, DIM)) + shift


def test_weighted_stats_equal_the_stats_of_the_repeated_rows():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((7, 3))
    counts = np.array([0, 2, 1, 3, 0, 1, 1], dtype=float)
    got = _weighted_stats(f, counts)
    want = feature_stats(np.repeat(f, counts.astype(int), axis=0))
    np.testing.assert_allclose(got.mean, want.mean, atol=1e-12)
    np.testing.assert_allclose(got.cov, want.cov, atol=1e-12)


def test_interval_width_matches_the_spread_over_independent_sets():
    rng = np.random.default_rng(1)
    spread = np.std([frechet_distance(feature_stats(_set(rng)), REFERENCE) for _ in range(300)])
    interval = distance_interval(_set(rng), REFERENCE, draws=400, seed=0)
    half_width = (interval.high - interval.low) / (2 * 1.96)
    assert interval.low < interval.estimate < interval.high
    assert half_width == pytest.approx(spread, rel=0.3)
    # Control: a tenth of the samples gives a clearly wider interval (about sqrt(10) wider).
    small = distance_interval(_set(rng)[: N // 10], REFERENCE, draws=400, seed=0)
    assert (small.high - small.low) > 2 * (interval.high - interval.low)


def test_paired_difference_of_one_set_with_itself_is_exactly_zero():
    f = _set(np.random.default_rng(2))
    d = difference_interval(f, f, REFERENCE, draws=50)
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.excludes_zero()


def test_paired_difference_sees_a_shift_that_separate_intervals_overlap_on():
    rng = np.random.default_rng(3)
    base = _set(rng)
    moved = base + np.array([0.1, 0.0, 0.0, 0.0])  # same noise, distance larger by about 0.21
    d = difference_interval(moved, base, REFERENCE, draws=400)
    assert d.excludes_zero() and d.low > 0
    a, b = distance_interval(moved, REFERENCE, draws=400), distance_interval(base, REFERENCE, draws=400)
    assert a.low < b.high  # unpaired intervals overlap: pairing is what resolves the difference


def test_independent_sets_of_one_law_rarely_differ():
    rng = np.random.default_rng(4)
    excluded = sum(difference_interval(_set(rng), _set(rng), REFERENCE, draws=200, seed=k).excludes_zero()
                   for k in range(20))
    assert excluded <= 4
