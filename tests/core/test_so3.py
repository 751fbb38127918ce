"""SO(3) maths against identities that hold exactly."""

import math

import pytest
import torch

from multiflow_gm.core.spaces import so3


def _rotations_with_hard_angles(n, dtype):
    axis = so3.random_unit_vectors((3 * n,), dtype=dtype)
    angles = torch.cat([torch.rand(n, dtype=dtype) * math.pi,
                        torch.rand(n, dtype=dtype) * 1e-3,            # near 0
                        math.pi - torch.rand(n, dtype=dtype) * 1e-3])  # near pi
    return so3.exp(angles[:, None] * axis), angles


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_log_round_trip_near_zero_and_pi(dtype):
    r, angles = _rotations_with_hard_angles(2000, dtype)
    assert (so3.exp(so3.log(r)) - r).abs().max() < 1e-5
    assert (so3.angle(r) - angles).abs().max() < (1e-5 if dtype == torch.float32 else 1e-10)
    uniform = so3.uniform((5000,), dtype=dtype)
    assert (so3.exp(so3.log(uniform)) - uniform).abs().max() < 1e-5


def test_log_inverts_exp_inside_injectivity_radius():
    v = so3.random_unit_vectors((1000,), dtype=torch.float64) * (torch.rand(1000, 1, dtype=torch.float64) * 3.1)
    assert torch.allclose(so3.log(so3.exp(v)), v, atol=1e-10)
    tiny = torch.randn(100, 3, dtype=torch.float64) * 1e-9
    assert torch.allclose(so3.log(so3.exp(tiny)), tiny, atol=1e-15)


def test_exp_is_a_rotation_and_matches_matrix_exponential():
    v = torch.randn(200, 3, dtype=torch.float64)
    r = so3.exp(v)
    assert torch.allclose(r, torch.linalg.matrix_exp(so3.hat(v)), atol=1e-12)
    assert torch.allclose(r.transpose(-1, -2) @ r, torch.eye(3, dtype=torch.float64).expand_as(r), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(200, dtype=torch.float64))


def test_hat_vee_and_quaternion_round_trips():
    v = torch.randn(50, 3)
    assert torch.allclose(so3.vee(so3.hat(v)), v)
    q = torch.randn(50, 4, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(so3.matrix_to_quaternion(so3.quaternion_to_matrix(q)), q, atol=1e-12)


def test_geodesic_hits_both_ends_and_is_constant_speed():
    r0, r1 = so3.uniform((300,), dtype=torch.float64), so3.uniform((300,), dtype=torch.float64)
    assert torch.allclose(so3.geodesic(r0, r1, 0.0), r0, atol=1e-12)
    assert torch.allclose(so3.geodesic(r0, r1, 1.0), r1, atol=1e-10)
    full = so3.distance(r0, r1)
    mid = so3.geodesic(r0, r1, torch.full((300,), 0.3, dtype=torch.float64))
    assert torch.allclose(so3.distance(r0, mid), 0.3 * full, atol=1e-9)
    assert torch.allclose(so3.distance(mid, r1), 0.7 * full, atol=1e-9)


def test_uniform_angles_follow_haar_density():
    angles = so3.angle(so3.uniform((200000,), dtype=torch.float64))
    # Haar: E[angle] = pi/2 + 2/pi, and P(angle < pi/2) = (pi/2 - 1)/pi.
    assert abs(angles.mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.01
    assert abs((angles < math.pi / 2).double().mean().item() - (math.pi / 2 - 1) / math.pi) < 0.005


def test_uniform_is_invariant_under_left_multiplication():
    g = so3.exp(torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64))
    r = so3.uniform((100000,), dtype=torch.float64)
    mean_r = r.mean(0)
    assert mean_r.abs().max() < 0.01 and (g @ r).mean(0).abs().max() < 0.01


@pytest.mark.parametrize("sigma", [0.2, 0.8])
def test_igso3_angles_match_density(sigma):
    draws = so3.angle(so3.sample_igso3((50000,), sigma, dtype=torch.float64))
    grid = torch.linspace(0, math.pi, 4001, dtype=torch.float64)
    dens = so3.igso3_angle_density(grid, sigma)
    cdf = torch.cumulative_trapezoid(dens, grid)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), cdf / cdf[-1]])
    empirical = torch.searchsorted(draws.sort().values, grid).double() / draws.numel()
    assert (empirical - cdf).abs().max() < 0.01  # Kolmogorov-Smirnov distance


def test_igso3_small_sigma_is_gaussian_in_the_tangent_space():
    # For small sigma IGSO3 ~ N(0, sigma^2 I_3) in the tangent space: E[angle^2] = 3 sigma^2.
    sigma = 0.05
    draws = so3.angle(so3.sample_igso3((50000,), sigma, dtype=torch.float64))
    assert abs((draws ** 2).mean().item() / (3 * sigma ** 2) - 1) < 0.03


def test_project_to_rotation_and_tangent():
    noisy = so3.uniform((100,), dtype=torch.float64) + 0.05 * torch.randn(100, 3, 3, dtype=torch.float64)
    r = so3.project_to_rotation(noisy)
    assert torch.allclose(r.transpose(-1, -2) @ r, torch.eye(3, dtype=torch.float64).expand_as(r), atol=1e-10)
    assert (torch.linalg.det(r) > 0).all()
    base = so3.uniform((10,), dtype=torch.float64)
    w = torch.randn(10, 3, dtype=torch.float64)
    assert torch.allclose(so3.project_to_tangent(base, base @ so3.hat(w)), w, atol=1e-12)


def test_super_fibonacci_grid_covers_so3():
    grid = so3.super_fibonacci_grid(2048, dtype=torch.float64)
    probes = so3.uniform((500,), dtype=torch.float64)
    nearest = so3.distance(probes[:, None], grid[None]).min(dim=1).values
    # Covering radius of 2048 near-uniform points is about 0.3 rad.
    assert nearest.max() < 0.35


def test_hat_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"v must have shape \(\.\.\., 3\)"):
        so3.hat(torch.zeros(4, 2))
