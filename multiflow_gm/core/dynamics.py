"""One first-order step of each generator kind (flow, diffusion, jump, CTMC).

Every step takes the generator parameter evaluated at the left end of the step,
the current time ``t``, the step size ``h`` and a superposition weight ``w`` in [0, 1] that scales the
generator (``w L``): velocities and drifts by ``w``, the diffusion's second-order
term by ``w`` (noise std by ``sqrt(w)``), jump intensities and CTMC rates by ``w``.

``takes`` names what a step's parameter is, since the same generator kind can be
parameterised differently: a ``flow`` step takes a velocity (:class:`FlowStep`) or a
clean-sample prediction ``x1_hat`` (:class:`X1FlowStep`, :class:`PlugInFlowStep`); a
``ctmc`` step takes rates (:class:`CTMCStep`) or the posterior over ``x1``
(:class:`PosteriorCTMCStep`). Conditional paths hand out the clean-sample steps
(``prediction_step``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from multiflow_gm.core.landing import JumpParams, _categorical
from multiflow_gm.core.spaces.euclidean import EuclideanSpace

CTMC_METHODS = ("euler", "tau_leaping")


@dataclass
class FlowStep:
    """Euler step along the velocity on the component's manifold (geodesic on SO(3))."""

    space: object = field(default_factory=EuclideanSpace)
    kind = "flow"
    takes = "velocity"

    def step(self, x, velocity, t, h, weight, generator=None, is_last=False):
        return self.space.exp_map(x, (h * weight) * velocity)

    def velocity(self, x, velocity, t):
        """The velocity this step's parameter stands for (it is one)."""
        return velocity

    def parameter(self, x, velocity, t):
        """The parameter that makes :meth:`step` move along ``velocity``."""
        return velocity


@dataclass
class X1FlowStep:
    """Flow parameterised by a predicted clean sample ``x1_hat`` on a path of the form
    ``x_t = geodesic(x_0, x_1; alpha_t)`` (CondOT on R^d, geodesic on SO(3)).

    The velocity ``w alpha'/(1-alpha) log_x(x1_hat)`` is integrated exactly over the
    step for a fixed ``x1_hat``: the state moves the fraction
    ``1 - ((1 - alpha(t+h)) / (1 - alpha(t)))^w`` of the way to ``x1_hat``. With a
    schedule whose rate is not constant in h (e.g. exponential) plain Euler would
    overshoot; here the last step lands exactly on the prediction.
    """

    space: object
    scheduler: object
    kind = "flow"
    takes = "x1"

    def step(self, x, x1_hat, t, h, weight, generator=None, is_last=False):
        now = 1.0 - float(self.scheduler(torch.as_tensor(t, dtype=torch.float64)).alpha)
        later = 1.0 - float(self.scheduler(torch.as_tensor(t + h, dtype=torch.float64)).alpha)
        fraction = 1.0 if now <= 0.0 else 1.0 - (max(later, 0.0) / now) ** weight
        return self.space.exp_map(x, fraction * self.space.log_map(x, x1_hat))

    def _rate(self, t) -> float:
        """``alpha' / (1 - alpha)`` at ``t``: the velocity per unit of ``log_x(x1_hat)``."""
        s = self.scheduler(torch.as_tensor(t, dtype=torch.float64))
        return float(s.d_alpha) / max(1.0 - float(s.alpha), 1e-12)

    def velocity(self, x, x1_hat, t):
        """The velocity ``alpha'/(1 - alpha) log_x(x1_hat)`` that a clean-sample prediction implies."""
        return self._rate(t) * self.space.log_map(x, x1_hat)

    def parameter(self, x, velocity, t):
        """The clean sample whose implied velocity at ``(x, t)`` is ``velocity``."""
        return self.space.exp_map(x, velocity / self._rate(t))


@dataclass
class PlugInFlowStep:
    """Flow parameterised by a clean-sample prediction on any path with a velocity formula.

    Each step moves along the path's conditional velocity at the prediction,
    ``path.velocity(x, x1_hat, t)`` (the plug-in estimate of the marginal velocity), by an
    Euler step on the component's manifold. For paths where no exact integration over
    the step is known (e.g. the isotropic SO(3) path).
    """

    space: object
    path: object
    kind = "flow"
    takes = "x1"

    def step(self, x, x1_hat, t, h, weight, generator=None, is_last=False):
        return self.space.exp_map(x, (h * weight) * self.velocity(x, x1_hat, t))

    def velocity(self, x, x1_hat, t):
        """The velocity a clean-sample prediction implies at ``(x, t)``."""
        return self.path.velocity(x, x1_hat, t)

    def parameter(self, x, velocity, t):
        raise NotImplementedError("a plug-in flow step cannot turn a velocity back into a clean sample; "
                                  "Heun corrections apply to X1FlowStep and FlowStep only")


