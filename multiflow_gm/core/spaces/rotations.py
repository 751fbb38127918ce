"""SO(3) as a state space for samplers; the maths lives in :mod:`.so3`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from multiflow_gm.core.spaces import so3


@dataclass(frozen=True)
class SO3Space:
    """Rotations ``[..., 3, 3]`` with body-frame tangent vectors ``[..., 3]``."""

    def exp_map(self, r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return so3.exp_map(r, w)

    def log_map(self, r: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return so3.log_map(r, target)

    def squared_norm(self, w: torch.Tensor) -> torch.Tensor:
        return (w * w).sum(-1)
