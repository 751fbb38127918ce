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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from multiflow_gm.core.paths.common import as_time, expand_time
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

    def __post_init__(self):
        if self.kappa_max <= 0:
            raise ValueError(f"kappa_max must be > 0; got {self.kappa_max}")

    def kappa(self, t, r):
        """``(kappa_t, d kappa_t / dt)`` broadcast to the batch shape of ``r``."""
        t = expand_time(as_time(t, r), r, event_dims=2)
        s = self.scheduler(t)
        shape = r.shape[:-2]
        return (self.kappa_max * s.alpha).expand(shape), (self.kappa_max * s.d_alpha).expand(shape)

    def _grid(self, upper, dtype, device):
        """Angle grid ``[..., G]`` from 0 to ``upper`` (a tensor ``[...]``)."""
        u = torch.linspace(0, 1, self.grid_size, dtype=torch.float64, device=device)
        return upper.to(torch.float64)[..., None] * u

    @staticmethod
    def _log_density(theta, kappa):
        return 2 * kappa * (torch.cos(theta) - 1) - log_normaliser(kappa)

    def sample_prior(self, shape, dtype=torch.float32, device=None, generator=None):
        return so3.uniform(shape, dtype=dtype, device=device, generator=generator)

    def log_prob(self, r, r1, t):
        kappa, _ = self.kappa(t, r)
        return self._log_density(so3.distance(r1, r), kappa)

    def dt_log_prob(self, r, r1, t):
        kappa, d_kappa = self.kappa(t, r)
        theta = so3.distance(r1, r)
        return d_kappa * (2 * (torch.cos(theta) - 1) - d_log_normaliser(kappa))

    def _around(self, r1, theta, generator):
        axis = so3.random_unit_vectors(theta.shape, dtype=r1.dtype, device=r1.device,
                                       generator=generator)
        return r1 @ so3.exp(theta.to(r1.dtype)[..., None] * axis)

    def sample(self, r1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Draw ``r_t ~ p_t(. | r_1)``."""
        kappa, _ = self.kappa(t, r1)
        kappa = kappa.to(torch.float64)
        grid = self._grid(torch.full_like(kappa, math.pi), r1.dtype, r1.device)
        dens = torch.exp(2 * kappa[..., None] * (torch.cos(grid) - 1)) * (1 - torch.cos(grid))
        theta = _sample_tabulated(dens, grid, generator)
        return self._around(r1, theta, generator)

    def jump_intensity(self, r, r1, t):
        return (-self.dt_log_prob(r, r1, t)).clamp_min(0)

    def sample_landing(self, r1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Exact draws from the conditional landing law around ``r_1`` ``[..., 3, 3]``."""
        kappa, _ = self.kappa(t, r1)
        kappa = kappa.to(torch.float64)
        dlogz = d_log_normaliser(kappa)
        # The landing law lives where d/dt log p > 0: 2 (1 - cos theta) < -dlogZ.
        cos_max = (1 + 0.5 * dlogz).clamp(-1, 1)
        grid = self._grid(torch.arccos(cos_max), r1.dtype, r1.device)
        gain = (2 * (torch.cos(grid) - 1) - dlogz[..., None]).clamp_min(0)
        dens = gain * torch.exp(2 * kappa[..., None] * (torch.cos(grid) - 1)) * (1 - torch.cos(grid))
        theta = _sample_tabulated(dens, grid, generator)
        return self._around(r1, theta, generator)

    def velocity(self, r: torch.Tensor, r1: torch.Tensor, t) -> torch.Tensor:
        """Body-frame radial velocity ``[..., 3]`` that generates the same marginals."""
        kappa, d_kappa = self.kappa(t, r)
        kappa64 = kappa.to(torch.float64)
        grid = self._grid(torch.full_like(kappa64, math.pi), r.dtype, r.device)
        cos = torch.cos(grid)
        log_m = 2 * kappa64[..., None] * (cos - 1) - log_normaliser(kappa64)[..., None]
        m = torch.exp(log_m) * (1 - cos) / math.pi
        dm = m * (2 * (cos - 1) - d_log_normaliser(kappa64)[..., None])  # d m / d kappa
        cum = _cumulative_trapezoid(dm, grid)
        log_rel = so3.log_map(r, r1)
        theta = log_rel.norm(dim=-1).to(torch.float64)
        d_cdf = _interp(theta, grid, cum)
        dens = _interp(theta, grid, m)
        # Where the density underflows the matrix-Fisher law is a scale family,
        # theta ∝ kappa^{-1/2}, whose radial speed is -theta / (2 kappa) per unit kappa.
        tail = dens < 1e-200
        speed = torch.where(tail, -theta / (2 * kappa64.clamp_min(1e-12)),
                            -d_cdf / dens.clamp_min(1e-300))
        speed = speed * d_kappa.to(torch.float64)
        unit = log_rel / theta.clamp_min(1e-12).to(r.dtype)[..., None]
        return (-speed).to(r.dtype)[..., None] * unit


def _sample_tabulated(dens, grid, generator):
    return so3.sample_angles_from_density(dens, grid, generator) if grid.dim() == 1 else \
        _sample_rowwise(dens, grid, generator)


def _sample_rowwise(dens, grid, generator):
    """Inverse-CDF draws where every row has its own grid ``[..., G]``."""
    cell = 0.5 * (dens[..., 1:] + dens[..., :-1]) * (grid[..., 1:] - grid[..., :-1])
    cdf = torch.cumsum(cell, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf / cdf[..., -1:].clamp_min(1e-300)], -1)
    u = torch.rand(*dens.shape[:-1], 1, dtype=dens.dtype, device=dens.device, generator=generator)
    idx = torch.searchsorted(cdf.contiguous(), u).clamp(1, grid.shape[-1] - 1)
    lo, hi = torch.gather(cdf, -1, idx - 1), torch.gather(cdf, -1, idx)
    g_lo, g_hi = torch.gather(grid, -1, idx - 1), torch.gather(grid, -1, idx)
    frac = ((u - lo) / (hi - lo).clamp_min(1e-300)).clamp(0, 1)
    return (g_lo + frac * (g_hi - g_lo)).squeeze(-1)


def _cumulative_trapezoid(y, x):
    cell = 0.5 * (y[..., 1:] + y[..., :-1]) * (x[..., 1:] - x[..., :-1])
    return torch.cat([torch.zeros_like(y[..., :1]), torch.cumsum(cell, -1)], -1)


def _interp(q, grid, values):
    """Linear interpolation of ``values [..., G]`` on rows ``grid [..., G]`` at ``q [...]``."""
    idx = torch.searchsorted(grid.contiguous(), q[..., None].contiguous()).clamp(1, grid.shape[-1] - 1)
    g_lo, g_hi = torch.gather(grid, -1, idx - 1), torch.gather(grid, -1, idx)
    v_lo, v_hi = torch.gather(values, -1, idx - 1), torch.gather(values, -1, idx)
    frac = ((q[..., None] - g_lo) / (g_hi - g_lo).clamp_min(1e-300)).clamp(0, 1)
    return (v_lo + frac * (v_hi - v_lo)).squeeze(-1)
