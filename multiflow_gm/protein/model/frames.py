"""Rigid frames ``(R, t)``: ``global = R @ local + t``. Rotations ``[..., 3, 3]``, translations ``[..., 3]``."""

from __future__ import annotations

import torch

from multiflow_gm.core.spaces import so3


def apply(rotations: torch.Tensor, translations: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Local points ``[..., P, 3]`` (frames broadcast over P) to global coordinates."""
    return torch.einsum("...ij,...pj->...pi", rotations, points) + translations[..., None, :]


def invert_apply(rotations: torch.Tensor, translations: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Global points ``[..., P, 3]`` into the local coordinates of the frames."""
    return torch.einsum("...ji,...pj->...pi", rotations, points - translations[..., None, :])


def compose_update(rotations, translations, update: torch.Tensor):
    """Right-compose a local update ``[..., 6]`` = (quaternion vector part b, c, d; translation).

    The quaternion is ``(1, b, c, d)`` normalised (AlphaFold 2's backbone update), so
    a zero update is the identity.
    """
    # Frames are composed in the frames' own precision, never in an autocast dtype.
    with torch.autocast(device_type=rotations.device.type, enabled=False):
        update = update.to(rotations.dtype)
        quat = torch.cat([torch.ones_like(update[..., :1]), update[..., :3]], dim=-1)
        delta_r = so3.quaternion_to_matrix(quat)
        new_t = translations + torch.einsum("...ij,...j->...i", rotations, update[..., 3:])
        return rotations @ delta_r, new_t
