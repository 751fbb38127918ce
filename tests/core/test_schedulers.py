"""Schedulers: derivatives agree with finite differences; grids end exactly at 1."""

import pytest
import torch

from multiflow_gm.core.schedulers import (CosineScheduler, ExponentialRateScheduler,
                                          LinearScheduler, PolynomialScheduler, VPScheduler,
                                          make_scheduler, time_grid)

SCHEDULERS = [LinearScheduler(), PolynomialScheduler(2.0), PolynomialScheduler(3.0),
              CosineScheduler(), VPScheduler(), ExponentialRateScheduler(10.0)]


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: type(s).__name__)
def test_derivatives_match_finite_differences(scheduler):
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    h = 1e-6
    plus, minus, out = scheduler(t + h), scheduler(t - h), scheduler(t)
    assert torch.allclose((plus.alpha - minus.alpha) / (2 * h), out.d_alpha, rtol=1e-5, atol=1e-6)
    assert torch.allclose((plus.sigma - minus.sigma) / (2 * h), out.d_sigma, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scheduler", SCHEDULERS[:4] + SCHEDULERS[5:], ids=lambda s: type(s).__name__)
def test_endpoints_noise_to_data(scheduler):
    ends = scheduler(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(ends.alpha, torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ends.sigma, torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-12)


def test_exponential_rate_is_nearly_constant():
    # alpha'/(1 - alpha) = c / (1 - exp(-c (1 - t))): about c until the very end.
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    rate = ExponentialRateScheduler(10.0).rate(t)
    assert torch.allclose(rate, 10.0 / (1 - torch.exp(-10.0 * (1 - t))), rtol=1e-10)
    assert (rate[:2] - 10.0).abs().max() < 0.07


def test_time_grid_ends_exactly():
    grid = time_grid(7, 0.01, 1.0)
    assert grid.numel() == 8 and grid[-1].item() == 1.0 and grid[0].item() == 0.01
    with pytest.raises(ValueError, match="num_steps"):
        time_grid(0)


def test_make_scheduler_names_the_bad_key():
    assert isinstance(make_scheduler("cosine"), CosineScheduler)
    with pytest.raises(ValueError, match="unknown scheduler 'cosin'"):
        make_scheduler("cosin")
