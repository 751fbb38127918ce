"""Closed-form jump generator of a per-coordinate Gaussian path.

For ``p_t(y|z) = N(y; alpha_t z, sigma_t^2)`` with sigma decreasing, write
``w = (y - alpha_t z) / sigma_t`` and ``beta = alpha'_t z / |sigma'_t|``. Then

    d/dt log p_t(y|z) = (|sigma'_t| / sigma_t) * (1 + beta w - w^2),

so the jump recipe (intensity ``[-d/dt log p_t]_+``, landing law proportional to
``[d/dt log p_t]_+ p_t``; Holderrieth et al. 2024, Generator Matching) gives the intensity
``lambda_t(x) = (|sigma'|/sigma) [w_x^2 - beta w_x - 1]_+`` and the landing law
``J_t(y) ∝ [1 + beta w - w^2]_+ N(w; 0, 1)`` on the interval between the roots
``r_- < 0 < r_+`` of ``1 + beta w - w^2``. For CondOT (alpha = t, sigma = 1 - t)
``lambda = [k_t]_+ / (1-t)^3`` with ``k_t = (x - t z)^2 - (1 - t) z (x - t z) - (1 - t)^2``.
Masses of the landing law on intervals are closed form (integrals of a quadratic times a Gaussian), which
gives exact bin probabilities and exact draws by bisection of the CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# |sigma'| is clamped here so the formulas stay finite where sigma is flat.
_MIN_SPEED = 1e-6


def _phi(w):
    return torch.exp(-0.5 * w * w) * _INV_SQRT_2PI


def _big_phi(w):
    return 0.5 * (1 + torch.erf(w / _SQRT2))


def _primitive(w, beta):
    """Antiderivative of ``(1 + beta w - w^2) phi(w)``; finite at +-inf."""
    # int w^2 phi = Phi - w phi ; int w phi = -phi ; int phi = Phi.
    finite = torch.isfinite(w)
    w_safe = torch.where(finite, w, torch.zeros_like(w))
    wphi = torch.where(finite, w_safe * _phi(w_safe), torch.zeros_like(w))
    phi = torch.where(finite, _phi(w_safe), torch.zeros_like(w))
    return -beta * phi + wphi


def quadratic_gaussian_mass(lo, hi, beta):
    """``int_lo^hi (1 + beta w - w^2) phi(w) dw`` (the Phi terms cancel: 1 - 1)."""
    return _primitive(hi, beta) - _primitive(lo, beta)


@dataclass
class GaussianJumpKernel:
    """Landing law of the conditional jump generator, one per coordinate.

    Tensors broadcast together: ``mean = alpha_t z``, ``scale = sigma_t`` and
    ``beta`` (see module docstring).
    """

    mean: torch.Tensor
    scale: torch.Tensor
    beta: torch.Tensor

    def roots(self):
        """Roots ``(r_-, r_+)`` of ``1 + beta w - w^2`` (product -1), computed stably."""
        disc = torch.sqrt(self.beta * self.beta + 4)
        big = 0.5 * (self.beta + torch.where(self.beta >= 0, disc, -disc))
        other = -1.0 / big
        return torch.minimum(big, other), torch.maximum(big, other)

    def normaliser(self):
        lo, hi = self.roots()
        return quadratic_gaussian_mass(lo, hi, self.beta)

    def density(self, y: torch.Tensor) -> torch.Tensor:
        """Density of the landing law at ``y`` (per unit of y)."""
        w = (y - self.mean) / self.scale
        q = (1 + self.beta * w - w * w).clamp_min(0)
        return q * _phi(w) / (self.normaliser() * self.scale)

    def bin_masses(self, edges: torch.Tensor, open_ends: bool = True) -> torch.Tensor:
        """Probabilities of the bins ``[edges[i], edges[i+1])`` -> ``[..., B]``.

        With ``open_ends`` the first and last bins extend to -inf / +inf, so the
        masses sum to one even when the law reaches beyond the edges.
        """
        lo_r, hi_r = self.roots()
        e = edges.to(self.mean.dtype)
        if open_ends:
            inf = torch.tensor([math.inf], dtype=e.dtype, device=e.device)
            e = torch.cat([-inf, e[1:-1], inf])
        w = (e - self.mean[..., None]) / self.scale[..., None]
        w = torch.maximum(torch.minimum(w, hi_r[..., None]), lo_r[..., None])
        cdf = _primitive(w, self.beta[..., None])
        mass = (cdf[..., 1:] - cdf[..., :-1]).clamp_min(0)
        return mass / mass.sum(-1, keepdim=True).clamp_min(1e-30)

    def sample(self, generator: torch.Generator | None = None, iterations: int = 60) -> torch.Tensor:
        """Exact draws (to bisection precision) of the broadcast shape."""
        mean, scale, beta = torch.broadcast_tensors(self.mean, self.scale, self.beta)
        lo, hi = GaussianJumpKernel(mean, scale, beta).roots()
        total = quadratic_gaussian_mass(lo, hi, beta)
        u = torch.rand(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        target = _primitive(lo, beta) + u * total
        a, b = lo.clone(), hi.clone()
        for _ in range(iterations):
            mid = 0.5 * (a + b)
            below = _primitive(mid, beta) < target
            a = torch.where(below, mid, a)
            b = torch.where(below, b, mid)
        return mean + scale * 0.5 * (a + b)


def standardised_quadratic(alpha, sigma, d_alpha, d_sigma, x, z):
    """``(w, beta, speed)`` with ``w = (x - alpha z)/sigma``, ``speed = |sigma'|/sigma``."""
    speed = (-d_sigma).clamp_min(_MIN_SPEED)
    w = (x - alpha * z) / sigma
    beta = d_alpha * z / speed
    return w, beta, speed / sigma
