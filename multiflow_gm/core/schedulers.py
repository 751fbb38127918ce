"""Time schedulers with their derivatives.

A scheduler maps ``t in [0, 1]`` to ``(alpha_t, sigma_t)`` and their time
derivatives. Affine Gaussian paths use both (``x_t = alpha_t z + sigma_t x0``);
mixture paths on tokens and geodesic paths on SO(3) use ``alpha_t`` as the
fraction of the way to data (often written kappa_t) and need
``rate(t) = alpha'_t / (1 - alpha_t)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SchedulerOutput:
    alpha: torch.Tensor
    sigma: torch.Tensor
    d_alpha: torch.Tensor
    d_sigma: torch.Tensor


def _as_tensor(t) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=torch.float64)


class Scheduler(ABC):
    """Base class: subclasses give ``alpha, sigma`` and derivatives at ``t``."""

    @abstractmethod
    def __call__(self, t: torch.Tensor) -> SchedulerOutput: ...

    def rate(self, t: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
        """``alpha'_t / (1 - alpha_t)``: the hazard of reaching the data at time t."""
        out = self(_as_tensor(t))
        return out.d_alpha / (1 - out.alpha).clamp_min(eps)


@dataclass(frozen=True)
class LinearScheduler(Scheduler):
    """CondOT: ``alpha_t = t``, ``sigma_t = 1 - t``."""

    def __call__(self, t):
        t = _as_tensor(t)
        one = torch.ones_like(t)
        return SchedulerOutput(t, 1 - t, one, -one)


@dataclass(frozen=True)
class PolynomialScheduler(Scheduler):
    """``alpha_t = t^n``, ``sigma_t = 1 - t^n``."""

    exponent: float = 2.0

    def __post_init__(self):
        if self.exponent <= 0:
            raise ValueError(f"exponent must be > 0; got {self.exponent}")

    def __call__(self, t):
        t = _as_tensor(t)
        n = self.exponent
        alpha = t ** n
        d_alpha = n * t.clamp_min(0) ** (n - 1) if n != 1 else torch.ones_like(t)
        return SchedulerOutput(alpha, 1 - alpha, d_alpha, -d_alpha)


@dataclass(frozen=True)
class CosineScheduler(Scheduler):
    """``alpha_t = sin(pi t / 2)``, ``sigma_t = cos(pi t / 2)``."""

    def __call__(self, t):
        t = _as_tensor(t)
        a = 0.5 * math.pi
        return SchedulerOutput(torch.sin(a * t), torch.cos(a * t),
                               a * torch.cos(a * t), -a * torch.sin(a * t))


@dataclass(frozen=True)
class VPScheduler(Scheduler):
    """Variance preserving (DDPM-like) with linear beta in [beta_min, beta_max].

    ``alpha_t = exp(-T(1 - t) / 2)``, ``sigma_t = sqrt(1 - alpha_t^2)``,
    ``T(s) = beta_min s + (beta_max - beta_min) s^2 / 2``.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __call__(self, t):
        t = _as_tensor(t)
        s = 1 - t
        big_t = self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s ** 2
        d_big_t = -(self.beta_min + (self.beta_max - self.beta_min) * s)  # dT/dt
        alpha = torch.exp(-0.5 * big_t)
        d_alpha = -0.5 * d_big_t * alpha
        sigma = torch.sqrt((1 - alpha ** 2).clamp_min(0))
        d_sigma = -alpha * d_alpha / sigma.clamp_min(1e-12)
        return SchedulerOutput(alpha, sigma, d_alpha, d_sigma)


@dataclass(frozen=True)
class ExponentialRateScheduler(Scheduler):
    """``alpha_t = (1 - exp(-c t)) / (1 - exp(-c))``: an almost constant rate c.

    MultiFlow samples rotations with velocity ``c log_r(r1_hat)`` (c = 10); this is
    the same schedule normalised so that it still reaches the data at t = 1.
    """

    rate_constant: float = 10.0

    def __post_init__(self):
        if self.rate_constant <= 0:
            raise ValueError(f"rate_constant must be > 0; got {self.rate_constant}")

    def __call__(self, t):
        t = _as_tensor(t)
        c = self.rate_constant
        norm = -math.expm1(-c)
        alpha = -torch.expm1(-c * t) / norm
        d_alpha = c * torch.exp(-c * t) / norm
        return SchedulerOutput(alpha, 1 - alpha, d_alpha, -d_alpha)


SCHEDULERS = {
    "linear": LinearScheduler,
    "polynomial": PolynomialScheduler,
    "cosine": CosineScheduler,
    "vp": VPScheduler,
    "exponential": ExponentialRateScheduler,
}


def make_scheduler(name: str, **kwargs) -> Scheduler:
    """Scheduler by name (``linear``, ``polynomial``, ``cosine``, ``vp``, ``exponential``)."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {sorted(SCHEDULERS)}") from None
    return cls(**kwargs)


def time_grid(num_steps: int, t_start: float = 0.0, t_end: float = 1.0,
              dtype=torch.float64, device=None) -> torch.Tensor:
    """``num_steps + 1`` increasing times whose last entry is *exactly* ``t_end``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}")
    if not 0.0 <= t_start <= t_end <= 1.0:
        raise ValueError(f"need 0 <= t_start <= t_end <= 1; got {t_start}, {t_end}")
    grid = torch.linspace(t_start, t_end, num_steps + 1, dtype=dtype, device=device)
    grid[-1] = t_end
    return grid
