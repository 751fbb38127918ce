"""The rotation group SO(3): exp/log, quaternions, geodesics, sampling.

Conventions: rotations are matrices ``[..., 3, 3]`` acting on column vectors;
tangent vectors are *body-frame* rotation vectors ``[..., 3]`` (radians), so a
step of velocity ``w`` for time ``h`` is ``r @ exp(h w)``. With this convention a
global rotation ``g`` (``r -> g r``) leaves every body-frame velocity unchanged,
which is what makes SE(3)-invariant networks predict them directly. The tangent
norm is the Euclidean norm of the rotation vector (the bi-invariant metric with
geodesic distance equal to the rotation angle). Quaternions are (w, x, y, z).

Everything is stable for angles near 0 and near pi in float32 and float64:
``log`` goes through a quaternion (Shepperd's method) and ``atan2``.
"""

from __future__ import annotations

import math

import torch

from multiflow_gm.core.checks import check_trailing_shape

# Below this angle (radians) series expansions replace sin(x)/x and friends.
_SMALL_ANGLE = 1e-4


def hat(v: torch.Tensor) -> torch.Tensor:
    """Rotation vector ``[..., 3]`` -> skew-symmetric matrix ``[..., 3, 3]``."""
    check_trailing_shape(v, (3,), "v")
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def vee(m: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric matrix ``[..., 3, 3]`` -> vector ``[..., 3]`` (skew part only)."""
    check_trailing_shape(m, (3, 3), "m")
    return 0.5 * torch.stack([m[..., 2, 1] - m[..., 1, 2],
                              m[..., 0, 2] - m[..., 2, 0],
                              m[..., 1, 0] - m[..., 0, 1]], dim=-1)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``[..., 4]`` (w, x, y, z; normalised here) -> rotation ``[..., 3, 3]``."""
    check_trailing_shape(q, (4,), "q")
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(r: torch.Tensor) -> torch.Tensor:
    """Rotation ``[..., 3, 3]`` -> unit quaternion ``[..., 4]`` with w >= 0.

    Shepperd's method: of the four algebraically equivalent formulas, use the one
    whose pivot (|w|, |x|, |y|, |z|) is largest, so no division by a small number.
    """
    check_trailing_shape(r, (3, 3), "r")
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    pivots = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                          1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    # Each row is 4 * pivot_component * q.
    candidates = torch.stack([
        torch.stack([pivots[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, pivots[..., 1], m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, pivots[..., 2], m21 + m12], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, pivots[..., 3]], dim=-1),
    ], dim=-2)
    best = pivots.argmax(dim=-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def exp(v: torch.Tensor) -> torch.Tensor:
    """Rotation vector ``[..., 3]`` (radians) -> rotation matrix ``[..., 3, 3]``."""
    check_trailing_shape(v, (3,), "v")
    half = 0.5 * v.norm(dim=-1, keepdim=True)
    small = half < 0.5 * _SMALL_ANGLE
    safe_half = torch.where(small, torch.ones_like(half), half)
    # sin(h)/h, with its Taylor series near 0.
    sinc = torch.where(small, 1 - half * half / 6, torch.sin(safe_half) / safe_half)
    q = torch.cat([torch.cos(half), 0.5 * sinc * v], dim=-1)
    return quaternion_to_matrix(q)


def log(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix ``[..., 3, 3]`` -> rotation vector ``[..., 3]`` with angle in [0, pi]."""
    q = matrix_to_quaternion(r)
    w, xyz = q[..., :1], q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, w)
    small = s < 0.5 * _SMALL_ANGLE
    safe_s = torch.where(small, torch.ones_like(s), s)
    # angle / s -> 2 / w as s -> 0 (w -> 1).
    scale = torch.where(small, 2 / w.clamp_min(0.5) * (1 + s * s / (3 * w * w)), angle / safe_s)
    return scale * xyz


def angle(r: torch.Tensor) -> torch.Tensor:
    """Rotation angle in [0, pi] of ``[..., 3, 3]`` -> ``[...]``, stable at 0 and pi."""
    q = matrix_to_quaternion(r)
    return 2 * torch.atan2(q[..., 1:].norm(dim=-1), q[..., 0])


def relative(r0: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """``r0^T r1``: the rotation taking r0 to r1, in r0's body frame."""
    return r0.transpose(-1, -2) @ r1


def log_map(r: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Body-frame tangent vector at ``r`` pointing along the geodesic to ``target``."""
    return log(relative(r, target))


def exp_map(r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Move from ``r`` along body-frame tangent ``w``: ``r exp(w)``."""
    return r @ exp(w)


def distance(r0: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """Geodesic distance (rotation angle of r0^T r1, radians)."""
    return angle(relative(r0, r1))


def geodesic(r0: torch.Tensor, r1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``r0 exp(t log(r0^T r1))``; t broadcasts against the batch shape ``[...]``."""
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(t, dtype=r0.dtype, device=r0.device)
    return exp_map(r0, t[..., None] * log_map(r0, r1))


def project_to_rotation(m: torch.Tensor) -> torch.Tensor:
    """Nearest rotation (Frobenius) to ``[..., 3, 3]`` matrices, via SVD."""
    u, _, vh = torch.linalg.svd(m)
    d = torch.sign(torch.linalg.det(u @ vh))
    vh = torch.cat([vh[..., :2, :], vh[..., 2:, :] * d[..., None, None]], dim=-2)
    return u @ vh


def project_to_tangent(r: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Project an ambient ``[..., 3, 3]`` matrix onto T_r SO(3); returns a body-frame vector."""
    return vee(r.transpose(-1, -2) @ m)


def uniform(shape, dtype=torch.float32, device=None, generator: torch.Generator | None = None):
    """Haar-uniform rotations ``[*shape, 3, 3]`` (normalised Gaussian quaternions)."""
    q = torch.randn(*shape, 4, dtype=dtype, device=device, generator=generator)
    return quaternion_to_matrix(q)


def random_unit_vectors(shape, dtype=torch.float32, device=None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    v = torch.randn(*shape, 3, dtype=dtype, device=device, generator=generator)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def haar_angle_density(omega: torch.Tensor) -> torch.Tensor:
    """Density of the rotation angle of a Haar-uniform rotation on [0, pi]: (1 - cos w) / pi."""
    return (1 - torch.cos(omega)) / math.pi


def igso3_angle_density(omega: torch.Tensor, sigma: torch.Tensor | float,
                        num_terms: int = 500) -> torch.Tensor:
    """Density of the angle of an isotropic Gaussian on SO(3) (IGSO3) with scale sigma.

    ``f(w) = (1 - cos w)/pi * sum_l (2l+1) exp(-l(l+1) sigma^2 / 2) sin((l+1/2) w) / sin(w/2)``,
    a density on [0, pi]. ``omega`` ``[..., G]``; sigma broadcasts to ``[..., 1]``.
    """
    if not isinstance(sigma, torch.Tensor):
        sigma = torch.tensor(sigma, dtype=omega.dtype, device=omega.device)
    sigma = sigma.to(omega.dtype)
    ell = torch.arange(num_terms, dtype=omega.dtype, device=omega.device)
    w = omega[..., None]
    coeff = (2 * ell + 1) * torch.exp(-ell * (ell + 1) * sigma[..., None, None] ** 2 / 2)
    half = torch.clamp(torch.sin(w / 2), min=1e-8)
    # Character of the spin-l representation; its limit at w = 0 is 2l + 1.
    chi = torch.where(w < 1e-6, 2 * ell + 1, torch.sin((ell + 0.5) * w) / half)
    series = (coeff * chi).sum(-1)
    return (haar_angle_density(omega) * series).clamp_min(0.0)


def sample_angles_from_density(density: torch.Tensor, grid: torch.Tensor,
                               generator: torch.Generator | None = None,
                               sample_shape: tuple = ()) -> torch.Tensor:
    """Inverse-CDF draws from tabulated densities on the sorted ``grid`` ``[G]``.

    ``density`` ``[..., G]`` (unnormalised): one draw per leading index, returned as
    ``[...]``; a 1-D density with ``sample_shape`` gives ``sample_shape`` draws from it.
    Draws are linearly interpolated inside the grid cell.
    """
    cell = 0.5 * (density[..., 1:] + density[..., :-1]) * (grid[1:] - grid[:-1])
    cdf = torch.cumsum(cell, dim=-1)
    total = cdf[..., -1:].clamp_min(torch.finfo(cdf.dtype).tiny)
    cdf = torch.cat([torch.zeros_like(total), cdf / total], dim=-1)
    shape = tuple(sample_shape) if density.dim() == 1 else density.shape[:-1]
    u = torch.rand(*shape, dtype=density.dtype, device=density.device, generator=generator)
    if density.dim() == 1:
        idx = torch.searchsorted(cdf, u.reshape(-1)).clamp(1, grid.numel() - 1).reshape(shape)
        lo, hi = cdf[idx - 1], cdf[idx]
    else:
        idx = torch.searchsorted(cdf.contiguous(), u[..., None]).clamp(1, grid.numel() - 1)
        lo, hi = torch.gather(cdf, -1, idx - 1).squeeze(-1), torch.gather(cdf, -1, idx).squeeze(-1)
        idx = idx.squeeze(-1)
    frac = ((u - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return grid[idx - 1] + frac * (grid[idx] - grid[idx - 1])


def sample_igso3(shape, sigma: float, dtype=torch.float32, device=None,
                 generator: torch.Generator | None = None, grid_size: int = 2048) -> torch.Tensor:
    """Draws ``[*shape, 3, 3]`` from IGSO3 centred at the identity with scale ``sigma``."""
    grid = torch.linspace(0, math.pi, grid_size, dtype=torch.float64, device=device)
    dens = igso3_angle_density(grid, sigma)
    omega = sample_angles_from_density(dens, grid, generator, sample_shape=tuple(shape)).to(dtype)
    axis = random_unit_vectors(shape, dtype=dtype, device=device, generator=generator)
    return exp(omega[..., None] * axis)


def super_fibonacci_grid(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``n`` near-uniform rotations ``[n, 3, 3]`` (super-Fibonacci spirals, Alexa 2022)."""
    phi = math.sqrt(2.0)
    psi = 1.533751168755204288118041
    i = torch.arange(n, dtype=torch.float64) + 0.5
    s = i / n
    r = torch.sqrt(s)
    big_r = torch.sqrt(1.0 - s)
    alpha = 2 * math.pi * i / phi
    beta = 2 * math.pi * i / psi
    q = torch.stack([r * torch.sin(alpha), r * torch.cos(alpha),
                     big_r * torch.sin(beta), big_r * torch.cos(beta)], dim=-1)
    return quaternion_to_matrix(q).to(dtype=dtype, device=device)
