"""The isotropic SO(3) path's radial velocity at the concentrations configs actually use.

Expected values come from the definition ``d theta/dt = -(dF_t/dt)(theta) / m_t(theta)``
evaluated in 50-digit arithmetic (mpmath), from its Laplace asymptote, and from the
continuity equation of the angle law; each check has a wrong control that must fail it.
"""

from __future__ import annotations

import math

import pytest
import torch

from multiflow_gm.core import IsotropicSO3Path, so3
from multiflow_gm.core.paths.so3_isotropic import KAPPA_MAX_LIMIT, radial_speed_per_kappa

mpmath = pytest.importorskip("mpmath")
F64 = dict(dtype=torch.float64)
KAPPAS = (200.0, KAPPA_MAX_LIMIT)


def _reference_speed_per_kappa(theta: float, kappa: float) -> float:
    """``-(dF/dkappa)(theta) / m(theta)`` in 50-digit arithmetic, from the side of theta with less mass."""
    mp = mpmath.mp
    mp.dps = 50
    k = mp.mpf(kappa)

    def log_z(x):
        return mp.log(mp.besseli(0, 2 * x) - mp.besseli(1, 2 * x)) - 2 * x

    dlz = mp.diff(log_z, k)

    def density(phi):  # unnormalised; the normaliser cancels in the ratio
        return mp.exp(2 * k * (mp.cos(phi) - 1)) * (1 - mp.cos(phi))

    def d_density(phi):
        return density(phi) * (2 * (mp.cos(phi) - 1) - dlz)

    th = mp.mpf(theta)
    mode = mp.acos(1 - 1 / (2 * k)) if k >= 0.25 else mp.pi
    if th < mode:
        d_cdf = mp.quad(d_density, [0, th])
    else:
        # Break points resolve the decay just above theta (width about 1 / (2 kappa sin theta)).
        points = sorted({th, *(min(mp.pi, th + mp.mpf(10) ** -e) for e in range(5, -1, -1)), mp.pi})
        d_cdf = -mp.quad(d_density, points)
    return float(-d_cdf / density(th))


@pytest.mark.parametrize("kappa_max", KAPPAS)
def test_velocity_is_finite_over_the_whole_angle_range(kappa_max):
    path = IsotropicSO3Path(kappa_max=kappa_max)
    theta = torch.linspace(0, math.pi - 1e-6, 400, **F64)
    axis = torch.tensor([0.3, -0.5, 0.8], **F64)
    r = so3.exp(theta[:, None] * axis / axis.norm())
    for t in torch.linspace(0, 0.99, 34).tolist():
        v = path.velocity(r, torch.eye(3, **F64).expand_as(r), t)
        assert torch.isfinite(v).all(), f"non-finite velocity at t={t}"


@pytest.mark.parametrize("kappa", [0.1, 2.0, 50.0, 162.0, 1000.0])
@pytest.mark.parametrize("theta", [0.01, 0.05, 0.3, 0.6, 1.0, 2.0, 3.0])
def test_speed_matches_the_definition_in_high_precision(kappa, theta):
    got = float(radial_speed_per_kappa(torch.tensor(theta, **F64), torch.tensor(kappa, **F64)))
    want = _reference_speed_per_kappa(theta, kappa)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("kappa_max", KAPPAS)
@pytest.mark.parametrize("t", [0.5, 0.9, 0.99])
def test_speed_follows_its_asymptotes(kappa_max, t):
    path = IsotropicSO3Path(kappa_max=kappa_max)
    kappa, d_kappa = (float(x) for x in path.kappa(t, torch.eye(3, **F64)))
    # Away from the peak (Laplace): |d theta/dt| -> tan(theta/2) kappa' / kappa, with a relative
    # correction of about 1 / (8 kappa cos^2(theta/2)): checked where that is under 1%.
    theta = torch.tensor([0.6, 1.0, 1.5, 2.0, 2.5], **F64)
    theta = theta[8 * kappa * torch.cos(theta / 2) ** 2 >= 100]
    speed = -d_kappa * radial_speed_per_kappa(theta, torch.tensor(kappa, **F64))
    tail = torch.tan(theta / 2) * d_kappa / kappa
    assert torch.allclose(speed, tail, rtol=0.01)
    assert not torch.allclose(theta * d_kappa / (2 * kappa), tail, rtol=0.01)  # control: wrong law
    # Near the peak the law is a scale family, theta ~ kappa^(-1/2): theta kappa' / (2 kappa).
    near = torch.tensor([0.1, 0.5, 1.0], **F64) / math.sqrt(kappa)
    speed = -d_kappa * radial_speed_per_kappa(near, torch.tensor(kappa, **F64))
    assert torch.allclose(speed, near * d_kappa / (2 * kappa), rtol=0.01)


def _angle_density(path, theta, t):
    kappa, _ = path.kappa(t, torch.eye(3, **F64))
    from multiflow_gm.core.paths.so3_isotropic import log_normaliser
    return torch.exp(2 * kappa * (torch.cos(theta) - 1) - log_normaliser(kappa)) * (1 - torch.cos(theta)) / math.pi


@pytest.mark.parametrize("kappa_max", KAPPAS)
@pytest.mark.parametrize("t", [0.3, 0.7, 0.95])
def test_forward_equation_closes_on_a_grid(kappa_max, t):
    """``dF_t/dt (theta) + m_t(theta) v_t(theta) = 0``: the flux through each angle shell."""
    path = IsotropicSO3Path(kappa_max=kappa_max)
    kappa, d_kappa = path.kappa(t, torch.eye(3, **F64))
    reach = float(path.support_reach(kappa))
    theta = torch.linspace(0, reach, 40001, **F64)
    dt = 1e-5

    def cdf(time):
        return torch.cumulative_trapezoid(_angle_density(path, theta, time), theta)

    d_cdf = (cdf(t + dt) - cdf(t - dt)) / (2 * dt)
    speed = d_kappa * radial_speed_per_kappa(theta[1:], kappa)
    flux = _angle_density(path, theta[1:], t) * speed
    scale = d_cdf.abs().max()
    assert ((d_cdf + flux).abs().max() / scale) < 1e-4
    assert ((d_cdf + 1.05 * flux).abs().max() / scale) > 1e-3  # control: a 5% wrong speed fails


def test_kappa_max_above_the_limit_is_refused():
    with pytest.raises(ValueError, match="kappa_max"):
        IsotropicSO3Path(kappa_max=KAPPA_MAX_LIMIT * 2)
