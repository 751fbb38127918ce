"""Coordinate units, centring and radius of gyration: one helper each.

Structures are read, cached, evaluated and written in Angstrom; the co-design paths and
the network work in nanometres, so CA positions of the unit Gaussian prior have the
spread of a small protein. Every conversion between the two goes through
:func:`angstrom_to_nm` / :func:`nm_to_angstrom`.
"""

from __future__ import annotations

import numpy as np

ANGSTROM_PER_NM = 10.0
# The factor both conversions use (the default of ``ProcessConfig.translation_scale``).
NM_PER_ANGSTROM = 0.1


def angstrom_to_nm(x, nm_per_angstrom: float = NM_PER_ANGSTROM):
    """Positions or lengths (any shape, torch or numpy) from Angstrom to nm: ``x * nm_per_angstrom``."""
    return x * nm_per_angstrom


def nm_to_angstrom(x, nm_per_angstrom: float = NM_PER_ANGSTROM):
    """Positions or lengths (any shape, torch or numpy) from nm to Angstrom: ``x / nm_per_angstrom``.

    It divides by the same factor :func:`angstrom_to_nm` multiplies by (rather than multiplying
    by :data:`ANGSTROM_PER_NM`) so that both directions use one configured number and give
    the same floating-point results the sampler has always produced.
    """
    return x / nm_per_angstrom


def centroid(points, mask=None):
    """Mean position ``[..., 1, 3]`` of ``points`` ``[..., L, 3]`` (any unit, torch or numpy).

    With ``mask`` ``[..., L]`` (torch only) only the valid points count; an all-padding
    row gives the origin rather than a division by zero.
    """
    if mask is None:
        return points.mean(axis=-2, keepdims=True) if isinstance(points, np.ndarray) \
            else points.mean(dim=-2, keepdim=True)
    m = mask[..., None].to(points.dtype)
    return (points * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)


def center_positions(points, mask=None):
    """``points`` ``[..., L, 3]`` minus their centroid (same unit, torch or numpy).

    With ``mask`` ``[..., L]`` (torch only) the centroid is that of the valid points and
    padding positions are set to zero, so padded batches carry no stray coordinates.
    """
    if mask is None:
        return points - centroid(points)
    return (points - centroid(points, mask)) * mask[..., None].to(points.dtype)


def radius_of_gyration(ca) -> float:
    """Radius of gyration of one chain's CA positions ``[L, 3]`` (numpy or torch), in their unit.

    Computed in float64: ``sqrt(mean_i |x_i - centroid|^2)``. All callers pass Angstrom.
    """
    ca = np.asarray(ca, dtype=np.float64)
    centred = center_positions(ca)
    return float(np.sqrt(np.mean(np.sum(centred ** 2, axis=-1))))
