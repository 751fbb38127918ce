"""Small helpers shared by the conditional paths."""

from __future__ import annotations

import torch

from multiflow_gm.core.checks import check_time


def as_time(t, like: torch.Tensor) -> torch.Tensor:
    """Time as a tensor with ``like``'s dtype and device; checked to lie in [0, 1]."""
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(float(t), dtype=torch.float64)
    check_time(t)
    return t.to(dtype=like.dtype if like.is_floating_point() else torch.get_default_dtype(),
                device=like.device)


def expand_time(t: torch.Tensor, x: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """Reshape a per-example time ``[B]`` (or scalar) to broadcast against ``x``.

    ``event_dims`` trailing dims of ``x`` belong to one state (2 for a 3x3 rotation)
    and are not counted as batch dims.
    """
    if t.dim() == 0:
        return t
    batch_dims = x.dim() - event_dims
    if t.dim() > batch_dims or tuple(t.shape) != tuple(x.shape[: t.dim()]):
        raise ValueError(f"t of shape {tuple(t.shape)} must be a scalar or match the leading "
                         f"dims of the state {tuple(x.shape)}")
    return t.reshape(*t.shape, *([1] * (batch_dims - t.dim())))
