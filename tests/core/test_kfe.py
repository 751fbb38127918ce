"""Kolmogorov forward equation: d/dt p_t(.|z) equals the adjoint generator applied to p_t.

Every check is on a grid with finite differences in t (and x); the tolerance is
relative to the size of d/dt p.
"""

import math

import pytest
import torch

from multiflow_gm.core import (AffineGaussianPath, CosineScheduler, GeodesicSO3Path,
                               IsotropicSO3Path, LinearScheduler, MixtureTokenPath,
                               PolynomialScheduler, so3)

TORCH64 = dict(dtype=torch.float64)
X = torch.linspace(-6, 6, 6001, **TORCH64)
DT = 1e-5
Z = torch.tensor(0.7, **TORCH64)


def _density(path, t):
    return torch.exp(path.log_prob(X, Z.expand_as(X), t))


def _dt_density(path, t):
    return (_density(path, t + DT) - _density(path, t - DT)) / (2 * DT)


def _d_dx(f):
    return torch.gradient(f, spacing=(X,))[0]


def _assert_close(lhs, rhs, rtol):
    err = (lhs - rhs).abs().max() / lhs.abs().max()
    assert err < rtol, f"relative KFE error {err:.2e} >= {rtol}"


PATHS = [AffineGaussianPath(LinearScheduler()), AffineGaussianPath(CosineScheduler()),
         AffineGaussianPath(PolynomialScheduler(2.0))]
TIMES = [0.2, 0.5, 0.85]


@pytest.mark.parametrize("path", PATHS, ids=["condot", "cosine", "poly2"])
@pytest.mark.parametrize("t", TIMES)
def test_flow_kfe(path, t):
    p = _density(path, t)
    u = path.velocity(X, Z.expand_as(X), t)
    _assert_close(_dt_density(path, t), -_d_dx(p * u), 2e-3)


@pytest.mark.parametrize("path", PATHS, ids=["condot", "cosine", "poly2"])
@pytest.mark.parametrize("t", TIMES)
def test_diffusion_kfe(path, t):
    g = lambda s: 0.8 * torch.ones_like(s)  # noqa: E731
    p = _density(path, t)
    drift = path.diffusion_drift(X, Z.expand_as(X), t, g)
    adjoint = -_d_dx(p * drift) + 0.5 * 0.8 ** 2 * _d_dx(_d_dx(p))
    _assert_close(_dt_density(path, t), adjoint, 5e-3)


@pytest.mark.parametrize("path", PATHS, ids=["condot", "cosine", "poly2"])
@pytest.mark.parametrize("t", TIMES)
def test_jump_kfe(path, t):
    p = _density(path, t)
    lam = path.jump_intensity(X, Z.expand_as(X), t)
    landing = path.jump_kernel(Z, t).density(X)
    # (L* p)(x) = J(x) int lambda(y) p(y) dy - lambda(x) p(x): the landing law does not depend on y.
    adjoint = landing * torch.trapezoid(lam * p, X) - lam * p
    _assert_close(_dt_density(path, t), adjoint, 1e-3)


def test_condot_jump_matches_spec_closed_form():
    path = AffineGaussianPath(LinearScheduler())
    t = 0.4
    x = torch.randn(1000, **TORCH64) * 2
    z = torch.randn(1000, **TORCH64)
    k = x ** 2 - (t + 1) * x * z - (1 - t) ** 2 + t * z ** 2
    assert torch.allclose(path.jump_intensity(x, z, t), k.clamp_min(0) / (1 - t) ** 3, atol=1e-12)
    assert torch.allclose(path.dt_log_prob(x, z, t), -k / (1 - t) ** 3, atol=1e-12)
    # Landing law ∝ [-k_t(y)]_+ N(y; t z, (1-t)^2).
    zz = torch.tensor(0.3, **TORCH64)
    ky = X ** 2 - (t + 1) * X * zz - (1 - t) ** 2 + t * zz ** 2
    ref = (-ky).clamp_min(0) * torch.exp(-0.5 * ((X - t * zz) / (1 - t)) ** 2)
    ref = ref / torch.trapezoid(ref, X)
    assert torch.allclose(path.jump_kernel(zz, t).density(X), ref, atol=1e-6)


def test_gaussian_landing_draws_and_bins_follow_density():
    path = AffineGaussianPath(LinearScheduler())
    kernel = path.jump_kernel(torch.full((200000,), 0.3, **TORCH64), 0.6)
    draws = kernel.sample()
    edges = torch.linspace(-1.5, 1.5, 31, **TORCH64)
    binned = path.jump_kernel(torch.tensor(0.3, **TORCH64), 0.6).bin_masses(edges)
    counts = torch.histc(draws.clamp(-1.5, 1.5 - 1e-9), bins=30, min=-1.5, max=1.5)
    assert (counts / counts.sum() - binned).abs().max() < 0.005
    assert torch.allclose(binned.sum(), torch.tensor(1.0, **TORCH64))


