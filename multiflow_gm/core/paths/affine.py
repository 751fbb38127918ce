"""Affine Gaussian paths on R^d: ``x_t = alpha_t z + sigma_t x0``, ``x0 ~ N(0, I)``.

With the linear scheduler this is the CondOT path,
``p_t(.|z) = N(t z, (1-t)^2 I)``. It supports three conditional generators:

* flow: ``u^z(x) = alpha' z + (sigma'/sigma)(x - alpha z)`` (= (z - x)/(1-t) for CondOT);
* diffusion: drift ``u^z + (g_t^2 / 2) score^z`` with score ``-(x - alpha z)/sigma^2``;
* jump (per coordinate): closed form in :mod:`.gaussian_jump`.

Flow and score are affine in ``z``, so with a network's clean-sample prediction
``x1_hat = E[z | x_t]`` the same formulas give the *marginal* parameters exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from multiflow_gm.core.checks import check_same_shape
from multiflow_gm.core.dynamics import PlugInFlowStep, X1FlowStep
from multiflow_gm.core.paths.common import ClosedFormJump, EndpointInterpolation, as_time, expand_time
from multiflow_gm.core.paths.gaussian_jump import GaussianJumpKernel, standardised_quadratic
from multiflow_gm.core.schedulers import LinearScheduler, Scheduler
from multiflow_gm.core.spaces.euclidean import EuclideanSpace


@dataclass
class AffineGaussianPath(EndpointInterpolation, ClosedFormJump):
    """Conditional Gaussian path with scheduler ``(alpha_t, sigma_t)``.

    All methods take ``t`` as a scalar or a per-example tensor ``[B]`` that
    broadcasts over the trailing dims of the state.
    """

    scheduler: Scheduler = field(default_factory=LinearScheduler)
    event_dims = 0  # each coordinate is an entry (jumps act per coordinate)

    def _sched(self, t, x):
        t = expand_time(as_time(t, x), x)
        return self.scheduler(t)

    def prior(self, shape, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
        """Standard normal draws ``[*shape]``."""
        return torch.randn(*shape, dtype=dtype, device=device, generator=generator)

    # draw / target / estimate / regression_time: EndpointInterpolation. The velocity is affine
    # in x1, so target minus estimate is (alpha' - sigma' alpha / sigma)(x1 - x1_hat).

    def prediction_step(self):
        """Exact over each step when ``sigma = 1 - alpha`` (x_t then interpolates x0 and x1 along
        a straight line); otherwise an Euler step along the velocity at the prediction."""
        grid = torch.linspace(0, 1, 11, dtype=torch.float64)
        s = self.scheduler(grid)
        if torch.allclose(s.sigma, 1 - s.alpha, rtol=0, atol=1e-12):
            return X1FlowStep(EuclideanSpace(), self.scheduler)
        return PlugInFlowStep(EuclideanSpace(), self)

    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """``x_t = alpha_t x1 + sigma_t x0`` (what :meth:`draw` returns for this prior draw)."""
        check_same_shape(x0, x1, "x0", "x1")
        s = self._sched(t, x1)
        return s.alpha * x1 + s.sigma * x0

    def velocity(self, x: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """Flow parameter; with ``x1 = x1_hat`` the marginal velocity."""
        check_same_shape(x, x1, "x", "x1")
        s = self._sched(t, x)
        return s.d_alpha * x1 + (s.d_sigma / s.sigma) * (x - s.alpha * x1)

    def score(self, x: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """``grad_x log p_t(x | x1)``; with ``x1 = x1_hat`` the marginal score."""
        s = self._sched(t, x)
        return -(x - s.alpha * x1) / (s.sigma * s.sigma)

    def diffusion_drift(self, x, x1, t, diffusion: Callable[[torch.Tensor], torch.Tensor]):
        """Drift of the SDE ``dx = drift dt + g_t dW`` with the same marginals as the flow."""
        g = diffusion(expand_time(as_time(t, x), x))
        return self.velocity(x, x1, t) + 0.5 * g * g * self.score(x, x1, t)

    def log_prob(self, x: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """Per-coordinate ``log N(x; alpha x1, sigma^2)`` (same shape as x)."""
        s = self._sched(t, x)
        w = (x - s.alpha * x1) / s.sigma
        return -0.5 * w * w - torch.log(s.sigma) - 0.5 * math.log(2 * math.pi)

    def dt_log_prob(self, x: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """Per-coordinate ``d/dt log p_t(x | x1)``."""
        s = self._sched(t, x)
        w = (x - s.alpha * x1) / s.sigma
        return (s.d_alpha * x1 * w - s.d_sigma * (1 - w * w)) / s.sigma

    def jump_intensity(self, x: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """Per-coordinate ``lambda_t(x) = [-d/dt log p_t(x | x1)]_+``."""
        s = self._sched(t, x)
        self._require_decreasing_sigma(s)
        w, beta, speed = standardised_quadratic(s.alpha, s.sigma, s.d_alpha, s.d_sigma, x, x1)
        return speed * (w * w - beta * w - 1).clamp_min(0)

    def jump_kernel(self, x1: torch.Tensor, t) -> GaussianJumpKernel:
        """Per-coordinate landing law ``J_t(y) ∝ [d/dt p_t(y | x1)]_+`` (independent of x)."""
        s = self._sched(t, x1)
        self._require_decreasing_sigma(s)
        _, beta, _ = standardised_quadratic(s.alpha, s.sigma, s.d_alpha, s.d_sigma, x1, x1)
        mean = s.alpha * x1
        return GaussianJumpKernel(mean=mean, scale=s.sigma.expand_as(mean), beta=beta)

    def sample_landing(self, x1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Exact draws from the landing law, one per entry of ``x1``."""
        return self.jump_kernel(x1, t).sample(generator)

    def atom_log_likelihood(self, x: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(x_n | z_k)`` up to terms free of k, ``[N, K]``, for ``x [N, ...]``, ``atoms [K, ...]``.

        ``t`` is a scalar or one time per row of ``x`` (``[N]``).
        """
        time = as_time(t, x)
        s = self.scheduler(time[:, None] if time.dim() == 1 else time)
        xf, zf = x.reshape(x.shape[0], -1), atoms.reshape(atoms.shape[0], -1).to(x.dtype)
        # Expanding ||x - alpha z||^2 makes this one matrix product.
        return (s.alpha * (xf @ zf.T) - 0.5 * s.alpha ** 2 * (zf ** 2).sum(-1)) / s.sigma ** 2

    @staticmethod
    def _require_decreasing_sigma(s):
        if (s.d_sigma > 0).any():
            raise ValueError("the closed-form jump generator needs sigma_t non-increasing in t")


def CondOTPath() -> AffineGaussianPath:  # noqa: N802 - reads as the class it builds
    """The CondOT path ``x_t = t z + (1 - t) x0`` (linear interpolation from noise to data)."""
    return AffineGaussianPath(LinearScheduler())
