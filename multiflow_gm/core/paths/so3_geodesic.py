"""Geodesic path on SO(3) with a uniform prior (the MultiFlow / FrameFlow rotation path).

``r_t = r_0 exp(alpha_t log(r_0^T r_1))``, ``r_0`` Haar-uniform. The conditional flow
is ``u^z(r) = alpha'_t / (1 - alpha_t) * log(r^T r_1)`` (body frame; = log/(1-t) for
the linear scheduler). With a clean-sample prediction ``r1_hat`` the same formula
is the usual plug-in estimate of the marginal velocity (exact only when the
posterior is a point mass, since log is not linear).

The conditional density (relative to Haar measure) is closed form:
``r_1^T r_t = exp(-(1 - alpha) log d)`` with ``d`` uniform, so its angle is
``(1 - alpha) omega_d`` and ``p_t(r | r_1) = (1 - cos(theta / (1-alpha))) / ((1 - alpha)(1 - cos theta))``
for ``theta < (1 - alpha) pi`` and 0 beyond. The shrinking support is why this
path has no jump generator (``-d/dt log p`` is infinite on the moving boundary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from multiflow_gm.core.checks import check_rotation
from multiflow_gm.core.dynamics import X1FlowStep
from multiflow_gm.core.paths.common import (EndpointInterpolation, as_time, expand_time,
                                           rotation_atom_log_likelihood)
from multiflow_gm.core.schedulers import LinearScheduler, Scheduler
from multiflow_gm.core.spaces import SO3Space, so3


@dataclass
class GeodesicSO3Path(EndpointInterpolation):
    """Conditional geodesic path; ``t`` scalar or per-example ``[B]``."""

    scheduler: Scheduler = field(default_factory=LinearScheduler)
    event_dims = 2
    supports_jump = False  # the support shrinks with t: see the module docstring

    def _alpha(self, t, r):
        t = expand_time(as_time(t, r), r, event_dims=2)
        return self.scheduler(t)

    def atom_log_likelihood(self, r: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(r_n | z_k)`` summed over extra entries, ``[N, K]`` (``-inf`` off support)."""
        return rotation_atom_log_likelihood(self.log_prob, r, atoms, t)

    def prior(self, shape, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
        """Haar-uniform rotations ``[*shape, 3, 3]``."""
        return so3.uniform(shape, dtype=dtype, device=device, generator=generator)

    def _prior_shape(self, x1: torch.Tensor):
        return x1.shape[:-2]  # one rotation per [3, 3] matrix

    # draw / target / estimate / regression_time: EndpointInterpolation. The target is the
    # body-frame velocity [..., 3] (rad per unit time), alpha'/(1 - alpha) times log(r^T r_1).

    def prediction_step(self):
        """Moves the exact fraction of the geodesic to the prediction that the schedule gives."""
        return X1FlowStep(SO3Space(), self.scheduler)

    def interpolate(self, r0: torch.Tensor, r1: torch.Tensor, t) -> torch.Tensor:
        """``r_t = geodesic(r0, r1; alpha_t)`` ``[..., 3, 3]`` (what :meth:`draw` returns for this prior draw)."""
        check_rotation(r0, "r0")
        check_rotation(r1, "r1")
        s = self._alpha(t, r0)
        return so3.geodesic(r0, r1, s.alpha.expand(r0.shape[:-2]))

    def velocity(self, r: torch.Tensor, r1: torch.Tensor, t) -> torch.Tensor:
        """Body-frame velocity ``[..., 3]``."""
        s = self._alpha(t, r)
        rate = s.d_alpha / (1 - s.alpha).clamp_min(1e-12)
        return rate[..., None] * so3.log_map(r, r1)

    def log_prob(self, r: torch.Tensor, r1: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(r | r_1)`` relative to the normalised Haar measure (``-inf`` off support)."""
        s = self._alpha(t, r)
        remaining = (1 - s.alpha).expand(r.shape[:-2])
        theta = so3.distance(r1, r)
        ratio = theta / remaining.clamp_min(1e-12)
        inside = ratio < math.pi
        # Both numerator and denominator ~ theta^2/2 near 0; use the stable ratio there.
        num = 2 * torch.sin(0.5 * ratio) ** 2
        den = 2 * torch.sin(0.5 * theta) ** 2
        small = theta < 1e-4
        value = torch.where(small, torch.ones_like(theta) / remaining ** 2,
                            num / den.clamp_min(1e-30)) / remaining
        return torch.where(inside, torch.log(value.clamp_min(1e-300)),
                           torch.full_like(theta, -math.inf))
