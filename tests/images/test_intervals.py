"""Jackknife intervals of the Frechet distance, checked against repeated independent sets."""

import numpy as np
import pytest

from multiflow_gm.images.frechet import FeatureStats, feature_stats, frechet_distance
from multiflow_gm.images.intervals import (_weighted_stats, difference_interval, distance_interval,
                                           leave_one_out_stats)

DIM, N = 4, 400
REFERENCE = FeatureStats(np.zeros(DIM), np.eye(DIM), 10**6)
SHIFT = np.array([1.0, 0.0, 0.0, 0.0])  # population distance |shift|^2 = 1


def _set(rng, shift=SHIFT, n=N):
    return rng.standard_normal((n, DIM)) + shift


def test_weighted_stats_equal_the_stats_of_the_repeated_rows():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((7, 3))
    counts = np.array([0, 2, 1, 3, 0, 1, 1], dtype=float)
    got = _weighted_stats(f, counts)
    want = feature_stats(np.repeat(f, counts.astype(int), axis=0))
    np.testing.assert_allclose(got.mean, want.mean, atol=1e-12)
    np.testing.assert_allclose(got.cov, want.cov, atol=1e-12)


def test_leave_one_out_downdate_equals_recomputing_without_the_row():
    f = np.random.default_rng(5).standard_normal((9, 3)) * [1.0, 3.0, 0.2]
    for i, stats in enumerate(leave_one_out_stats(f)):
        want = feature_stats(np.delete(f, i, axis=0))
        np.testing.assert_allclose(stats.mean, want.mean, atol=1e-12)
        np.testing.assert_allclose(stats.cov, want.cov, atol=1e-12)


def test_standard_error_matches_the_spread_over_independent_sets():
    rng = np.random.default_rng(1)
    spread = np.std([frechet_distance(feature_stats(_set(rng)), REFERENCE) for _ in range(300)])
    interval = distance_interval(_set(rng), REFERENCE)
    assert interval.low < interval.estimate < interval.high
    assert interval.se == pytest.approx(spread, rel=0.3)
    assert (interval.high - interval.low) == pytest.approx(2 * 1.96 * interval.se, rel=1e-3)
    # Control: a tenth of the samples gives an interval about sqrt(10) wider.
    small = distance_interval(_set(rng, n=N // 10), REFERENCE)
    assert small.se > 2 * interval.se


def test_bias_estimate_matches_the_small_sample_bias():
    # The population distance is exactly 1; the mean over sets of size 40 exceeds it by the bias.
    rng = np.random.default_rng(6)
    n = 40
    mean = np.mean([frechet_distance(feature_stats(_set(rng, n=n)), REFERENCE) for _ in range(2000)])
    bias = np.mean([distance_interval(_set(rng, n=n), REFERENCE).bias for _ in range(100)])
    assert bias == pytest.approx(mean - 1.0, rel=0.3)


def test_paired_difference_of_one_set_with_itself_is_exactly_zero():
    f = _set(np.random.default_rng(2))
    d = difference_interval(f, f, REFERENCE)
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.excludes_zero()


def test_paired_difference_sees_a_shift_that_separate_intervals_overlap_on():
    rng = np.random.default_rng(3)
    base = _set(rng)
    moved = base + np.array([0.1, 0.0, 0.0, 0.0])  # same noise, distance larger by about 0.21
    d = difference_interval(moved, base, REFERENCE)
    assert d.excludes_zero() and d.low > 0
    a, b = distance_interval(moved, REFERENCE), distance_interval(base, REFERENCE)
    assert a.low < b.high  # unpaired intervals overlap: pairing is what resolves the difference


def test_independent_sets_of_one_law_rarely_differ():
    rng = np.random.default_rng(4)
    excluded = sum(difference_interval(_set(rng), _set(rng), REFERENCE).excludes_zero() for _ in range(20))
    assert excluded <= 3
