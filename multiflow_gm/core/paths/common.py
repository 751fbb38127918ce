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
