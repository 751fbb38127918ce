"""Argument checks that raise clear errors naming the argument and what was expected.

They are cheap (no device synchronisation for Python scalars) so samplers can
call them once per step; tensor checks are meant for API boundaries.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

Number = float | int


def check_time(t: torch.Tensor | Number, name: str = "t") -> None:
    """Times live in [0, 1]: t=0 is noise, t=1 is data."""
    if isinstance(t, torch.Tensor):
        if t.numel() == 0:
            return
        if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise ValueError(f"{name} must lie in [0, 1]; got values in "
                             f"[{t.min().item():.4g}, {t.max().item():.4g}]")
    elif not (0.0 <= float(t) <= 1.0) or math.isnan(float(t)):
        raise ValueError(f"{name} must lie in [0, 1]; got {t!r}")


def check_weight(w: Number, name: str) -> None:
    if not (0.0 <= float(w) <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got {w!r}")


def check_weights_sum_to_one(weights: dict[str, Number], name: str = "superposition weights",
                             atol: float = 1e-6) -> None:
    """Markov superposition needs convex weights: each in [0, 1], summing to one."""
    for key, w in weights.items():
        check_weight(w, f"{name}[{key!r}]")
    total = sum(float(w) for w in weights.values())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1; got {dict(weights)} (sum {total:.6g})")


def check_trailing_shape(x: torch.Tensor, trailing: Sequence[int], name: str) -> None:
    """Require ``x.shape[-len(trailing):] == trailing`` (e.g. (3, 3) for rotations)."""
    k = len(trailing)
    if x.dim() < k or tuple(x.shape[-k:]) != tuple(trailing):
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, trailing))}); "
                         f"got {tuple(x.shape)}")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape; "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def check_rotation(r: torch.Tensor, name: str = "r", atol: float | None = None) -> None:
    """Require proper rotation matrices: R^T R = I and det R = +1."""
    check_trailing_shape(r, (3, 3), name)
    if atol is None:
        atol = 1e-4 if r.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-8
    eye = torch.eye(3, dtype=r.dtype, device=r.device)
    ortho_err = (r.transpose(-1, -2) @ r - eye).abs().amax() if r.numel() else 0.0
    if r.numel() and (ortho_err > atol or (torch.linalg.det(r) < 0).any()):
        raise ValueError(f"{name} must hold rotation matrices (R^T R = I, det R = +1); "
                         f"max |R^T R - I| = {float(ortho_err):.3g}")