@pytest.mark.parametrize("noise", ["mask", "uniform"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_ctmc_kfe(noise, eta, t):
    path = MixtureTokenPath(5, noise)
    size = path.space.size
    z = torch.tensor([[2]])
    probs = lambda s: path.conditional_probs(z, s)[0, 0]  # noqa: E731
    dp = (probs(t + DT) - probs(t - DT)) / (2 * DT)
    states = torch.arange(size)[:, None]
    # rates[y, x'] = R(x' | y): the rate of leaving state y for x'.
    rates = path.conditional_rates(states, z.expand(size, 1), t, eta=eta)[:, 0, :]
    p = probs(t)
    adjoint = rates.T @ p - p * rates.sum(-1)
    assert torch.allclose(dp, adjoint, atol=1e-6 * max(1.0, dp.abs().max().item()))


def _angle_grid():
    return torch.linspace(1e-3, math.pi - 1e-3, 3001, **TORCH64)


def _radial_speed(path, theta, t):
    """d theta / dt of the flow at rotations at angle theta from r1 = I."""
    axis = torch.tensor([0.0, 0.0, 1.0], **TORCH64)
    r = so3.exp(theta[:, None] * axis)
    r1 = torch.eye(3, **TORCH64).expand_as(r)
    u = path.velocity(r, r1, t)
    log_rel = so3.log_map(r, r1)
    return -(u * log_rel).sum(-1) / theta


def _angle_marginal(path, theta, t):
    axis = torch.tensor([0.3, -0.2, 0.9], **TORCH64)
    r = so3.exp(theta[:, None] * axis / axis.norm())
    r1 = torch.eye(3, **TORCH64).expand_as(r)
    return torch.exp(path.log_prob(r, r1, t)) * so3.haar_angle_density(theta)


@pytest.mark.parametrize("path", [GeodesicSO3Path(), IsotropicSO3Path(kappa_max=20.0)],
                         ids=["geodesic", "isotropic"])
@pytest.mark.parametrize("t", [0.3, 0.6])
def test_so3_flow_kfe_on_the_angle(path, t):
    theta = _angle_grid()
    m = _angle_marginal(path, theta, t)
    dm = (_angle_marginal(path, theta, t + DT) - _angle_marginal(path, theta, t - DT)) / (2 * DT)
    flux = m * _radial_speed(path, theta, t)
    adjoint = -torch.gradient(flux, spacing=(theta,))[0]
    inside = m > 0  # the geodesic path's density jumps at its support boundary
    if isinstance(path, GeodesicSO3Path):
        inside &= theta < (1 - t) * math.pi - 0.02
    err = (dm - adjoint)[inside].abs().max() / dm[inside].abs().max()
    assert err < 5e-3


@pytest.mark.parametrize("t", [0.3, 0.7])
def test_so3_jump_kfe_on_the_angle(t):
    path = IsotropicSO3Path(kappa_max=20.0)
    theta = _angle_grid()
    m = _angle_marginal(path, theta, t)
    dm = (_angle_marginal(path, theta, t + DT) - _angle_marginal(path, theta, t - DT)) / (2 * DT)
    r = so3.exp(theta[:, None] * torch.tensor([1.0, 0.0, 0.0], **TORCH64))
    lam = path.jump_intensity(r, torch.eye(3, **TORCH64).expand_as(r), t)
    kappa, _ = path.kappa(t, torch.eye(3, **TORCH64))
    adjoint = path.landing_angle_density(theta, kappa) * torch.trapezoid(lam * m, theta) - lam * m
    assert (dm - adjoint).abs().max() / dm.abs().max() < 2e-3


@pytest.mark.parametrize("t", [0.3, 0.9])
def test_so3_landing_draws_follow_landing_density(t):
    path = IsotropicSO3Path(kappa_max=20.0)
    draws = so3.angle(path.sample_landing(torch.eye(3, **TORCH64).expand(100000, 3, 3), t))
    kappa, _ = path.kappa(t, torch.eye(3, **TORCH64))
    grid = torch.linspace(0, float(path.landing_cutoff(kappa)), 2001, **TORCH64)
    cdf = torch.cumulative_trapezoid(path.landing_angle_density(grid, kappa), grid)
    cdf = torch.cat([torch.zeros(1, **TORCH64), cdf])
    empirical = torch.searchsorted(draws.sort().values, grid).double() / draws.numel()
    assert (empirical - cdf).abs().max() < 0.01
    assert draws.max() <= path.landing_cutoff(kappa) + 1e-9


@pytest.mark.parametrize("t", [0.2, 0.8])
def test_so3_isotropic_draws_follow_path_density(t):
    path = IsotropicSO3Path(kappa_max=20.0)
    draws = so3.angle(path.sample(torch.eye(3, **TORCH64).expand(100000, 3, 3), t))
    grid = torch.linspace(1e-6, math.pi, 3001, **TORCH64)
    cdf = torch.cumulative_trapezoid(_angle_marginal(path, grid, t), grid)
    cdf = torch.cat([torch.zeros(1, **TORCH64), cdf])
    empirical = torch.searchsorted(draws.sort().values, grid).double() / draws.numel()
    assert (empirical - cdf).abs().max() < 0.01