@dataclass
class DiffusionStep:
    """Euler-Maruyama on R^d: ``x + h w drift + sqrt(w h) g_t noise``.

    ``diffusion(t)`` gives g_t; it must match the g used to build the drift.
    """

    diffusion: Callable[[torch.Tensor], torch.Tensor]
    kind = "diffusion"
    takes = "drift"

    def step(self, x, drift, t, h, weight, generator=None, is_last=False):
        g = self.diffusion(t)
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        return x + (h * weight) * drift + torch.sqrt(torch.as_tensor(h * weight)) * g * noise


@dataclass
class JumpStep:
    """Each entry jumps with probability ``1 - exp(-h w lambda)`` and then lands by ``J``."""

    kind = "jump"
    takes = "jump_params"

    def step(self, x, params: JumpParams, t, h, weight, generator=None, is_last=False):
        if not isinstance(params, JumpParams):
            raise TypeError(f"a jump step needs JumpParams; got {type(params).__name__}")
        # Intensities are non-negative by contract; a negative one simply never jumps.
        prob = -torch.expm1(params.intensity * -(h * weight))
        jumps = torch.rand(prob.shape, dtype=prob.dtype, device=prob.device, generator=generator) < prob
        if not bool(jumps.any()):
            return x
        x = x.clone()
        x[jumps] = params.landing.sample_at(jumps, generator).to(x.dtype)
        return x


@dataclass
class CTMCStep:
    """CTMC step on token sequences ``[..., n]`` from rates ``[..., n, S]``.

    ``euler``: leave with probability ``min(1, h R_out)``; ``tau_leaping``: with
    ``1 - exp(-h R_out)``; the destination is drawn proportionally to the rates.
    ``mask_index``: a token with no mass at t = 1, so the last step forbids moves
    into it and forces every position still on it to leave (a sample ends with no mask left).
    ``purity``: the number of positions leaving the mask is drawn as usual, but the
    most confident ones (largest rate) are chosen (MultiFlow's purity sampling).
    """

    method: str = "euler"
    mask_index: int | None = None
    purity: bool = False
    kind = "ctmc"
    takes = "rates"

    def __post_init__(self):
        if self.method not in CTMC_METHODS:
            raise ValueError(f"method must be one of {CTMC_METHODS}; got {self.method!r}")
        if self.purity and self.mask_index is None:
            raise ValueError("purity sampling needs a mask_index")

    def step(self, x, rates, t, h, weight, generator=None, is_last=False):
        if rates.shape[:-1] != x.shape:
            raise ValueError(f"rates must have shape {(*x.shape, 'S')}; got {tuple(rates.shape)}")
        if weight != 1.0:
            rates = rates * weight
        if self.mask_index is not None and is_last:
            rates = rates.clone()
            rates[..., self.mask_index] = 0
        out_rate = rates.sum(-1)
        if self.method == "euler":
            leave_prob = (h * out_rate).clamp(max=1.0)
        else:
            leave_prob = -torch.expm1(-h * out_rate)
        if self.mask_index is not None and is_last:
            leave_prob = torch.where(x == self.mask_index, torch.ones_like(leave_prob), leave_prob)
        u = torch.rand(x.shape, dtype=leave_prob.dtype, device=x.device, generator=generator)
        leave = u < leave_prob
        if self.purity:
            leave = self._purest(x, rates, leave)
        if not bool(leave.any()):
            return x
        x = x.clone()
        x[leave] = _categorical(rates[leave], generator)
        return x

    def _purest(self, x, rates, leave):
        """Keep the number of un-masking positions per sequence, pick the most confident."""
        masked = x == self.mask_index
        count = (leave & masked).sum(-1, keepdim=True)
        confidence = torch.where(masked, rates.amax(-1), torch.full_like(rates[..., 0], -1.0))
        rank = confidence.argsort(-1, descending=True).argsort(-1)
        chosen = masked & (rank < count)
        return torch.where(masked, chosen, leave)


@dataclass
class PosteriorCTMCStep:
    """CTMC step on tokens parameterised by the posterior ``p(x1 | x_t)`` ``[..., n, num_tokens]``.

    ``path.rates(x, probs, t, eta)`` turns the posterior into marginal rates, which are cast
    to the posterior's dtype (the uniform draws of :class:`CTMCStep` follow the rates' dtype)
    and stepped by ``ctmc``.
    """

    path: object
    ctmc: CTMCStep
    eta: float = 0.0
    kind = "ctmc"
    takes = "x1_probs"

    def step(self, x, x1_probs, t, h, weight, generator=None, is_last=False):
        rates = self.path.rates(x, x1_probs, t, self.eta).to(x1_probs.dtype)
        return self.ctmc.step(x, rates, t, h, weight, generator=generator, is_last=is_last)
