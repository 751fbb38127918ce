"""Backbone geometry: frames, ideal atoms, CA traces, radius of gyration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from multiflow_gm.core.spaces import so3

from multiflow_gm.protein import geometry as g
from multiflow_gm.protein import residue_constants as rc


def _helix(length=40, dtype=torch.float64):
    return g.backbone_from_torsions([-57.0] * length, -47.0, dtype=dtype)


def _rmsd(a, b):
    return ((a - b) ** 2).sum(-1).mean().sqrt().item()


def test_frames_are_rotations_with_af2_convention():
    atoms = g.backbone_from_torsions(np.random.default_rng(0).uniform(-180, 180, 30), 120.0)
    rotations, translations = g.frames_from_backbone(atoms[:, 0], atoms[:, 1], atoms[:, 2])
    eye = torch.eye(3, dtype=atoms.dtype).expand(30, 3, 3)
    assert torch.allclose(rotations.transpose(-1, -2) @ rotations, eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(30, dtype=atoms.dtype), atol=1e-10)
    assert torch.equal(translations, atoms[:, 1])
    # Local coordinates: C on +x, N in the xy plane with positive y.
    local = torch.einsum("lji,lkj->lki", rotations, atoms - translations[:, None])
    assert torch.allclose(local[:, 2, 1:], torch.zeros(30, 2, dtype=atoms.dtype), atol=1e-10)
    assert (local[:, 2, 0] > 0).all()
    assert torch.allclose(local[:, 0, 2], torch.zeros(30, dtype=atoms.dtype), atol=1e-10)
    assert (local[:, 0, 1] > 0).all()


def test_round_trip_is_exact_on_ideal_geometry():
    atoms = _helix(50)
    rotations, translations = g.frames_from_backbone(atoms[:, 0], atoms[:, 1], atoms[:, 2])
    rebuilt = g.backbone_from_frames(rotations, translations)
    assert rebuilt.shape == (50, 5, 3)
    # Every atom but the last O (whose successor N is unknown) is reproduced exactly.
    assert torch.allclose(rebuilt[:, :3], atoms[:, :3], atol=1e-6)
    assert torch.allclose(rebuilt[:-1, 3], atoms[:-1, 3], atol=1e-6)
    # The terminal O still has the ideal carbonyl geometry.
    ca, c, o = rebuilt[-1, 1], rebuilt[-1, 2], rebuilt[-1, 3]
    assert (o - c).norm().item() == pytest.approx(rc.IDEAL_C_O_BOND, abs=1e-6)
    cos_angle = torch.dot(ca - c, o - c) / ((ca - c).norm() * (o - c).norm())
    assert math.degrees(math.acos(cos_angle.item())) == pytest.approx(rc.IDEAL_CA_C_O_ANGLE_DEG, abs=1e-4)
    # CB: ideal distance to CA and L chirality ((N-CA) x (C-CA) . (CB-CA) > 0, as for L-alanine).
    n, ca_all, c_all, cb = rebuilt[:, 0], rebuilt[:, 1], rebuilt[:, 2], rebuilt[:, 4]
    expected = torch.full((50,), math.dist(rc.IDEAL_CB, rc.IDEAL_CA), dtype=atoms.dtype)
    assert torch.allclose((cb - ca_all).norm(dim=-1), expected, atol=1e-6)
    volume = (torch.cross(n - ca_all, c_all - ca_all, dim=-1) * (cb - ca_all)).sum(-1)
    assert (volume > 0).all()


def test_frames_and_atoms_are_se3_equivariant_batched_float32():
    atoms = torch.stack([_helix(20, torch.float32), g.backbone_from_torsions([-120.0] * 20, 130.0, dtype=torch.float32)])
    rot = so3.uniform((), generator=torch.Generator().manual_seed(3))
    shift = torch.tensor([5.0, -2.0, 30.0])
    moved = atoms @ rot.T + shift
    r0, t0 = g.frames_from_backbone(atoms[..., 0, :], atoms[..., 1, :], atoms[..., 2, :])
    r1, t1 = g.frames_from_backbone(moved[..., 0, :], moved[..., 1, :], moved[..., 2, :])
    assert r1.dtype == torch.float32 and r1.shape == (2, 20, 3, 3)
    assert torch.allclose(r1, rot @ r0, atol=1e-5)
    assert torch.allclose(t1, t0 @ rot.T + shift, atol=1e-4)
    assert torch.allclose(g.backbone_from_frames(r1, t1), g.backbone_from_frames(r0, t0) @ rot.T + shift, atol=1e-4)


def test_residue_mask_detaches_o_from_masked_successor():
    atoms = _helix(10)
    rotations, translations = g.frames_from_backbone(atoms[:, 0], atoms[:, 1], atoms[:, 2])
    mask = torch.ones(10, dtype=torch.bool)
    mask[5] = False
    rebuilt = g.backbone_from_frames(rotations, translations, residue_mask=mask)
    unmasked = g.backbone_from_frames(rotations, translations)
    # Residue 4's O no longer follows residue 5; it matches the terminal rule instead.
    terminal = g.backbone_from_frames(rotations[:5], translations[:5])
    assert torch.allclose(rebuilt[4, 3], terminal[4, 3], atol=1e-9)
    assert not torch.allclose(rebuilt[4, 3], unmasked[4, 3], atol=1e-3)
    assert torch.allclose(rebuilt[:4], unmasked[:4])


def test_geometry_is_differentiable():
    atoms = _helix(6).requires_grad_(True)

    def rebuild(x):
        rotations, translations = g.frames_from_backbone(x[:, 0], x[:, 1], x[:, 2])
        return g.backbone_from_frames(rotations, translations)

    assert torch.autograd.gradcheck(rebuild, (atoms,), eps=1e-6, atol=1e-5)


def test_round_trip_on_real_chains(small_real_cache):
    from multiflow_gm.protein.data.cache import ChainCache

    cache = ChainCache(small_real_cache)
    assert len(cache) >= 10
    for index in range(len(cache)):
        atoms = torch.from_numpy(cache.load(index).atoms).double()
        rotations, translations = g.frames_from_backbone(atoms[:, 0], atoms[:, 1], atoms[:, 2])
        rebuilt = g.backbone_from_frames(rotations, translations)
        assert torch.equal(rebuilt[:, 1], atoms[:, 1])
        assert _rmsd(rebuilt[:, 0], atoms[:, 0]) < 0.1
        assert _rmsd(rebuilt[:, 2], atoms[:, 2]) < 0.1
        assert _rmsd(rebuilt[:, 3], atoms[:, 3]) < 0.3


def test_ca_trace_reconstruction_keeps_ca_and_ideal_peptides():
    helix = _helix(60)
    rebuilt = g.ideal_backbone_from_ca_trace(helix[:, 1])
    assert torch.equal(rebuilt[:, 1], helix[:, 1])
    peptide = (rebuilt[:-1, 2] - rebuilt[1:, 0]).norm(dim=-1)
    assert torch.allclose(peptide, torch.full_like(peptide, 1.329), atol=1e-6)
    # On an ideal helix the fitted peptide orientation recovers the true backbone closely.
    assert _rmsd(rebuilt[1:-1, 0], helix[1:-1, 0]) < 0.25
    assert _rmsd(rebuilt[1:-1, 2], helix[1:-1, 2]) < 0.25
    assert _rmsd(rebuilt[1:-1, 3], helix[1:-1, 3]) < 0.6


def test_ca_trace_reconstruction_handles_batches_and_tiny_traces():
    walk = torch.randn(3, 12, 3).cumsum(dim=1) * 2.0
    assert g.ideal_backbone_from_ca_trace(walk).shape == (3, 12, 5, 3)
    for length in (1, 2, 3):
        out = g.ideal_backbone_from_ca_trace(torch.randn(length, 3, dtype=torch.float32))
        assert out.shape == (length, 5, 3) and torch.isfinite(out).all()


def test_random_rotations_are_haar_distributed():
    rotations = so3.uniform((4000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), eye.expand_as(rotations), atol=1e-10)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(4000, dtype=torch.float64))
    # Haar measure: E[R] = 0 and the trace has mean 0 and variance 1.
    assert rotations.mean(0).abs().max().item() < 0.05
    trace = rotations.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(trace.mean().item()) < 0.05 and abs(trace.var().item() - 1.0) < 0.1


def test_backbone_from_torsions_reproduces_its_torsions():
    phi = np.random.default_rng(1).uniform(-180, 180, 12)
    psi = np.random.default_rng(2).uniform(-180, 180, 12)
    atoms = g.backbone_from_torsions(phi, psi)
    n, ca, c = atoms[:, 0], atoms[:, 1], atoms[:, 2]
    measured_phi = torch.rad2deg(g.dihedral(c[:-1], n[1:], ca[1:], c[1:]))
    measured_psi = torch.rad2deg(g.dihedral(n[:-1], ca[:-1], c[:-1], n[1:]))
    wrap = lambda x: (x + 180.0) % 360.0 - 180.0  # noqa: E731
    assert np.allclose(wrap(measured_phi.numpy() - phi[1:]), 0.0, atol=1e-6)
    assert np.allclose(wrap(measured_psi.numpy() - psi[:-1]), 0.0, atol=1e-6)
    ca_ca = (ca[1:] - ca[:-1]).norm(dim=-1)
    assert torch.allclose(ca_ca, torch.full_like(ca_ca, 3.80), atol=0.01)
