"""Isotropic concentration path on SO(3): a path with a density, so it has jumps.

``p_t(r | r_1) = exp(2 kappa_t (cos theta - 1)) / Z(kappa_t)`` relative to Haar measure,
where ``theta`` is the angle of ``r_1^T r`` (the isotropic matrix-Fisher law,
``exp(kappa tr(r_1^T r))`` up to normalisation) and ``kappa_t = kappa_max alpha_t``
grows from 0 (uniform prior) to ``kappa_max`` (angular spread about
``1/sqrt(2 kappa_max)`` rad). ``Z(k) = e^{-2k} (I_0(2k) - I_1(2k))`` in closed form.

Two generators produce the same marginals, so they superpose (SPEC §1):

* jump: ``lambda = [-d/dt log p]_+ = kappa' [2(1 - cos theta) + d log Z/d kappa]_+``,
  landing angle law ``∝ [2(cos theta - 1) - d log Z/d kappa]_+ p(theta) (1 - cos theta)``
  around ``r_1`` with a uniform axis (drawn exactly by a 1-D inverse CDF);
* flow: radial velocity ``d theta/dt = -(d/dt F_t(theta)) / m_t(theta)`` where ``m`` is the
  angle density and ``F`` its CDF (continuity equation in the angle).

Angle tables are computed once per distinct ``kappa`` (a scalar time costs one
table however large the batch) on a uniform grid and read with gathers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from multiflow_gm.core.paths.common import as_time, expand_time, rotation_atom_log_likelihood
from multiflow_gm.core.schedulers import PolynomialScheduler, Scheduler
from multiflow_gm.core.spaces import so3


def log_normaliser(kappa: torch.Tensor) -> torch.Tensor:
    """``log Z(kappa)`` with ``Z = i0e(2 kappa) - i1e(2 kappa)`` (Haar-normalised)."""
    x = 2 * kappa
    return torch.log(torch.special.i0e(x) - torch.special.i1e(x))


def d_log_normaliser(kappa: torch.Tensor) -> torch.Tensor:
    """``d log Z / d kappa`` (negative: concentration lowers Z)."""
    x = (2 * kappa).clamp_min(1e-8)
    i0, i1 = torch.special.i0e(x), torch.special.i1e(x)
    return 2 * (2 * i1 - 2 * i0 + i1 / x) / (i0 - i1)


@dataclass
class IsotropicSO3Path:
    """Matrix-Fisher concentration path; ``t`` scalar or per-example ``[B]``."""

    kappa_max: float = 200.0
    scheduler: Scheduler = field(default_factory=lambda: PolynomialScheduler(2.0))
    grid_size: int = 1024
    event_dims = 2

    def __post_init__(self):
        if self.kappa_max <= 0:
            raise ValueError(f"kappa_max must be > 0; got {self.kappa_max}")

    def kappa(self, t, r):
        """``(kappa_t, d kappa_t / dt)`` in float64, broadcastable to the batch shape of ``r``."""
        t = expand_time(as_time(t, r), r, event_dims=2).to(torch.float64)
        s = self.scheduler(t)
        return self.kappa_max * s.alpha, self.kappa_max * s.d_alpha

    def atom_log_likelihood(self, r: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(r_n | z_k)`` summed over extra entries, ``[N, K]`` (``-inf`` off support)."""
        return rotation_atom_log_likelihood(self.log_prob, r, atoms, t)

    def sample_prior(self, shape, dtype=torch.float32, device=None, generator=None):
        return so3.uniform(shape, dtype=dtype, device=device, generator=generator)

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
        upper = torch.full_like(kappa, math.pi)
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
        upper = torch.full_like(kappa, math.pi)
        grid = self._grid(upper)
        cos = torch.cos(grid)
        k = kappa[..., None]
        m = torch.exp(2 * k * (cos - 1) - log_normaliser(k)) * (1 - cos) / math.pi
        dm_dkappa = m * (2 * (cos - 1) - d_log_normaliser(k))
        d_cdf = _cumulative_trapezoid(dm_dkappa, grid)
        log_rel = so3.log_map(r, r1)
        theta = log_rel.norm(dim=-1).to(torch.float64)
        d_cdf_at = _lookup(d_cdf, theta, upper)
        dens_at = _lookup(m, theta, upper)
        # Where the density underflows the law is a scale family, theta ∝ kappa^{-1/2},
        # whose radial speed is -theta / (2 kappa) per unit of kappa.
        tail = dens_at < 1e-200
        speed = torch.where(tail, -theta / (2 * kappa.clamp_min(1e-12)),
                            -d_cdf_at / dens_at.clamp_min(1e-300)) * d_kappa
        unit = log_rel / theta.clamp_min(1e-12).to(r.dtype)[..., None]
        return (-speed).to(r.dtype)[..., None] * unit

    def _grid(self, upper: torch.Tensor) -> torch.Tensor:
        """Uniform angle grid ``[..., G]`` from 0 to ``upper [...]``."""
        u = torch.linspace(0, 1, self.grid_size, dtype=torch.float64, device=upper.device)
        return upper[..., None] * u


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


def _lookup(table, theta, upper):
    """Linear interpolation of a table on the uniform grid ``[0, upper]`` at ``theta``."""
    size = table.shape[-1]
    pos = (theta / upper.clamp_min(1e-300) * (size - 1)).clamp(0, size - 1)
    lo = pos.floor().long().clamp(max=size - 2)
    frac = pos - lo
    return (1 - frac) * _gather_rows(table, lo) + frac * _gather_rows(table, lo + 1)


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
