"""Units, centring, radius of gyration and the P-SEA helper: one helper each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiflow_gm.protein.coordinates import (ANGSTROM_PER_NM, NM_PER_ANGSTROM, angstrom_to_nm, center_positions,
                                              centroid, nm_to_angstrom, radius_of_gyration)
from multiflow_gm.protein.evaluation.secondary_structure import psea_states, state_fractions
from multiflow_gm.protein.geometry import backbone_from_torsions
from multiflow_gm.protein.process import ProcessConfig


def test_unit_constants_and_conversions():
    assert ANGSTROM_PER_NM * NM_PER_ANGSTROM == 1.0
    assert ProcessConfig().translation_scale == NM_PER_ANGSTROM
    assert angstrom_to_nm(38.0) == pytest.approx(3.8) and nm_to_angstrom(0.38) == pytest.approx(3.8)
    # Values whose nm form is exact in binary round-trip bit for bit.
    exact = np.array([0.0, 10.0, -20.0, 5.0, 2.5, 1280.0])
    assert np.array_equal(nm_to_angstrom(angstrom_to_nm(exact)), exact)
    assert np.array_equal(angstrom_to_nm(nm_to_angstrom(exact)), exact)


def test_unit_round_trip_within_one_rounding_step():
    # Factors 0.1 and 10 are not powers of two, so a round trip may move the last bit.
    x = torch.randn(10_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 30
    back = nm_to_angstrom(angstrom_to_nm(x))
    assert torch.allclose(back, x, rtol=2 * torch.finfo(x.dtype).eps, atol=0.0)
    x32 = x.float()
    assert torch.allclose(nm_to_angstrom(angstrom_to_nm(x32)), x32, rtol=2 * torch.finfo(torch.float32).eps, atol=0)


def test_conversions_match_the_config_factor_bit_for_bit():
    x = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(angstrom_to_nm(x, 0.1), x * 0.1)
    assert torch.equal(nm_to_angstrom(x, 0.1), x / 0.1)


def test_center_positions_masked_and_unmasked():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64) + 5.0
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    centred = center_positions(x, mask)
    assert torch.allclose(centred[0].mean(0), torch.zeros(3, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(centred[1, :4].mean(0), torch.zeros(3, dtype=x.dtype), atol=1e-12)
    assert (centred[1, 4:] == 0).all()
    assert torch.allclose(center_positions(x[0]), centred[0], atol=1e-12)
    points = x[1].numpy()
    assert np.allclose(center_positions(points), points - points.mean(0))
    assert centroid(points).shape == (1, 3)
    empty = center_positions(x, torch.zeros(2, 6, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros_like(x))


@pytest.mark.parametrize("radius", [1.0, 7.5])
def test_radius_of_gyration_of_points_on_a_sphere(radius):
    # Any points at distance r from their common centroid have Rg = r exactly:
    # the octahedron's vertices (centroid at its centre), shifted anywhere.
    vertices = np.concatenate([np.eye(3), -np.eye(3)]) * radius + np.array([3.0, -2.0, 11.0])
    assert radius_of_gyration(vertices) == pytest.approx(radius, rel=1e-12)
    assert radius_of_gyration(torch.as_tensor(vertices)) == pytest.approx(radius, rel=1e-12)
    assert isinstance(radius_of_gyration(vertices), float)


def test_psea_states_on_an_ideal_alpha_helix():
    atoms = backbone_from_torsions(torch.full((30,), -57.0), torch.full((30,), -47.0)).numpy()
    ca = atoms[:, 1]
    states = psea_states(ca)
    assert states.shape == (30,) and set(states) <= {"H", "E", "C"}
    fractions = state_fractions(states)
    assert fractions["helix"] > 0.85
    assert fractions["helix"] + fractions["strand"] + fractions["coil"] == pytest.approx(1.0)


def test_psea_states_on_an_extended_strand_is_not_helix():
    atoms = backbone_from_torsions(torch.full((12,), -120.0), torch.full((12,), 130.0)).numpy()
    states = psea_states(atoms[:, 1])
    assert (states != "H").all()
