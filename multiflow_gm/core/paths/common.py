"""The conditional-path protocol and small helpers shared by the paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from multiflow_gm.core.checks import check_time
from multiflow_gm.core.landing import JumpParams, PredictionLanding


def as_time(t, like: torch.Tensor) -> torch.Tensor:
    """Time as a tensor with ``like``'s dtype and device; checked to lie in [0, 1]."""
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(float(t), dtype=torch.float64)
    check_time(t)
    return t.to(dtype=like.dtype if like.is_floating_point() else torch.get_default_dtype(),
                device=like.device)


def expand_time(t: torch.Tensor, x: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """Reshape a per-example time ``[B]`` (or scalar) to broadcast against ``x``.

    ``t`` may also carry more leading dims that broadcast against ``x``'s (``[B, 1]``).

    ``event_dims`` trailing dims of ``x`` belong to one state (2 for a 3x3 rotation)
    and are not counted as batch dims.
    """
    if t.dim() == 0:
        return t
    batch_dims = x.dim() - event_dims
    if t.dim() > batch_dims or any(a not in (1, b) for a, b in zip(t.shape, x.shape)):
        raise ValueError(f"t of shape {tuple(t.shape)} must be a scalar or match the leading "
                         f"dims of the state {tuple(x.shape)}")
    return t.reshape(*t.shape, *([1] * (batch_dims - t.dim())))


def rotation_atom_log_likelihood(log_prob, r: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
    """``[N, K]`` table of ``log_prob(r_n, z_k, t)`` for rotations ``r [N, ..., 3, 3]``, ``atoms [K, ..., 3, 3]``,
    summed over any entries between the batch and the 3x3 dims."""
    r_b, z_b = torch.broadcast_tensors(r[:, None], atoms[None].to(r.dtype))
    t_b = t if not isinstance(t, torch.Tensor) or t.dim() == 0 else t[:, None].expand(r_b.shape[:2])
    ll = log_prob(r_b, z_b, t_b)
    return ll.reshape(*ll.shape[:2], -1).sum(-1)


@dataclass
class PathSample:
    """One draw ``x_t ~ p_t(. | x1)`` and what the path needs later to form its targets.

    ``x_t``: the state at time t (``x1``'s shape: ``[..., d]`` on R^d, ``[..., 3, 3]`` on
    SO(3), ``[..., n]`` integer tokens); ``x1``: the data point it is conditioned on;
    ``x0``: the prior draw ``x_t`` was built from, for paths that couple the two
    endpoints (None for paths that draw ``x_t`` from ``p_t(. | x1)`` directly).
    """

    x_t: torch.Tensor
    x1: torch.Tensor
    x0: torch.Tensor | None = None


@runtime_checkable
class ConditionalPath(Protocol):
    """What a workload needs from a conditional path, whatever its state space.

    ``t`` is a scalar or a per-example tensor ``[B]`` broadcasting over the leading dims of
    the state. Flags describe the path rather than its class so callers never test the class:

    * ``couples_endpoints``: :meth:`draw` builds ``x_t`` from a prior draw ``x0`` (which a
      caller may pass in, e.g. noise paired with the data) and ``x1``;
    * ``supports_jump``: the path has a closed-form conditional jump generator
      (``jump_intensity`` and ``sample_landing``) and hands a sampler its jump parameters at a
      clean-sample prediction (``prediction_jump``, see :class:`ClosedFormJump`).
    """

    event_dims: int
    couples_endpoints: bool
    supports_jump: bool

    def prior(self, shape, generator=None, dtype=None, device=None) -> torch.Tensor:
        """Draws ``[*shape, *event]`` from ``p_0`` (``shape`` is the batch shape for SO(3))."""

    def draw(self, x1: torch.Tensor, t, generator=None, x0: torch.Tensor | None = None) -> PathSample:
        """Draw ``x_t ~ p_t(. | x1)``; ``x0`` (coupled paths only) replaces the prior draw."""

    def target(self, record: PathSample, t) -> torch.Tensor:
        """The conditional generator parameter at ``record.x_t`` (the training target)."""

    def estimate(self, x: torch.Tensor, x1_hat: torch.Tensor, t) -> torch.Tensor:
        """The same parameter at state ``x`` with a clean-sample prediction in place of ``x1``
        (the plug-in estimate of the marginal one); ``target`` is this at the true ``x1``."""

    def regression_time(self, t: torch.Tensor, t_clip: float) -> torch.Tensor:
        """The time at which a loss evaluates the target and its estimate (see each path)."""

    def prediction_step(self, **options):
        """The sampler step whose parameter is a clean-sample prediction of ``x1``."""


def clipped_time(t: torch.Tensor, t_clip: float) -> torch.Tensor:
    """``min(t, t_clip)`` for paths whose target error is a scalar rate of t times a time-free term.

    For such paths the difference between the conditional target and its estimate at a
    clean-sample prediction is ``rate(t) (f(x_t, x1) - f(x_t, x1_hat))``; evaluating it at a
    clipped time only reweights the regression (a positive weight keeps the minimiser)
    while bounding the weight that would otherwise grow like ``1 / (1 - t)``.
    """
    return t.clamp(max=t_clip)


class EndpointInterpolation:
    """Protocol methods shared by paths that interpolate a prior draw ``x0`` and ``x1``
    (``interpolate(x0, x1, t)``) and whose conditional velocity ``velocity(x, x1, t)`` depends on
    ``x1`` only through a time rate times a time-free term, so the loss may clip its time.

    A subclass gives ``prior``, ``interpolate``, ``velocity`` and ``_prior_shape(x1)``.
    """

    couples_endpoints = True

    def _prior_shape(self, x1: torch.Tensor):
        return x1.shape

    def draw(self, x1: torch.Tensor, t, generator=None, x0: torch.Tensor | None = None) -> PathSample:
        """``x_t`` between ``x0`` (given, or drawn from the prior) and ``x1``."""
        if x0 is None:
            x0 = self.prior(self._prior_shape(x1), generator, x1.dtype, x1.device)
        return PathSample(self.interpolate(x0, x1, t), x1, x0)

    def target(self, record: PathSample, t) -> torch.Tensor:
        """Conditional velocity at ``record.x_t``."""
        return self.estimate(record.x_t, record.x1, t)

    def estimate(self, x: torch.Tensor, x1_hat: torch.Tensor, t) -> torch.Tensor:
        """:meth:`target`'s formula at state ``x`` with the prediction ``x1_hat`` in place of ``x1``."""
        return self.velocity(x, x1_hat, t)

    def regression_time(self, t: torch.Tensor, t_clip: float) -> torch.Tensor:
        """Clipped: target minus estimate is a rate of t times a time-free term."""
        return clipped_time(t, t_clip)


class ClosedFormJump:
    """Sampler parameters of a path whose conditional jump generator is closed form.

    A subclass gives ``jump_intensity(x, x1, t)`` and ``sample_landing(x1, t, generator)``.
    """

    supports_jump = True

    def prediction_jump(self, x: torch.Tensor, x1_hat: torch.Tensor, t,
                        intensity: torch.Tensor | None = None) -> JumpParams:
        """Jump parameters at state ``x`` from a clean-sample prediction ``x1_hat``: the landing law
        around the prediction, with ``intensity`` (e.g. a learned one) or, when None, the closed-form
        intensity at the prediction (the plug-in estimate). ``t`` is the sampler's scalar time."""
        if intensity is None:
            intensity = self.jump_intensity(x, x1_hat, t)
        return JumpParams(intensity.to(x.dtype), PredictionLanding(self, x1_hat, t))
