"""Isotropic concentration path on SO(3): a path with a density, so it has jumps.

``p_t(r | r_1) = exp(2 kappa_t (cos theta - 1)) / Z(kappa_t)`` relative to Haar measure,
where ``theta`` is the angle of ``r_1^T r`` (the isotropic matrix-Fisher law,
``exp(kappa tr(r_1^T r))`` up to normalisation) and ``kappa_t = kappa_max alpha_t``
grows from 0 (uniform prior) to ``kappa_max`` (angular spread about
``1/sqrt(2 kappa_max)`` rad). ``Z(k) = e^{-2k} (I_0(2k) - I_1(2k))`` in closed form.

Two generators produce the same marginals, so any convex combination of them does too:

* jump: ``lambda = [-d/dt log p]_+ = kappa' [2(1 - cos theta) + d log Z/d kappa]_+``,
  landing angle law ``∝ [2(cos theta - 1) - d log Z/d kappa]_+ p(theta) (1 - cos theta)``
  around ``r_1`` with a uniform axis (drawn exactly by a 1-D inverse CDF);
* flow: radial velocity ``d theta/dt = -(d/dt F_t(theta)) / m_t(theta)`` where ``m`` is the
  angle density and ``F`` its CDF (continuity equation in the angle), integrated per angle
  from whichever side keeps the ratio ``m(phi) / m(theta)`` bounded (see
  :func:`radial_speed_per_kappa`), so it stays finite and accurate far from ``r_1`` at any
  ``kappa``.

Angle tables are computed once per distinct ``kappa`` (a scalar time costs one
table however large the batch) on a uniform grid and read with gathers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from multiflow_gm.core.dynamics import PlugInFlowStep
from multiflow_gm.core.paths.common import (ClosedFormJump, PathSample, as_time, expand_time,
                                           rotation_atom_log_likelihood)
from multiflow_gm.core.schedulers import PolynomialScheduler, Scheduler
from multiflow_gm.core.spaces import SO3Space, so3


def log_normaliser(kappa: torch.Tensor) -> torch.Tensor:
    """``log Z(kappa)`` with ``Z = i0e(2 kappa) - i1e(2 kappa)`` (Haar-normalised)."""
    x = 2 * kappa
    return torch.log(torch.special.i0e(x) - torch.special.i1e(x))


def d_log_normaliser(kappa: torch.Tensor) -> torch.Tensor:
    """``d log Z / d kappa`` (negative: concentration lowers Z)."""
    x = (2 * kappa).clamp_min(1e-8)
    i0, i1 = torch.special.i0e(x), torch.special.i1e(x)
    return 2 * (2 * i1 - 2 * i0 + i1 / x) / (i0 - i1)


# The angle tables use ``grid_size`` points up to where the density has fallen by exp(-60);
# at kappa = 1000 (spread 0.022 rad) that still puts about 60 points inside one spread.
KAPPA_MAX_LIMIT = 1000.0


@dataclass
class IsotropicSO3Path(ClosedFormJump):
    """Matrix-Fisher concentration path; ``t`` scalar or per-example ``[B]``."""

    kappa_max: float = 200.0
    scheduler: Scheduler = field(default_factory=lambda: PolynomialScheduler(2.0))
    grid_size: int = 1024
    event_dims = 2
    couples_endpoints = False  # r_t is drawn from p_t(. | r_1) directly

    def __post_init__(self):
        if not 0 < self.kappa_max <= KAPPA_MAX_LIMIT:
            raise ValueError(f"kappa_max must lie in (0, {KAPPA_MAX_LIMIT:g}]; got {self.kappa_max}")

    def kappa(self, t, r):
        """``(kappa_t, d kappa_t / dt)`` in float64, broadcastable to the batch shape of ``r``."""
        t = expand_time(as_time(t, r), r, event_dims=2).to(torch.float64)
        s = self.scheduler(t)
        return self.kappa_max * s.alpha, self.kappa_max * s.d_alpha

    def atom_log_likelihood(self, r: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(r_n | z_k)`` summed over extra entries, ``[N, K]`` (``-inf`` off support)."""
        return rotation_atom_log_likelihood(self.log_prob, r, atoms, t)

    def prior(self, shape, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
        """Haar-uniform rotations ``[*shape, 3, 3]`` (the law at kappa = 0)."""
        return so3.uniform(shape, dtype=dtype, device=device, generator=generator)

    def draw(self, x1: torch.Tensor, t, generator=None, x0: torch.Tensor | None = None) -> PathSample:
        """``r_t ~ p_t(. | r_1)``; no prior draw is involved, so ``x0`` must be None."""
        if x0 is not None:
            raise ValueError("the isotropic SO(3) path draws r_t around r_1 directly; it takes no x0")
        return PathSample(self.sample(x1, t, generator), x1)

    def target(self, record: PathSample, t) -> torch.Tensor:
        """Radial body-frame velocity at ``record.x_t`` ``[..., 3]`` (rad per unit time)."""
        return self.estimate(record.x_t, record.x1, t)

    def estimate(self, x: torch.Tensor, x1_hat: torch.Tensor, t) -> torch.Tensor:
        """:meth:`target`'s formula at state ``x`` with the prediction ``x1_hat`` in place of ``x1``."""
        return self.velocity(x, x1_hat, t)

    def regression_time(self, t: torch.Tensor, t_clip: float) -> torch.Tensor:
        """Unclipped: the velocity depends on t beyond a scalar rate (the angle law changes shape),
        so another time would change the minimiser; it is bounded as t -> 1 and needs no clip."""
        return t

    def prediction_step(self):
        """Euler steps along the radial velocity at the predicted clean rotation."""
        return PlugInFlowStep(SO3Space(), self)

    def log_prob(self, r, r1, t):
        kappa, _ = self.kappa(t, r)
        theta = so3.distance(r1, r).to(torch.float64)
        return (2 * kappa * (torch.cos(theta) - 1) - log_normaliser(kappa)).to(r.dtype)

    def dt_log_prob(self, r, r1, t):
        kappa, d_kappa = self.kappa(t, r)
        theta = so3.distance(r1, r).to(torch.float64)
        return (d_kappa * (2 * (torch.cos(theta) - 1) - d_log_normaliser(kappa))).to(r.dtype)

    def jump_intensity(self, r, r1, t):
        return (-self.dt_log_prob(r, r1, t)).clamp_min(0)

    @staticmethod
    def support_reach(kappa: torch.Tensor) -> torch.Tensor:
        """Angle beyond which the density is below exp(-60) of its value at 0 (pi for small kappa)."""
        return _tail_reach(torch.ones_like(kappa), kappa)

    def landing_cutoff(self, kappa: torch.Tensor) -> torch.Tensor:
        """Largest landing angle: where ``d/dt log p`` changes sign, ``2 (1 - cos) = -dlogZ``."""
        return torch.arccos((1 + 0.5 * d_log_normaliser(kappa)).clamp(-1, 1))

    def landing_angle_density(self, theta: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        """Normalised angle density of the landing law at concentration ``kappa`` (float64)."""
        grid = self._grid(self.landing_cutoff(kappa))
        norm = _trapezoid(self._landing_unnormalised(grid, kappa[..., None]), grid)
        return self._landing_unnormalised(theta, kappa) / norm

    def _landing_unnormalised(self, theta, kappa):
        gain = (2 * (torch.cos(theta) - 1) - d_log_normaliser(kappa)).clamp_min(0)
        return gain * torch.exp(2 * kappa * (torch.cos(theta) - 1)) * (1 - torch.cos(theta))

    def sample(self, r1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Draw ``r_t ~ p_t(. | r_1)``."""
        kappa, _ = self.kappa(t, r1)
        upper = self.support_reach(kappa)
        grid = self._grid(upper)
        dens = torch.exp(2 * kappa[..., None] * (torch.cos(grid) - 1)) * (1 - torch.cos(grid))
        theta = _draw_angles(dens, upper, r1.shape[:-2], generator)
        return _around(r1, theta, generator)

    def sample_landing(self, r1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Exact draws from the conditional landing law around ``r_1`` ``[..., 3, 3]``."""
        kappa, _ = self.kappa(t, r1)
        upper = self.landing_cutoff(kappa)
        dens = self._landing_unnormalised(self._grid(upper), kappa[..., None])
        theta = _draw_angles(dens, upper, r1.shape[:-2], generator)
        return _around(r1, theta, generator)

    def velocity(self, r: torch.Tensor, r1: torch.Tensor, t) -> torch.Tensor:
        """Body-frame radial velocity ``[..., 3]`` that generates the same marginals."""
        kappa, d_kappa = self.kappa(t, r)
        log_rel = so3.log_map(r, r1)
        theta = log_rel.norm(dim=-1).to(torch.float64)
        speed = d_kappa * radial_speed_per_kappa(theta, kappa)  # d theta / dt, <= 0
        unit = log_rel / theta.clamp_min(1e-12).to(r.dtype)[..., None]
        return (-speed).to(r.dtype)[..., None] * unit

    def _grid(self, upper: torch.Tensor) -> torch.Tensor:
        """Uniform angle grid ``[..., G]`` from 0 to ``upper [...]``."""
        u = torch.linspace(0, 1, self.grid_size, dtype=torch.float64, device=upper.device)
        return upper[..., None] * u


_NODES, _WEIGHTS = (torch.as_tensor(a, dtype=torch.float64) for a in np.polynomial.legendre.leggauss(96))
_TAIL_EXPONENT = 60.0  # beyond exp(-60) of the density at theta the integrand is below float64 rounding


def _tail_reach(cos_from: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """Angle where ``exp(2 kappa cos)`` has fallen by exp(-60) from its value at ``arccos(cos_from)``."""
    return torch.arccos((cos_from - _TAIL_EXPONENT / (2 * kappa.clamp_min(1e-12))).clamp(-1, 1))


def radial_speed_per_kappa(theta: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """``d theta / d kappa = -(d F / d kappa)(theta) / m(theta)`` (float64, broadcast shapes).

    ``m`` is the angle density ``exp(2 kappa (cos - 1)) (1 - cos) / (pi Z)`` and ``F`` its CDF.
    Since ``d m / d kappa = m g`` with ``g = 2 (cos - 1) - d log Z / d kappa`` and the mass is
    conserved, ``dF/dkappa (theta) / m(theta)`` equals ``int_0^theta (m/m(theta)) g`` and also
    ``-int_theta^pi (m/m(theta)) g``. Below the mode (where ``m`` rises) the first integral is
    used, above it the second; either way the ratio ``m(phi)/m(theta) <= e`` is formed in log
    space, so nothing divides rounding noise by a vanishing density. Each integral is a
    96-point Gauss-Legendre rule over the range where the integrand exceeds
    ``exp(-60)`` of its value at ``theta``.
    """
    theta, kappa = torch.broadcast_tensors(theta.to(torch.float64), kappa.to(torch.float64))
    theta = theta.clamp(1e-9, math.pi)
    cos_t = torch.cos(theta)
    d_log_z = d_log_normaliser(kappa)
    # Mode of m: 1 - cos = 1 / (2 kappa) (pi when kappa < 1/4).
    mode = torch.arccos((1 - 0.5 / kappa.clamp_min(1e-12)).clamp(-1, 1))
    below = theta < mode
    reach = _tail_reach(cos_t, kappa)
    lo = torch.where(below, torch.zeros_like(theta), theta)
    hi = torch.where(below, theta, torch.maximum(reach, theta))
    phi = lo[..., None] + (hi - lo)[..., None] * (_NODES.to(theta.device) + 1) / 2
    cos_p = torch.cos(phi)
    # (1 - cos phi) / (1 - cos theta) = (sin(phi/2) / sin(theta/2))^2, stable for small angles.
    ratio = torch.exp(2 * kappa[..., None] * (cos_p - cos_t[..., None])) \
        * (torch.sin(phi / 2) / torch.sin(theta / 2)[..., None]) ** 2
    g = 2 * (cos_p - 1) - d_log_z[..., None]
    integral = (ratio * g * _WEIGHTS.to(theta.device)).sum(-1) * (hi - lo) / 2
    d_cdf_over_m = torch.where(below, integral, -integral)
    return -d_cdf_over_m


def _around(r1, theta, generator):
    axis = so3.random_unit_vectors(theta.shape, dtype=r1.dtype, device=r1.device, generator=generator)
    return r1 @ so3.exp(theta.to(r1.dtype)[..., None] * axis)


def _trapezoid(y, x):
    return (0.5 * (y[..., 1:] + y[..., :-1]) * (x[..., 1:] - x[..., :-1])).sum(-1)


def _cumulative_trapezoid(y, x):
    cell = 0.5 * (y[..., 1:] + y[..., :-1]) * (x[..., 1:] - x[..., :-1])
    return torch.cat([torch.zeros_like(y[..., :1]), torch.cumsum(cell, -1)], -1)


def _gather_rows(table, idx):
    """``table [..., G]`` (broadcastable to ``idx``'s shape) read at integer ``idx [...]``."""
    expanded = table.expand(*idx.shape, table.shape[-1])
    return torch.gather(expanded, -1, idx[..., None]).squeeze(-1)


def _draw_angles(dens, upper, batch_shape, generator):
    """Inverse-CDF draws ``[*batch_shape]`` from tabulated densities on ``[0, upper]``.

    ``dens`` ``[..., G]`` has one row per distinct kappa; rows broadcast to the batch.
    """
    size = dens.shape[-1]
    cdf = _cumulative_trapezoid(dens, torch.linspace(0, 1, size, dtype=dens.dtype, device=dens.device))
    cdf = cdf / cdf[..., -1:].clamp_min(1e-300)
    u = torch.rand(batch_shape, dtype=dens.dtype, device=dens.device, generator=generator)
    lo = torch.zeros(batch_shape, dtype=torch.long, device=dens.device)
    hi = torch.full(batch_shape, size - 1, dtype=torch.long, device=dens.device)
    # Binary search for the cell holding u, reading the shared rows without copying them.
    for _ in range(max(1, math.ceil(math.log2(size)))):
        mid = (lo + hi) // 2
        right = _gather_rows(cdf, mid) < u
        lo = torch.where(right, mid, lo)
        hi = torch.where(right, hi, mid)
    c_lo, c_hi = _gather_rows(cdf, lo), _gather_rows(cdf, lo + 1)
    frac = ((u - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0, 1)
    return upper.expand(batch_shape) * (lo + frac) / (size - 1)
