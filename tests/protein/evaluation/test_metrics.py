"""Evaluation metrics on chains built in the test: answers from geometry and information theory."""

import math

import numpy as np
import pytest
import torch

from multiflow_gm.protein.evaluation.baselines import random_walk_ca_trace
from multiflow_gm.protein.evaluation.compactness import compactness, fit_rg_vs_length
from multiflow_gm.protein.coordinates import radius_of_gyration
from multiflow_gm.protein.evaluation.designability import kabsch_rmsd, self_consistency
from multiflow_gm.protein.evaluation.diversity import diversity_summary, pairwise_tm_matrix
from multiflow_gm.protein.evaluation.geometry_metrics import backbone_geometry, bond_angles_deg, ca_clash_pairs
from multiflow_gm.protein.evaluation.novelty import (
    NoveltySettings,
    novelty_search,
    novelty_summary,
    shape_descriptor,
)
from multiflow_gm.protein.evaluation.secondary_structure import psea_states, secondary_structure, strand_pairing
from multiflow_gm.protein.evaluation.sequence_metrics import (
    composition,
    composition_divergence,
    jensen_shannon,
    sequence_metrics,
)
from multiflow_gm.protein.geometry import ideal_backbone_from_ca_trace
from multiflow_gm.protein.alphabet import AA_ORDER, NUM_AMINO_ACIDS
from multiflow_gm.protein.residue_constants import IDEAL_C, IDEAL_CA, IDEAL_N

RISE = 1.5  # Angstrom per residue along an alpha-helix axis
TURN = math.radians(100.0)  # 3.6 residues per turn
# Radius that makes consecutive CAs exactly 3.80 A apart for this rise and turn.
RADIUS = math.sqrt(3.8**2 - RISE**2) / (2 * math.sin(TURN / 2))


def helix_ca(length: int) -> np.ndarray:
    k = np.arange(length)
    return np.stack([RADIUS * np.cos(TURN * k), RADIUS * np.sin(TURN * k), RISE * k], axis=-1)


def backbone(ca: np.ndarray) -> np.ndarray:
    return ideal_backbone_from_ca_trace(torch.as_tensor(ca, dtype=torch.float64)).numpy()[:, :4]


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)


def test_ideal_helix_geometry_and_secondary_structure():
    atoms = backbone(helix_ca(40))
    geometry = backbone_geometry(atoms)
    assert geometry["ca_ca_mean"] == pytest.approx(3.80, abs=1e-6)
    assert geometry["ca_ca_outside_fraction"] == 0.0
    assert geometry["clashes"] == 0 and geometry["chain_breaks"] == 0
    assert 100.0 < geometry["n_ca_c_angle_mean"] < 120.0
    fractions, states = secondary_structure(atoms)
    assert fractions["psea_helix"] > 0.85
    assert fractions["psea_helix"] + fractions["psea_strand"] + fractions["psea_coil"] == pytest.approx(1.0)
    assert set(states) <= {"H", "E", "C"}


def _two_strands(separation: float) -> tuple[np.ndarray, np.ndarray]:
    """Two antiparallel lines of 10 CAs, 3.3 A apart along x and ``separation`` A apart in y,
    joined by 10 coil residues far away: strand residues 0-9 and 20-29."""
    first = np.stack([3.3 * np.arange(10), np.zeros(10), np.zeros(10)], -1)
    second = np.stack([3.3 * np.arange(10)[::-1], np.full(10, separation), np.zeros(10)], -1)
    loop = np.stack([np.full(10, 40.0), np.linspace(0, separation, 10), np.full(10, 30.0)], -1)
    states = np.array(["E"] * 10 + ["C"] * 10 + ["E"] * 10)
    return np.concatenate([first, loop, second]), states


def test_strand_pairing_finds_partners_across_a_sheet_and_none_apart():
    ca, states = _two_strands(4.8)
    paired = strand_pairing(ca, states)
    assert paired["strand_paired"] == pytest.approx(20 / 30)
    assert paired["strand_partner_distance"] == pytest.approx(4.8)
    apart = strand_pairing(*_two_strands(9.0))
    assert apart["strand_paired"] == 0.0
    assert apart["strand_partner_distance"] == pytest.approx(9.0)
    # Residues of one strand 3.3 A apart along the chain are never each other's partners.
    alone = strand_pairing(ca[:10], states[:10])
    assert alone["strand_paired"] == 0.0 and alone["strand_partner_distance"] == pytest.approx(9.9)
    none = strand_pairing(ca, np.full(30, "C"))
    assert none["strand_paired"] == 0.0 and math.isnan(none["strand_partner_distance"])


def test_n_ca_c_angle_of_the_ideal_residue_frame():
    n, ca, c = (np.array(x)[None] for x in (IDEAL_N, IDEAL_CA, IDEAL_C))
    expected = math.degrees(math.acos(np.dot(n[0], c[0]) / (np.linalg.norm(n) * np.linalg.norm(c))))
    assert bond_angles_deg(n, ca, c)[0] == pytest.approx(expected)
    assert expected == pytest.approx(111.2, abs=0.1)


def test_clashes_and_breaks_are_found_where_placed():
    ca = helix_ca(20)
    ca[15] = ca[3] + np.array([0.5, 0.0, 0.0])  # residue 15 on top of residue 3
    pairs = {tuple(p) for p in ca_clash_pairs(ca)}
    assert (3, 15) in pairs
    # Residue 15 sits 0.5 A from residue 3, so it clashes with 3's near neighbours too.
    expected = np.unique([i for pair in pairs for i in pair]).size / 20
    assert backbone_geometry(backbone(ca))["clash_residue_fraction"] == pytest.approx(expected)
    assert backbone_geometry(backbone(helix_ca(20)))["clash_residue_fraction"] == 0.0
    stretched = helix_ca(20)
    stretched[10:] += np.array([0.0, 0.0, 5.0])  # one 3.8 A bond becomes > 4.2 A
    geometry = backbone_geometry(backbone(stretched))
    assert geometry["chain_breaks"] == 1
    assert geometry["ca_ca_outside_fraction"] == pytest.approx(1 / 19)


def test_length_one_chain_has_no_bond_statistics():
    geometry = backbone_geometry(backbone(helix_ca(1)))
    assert math.isnan(geometry["ca_ca_mean"]) and geometry["clashes"] == 0


def test_random_walk_has_protein_local_geometry_but_no_structure():
    rng = np.random.default_rng(1)
    ca = random_walk_ca_trace(120, rng)
    distances = np.linalg.norm(np.diff(ca, axis=0), axis=-1)
    np.testing.assert_allclose(distances, 3.80, atol=1e-9)
    assert len(ca_clash_pairs(ca)) == 0
    assert np.mean(psea_states(ca) == "C") > 0.8


def test_rg_fit_recovers_a_power_law():
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 300, size=400)
    rgs = 2.2 * lengths**0.38 * np.exp(rng.normal(0, 0.05, size=400))
    fit = fit_rg_vs_length(lengths, rgs)
    assert fit.exponent == pytest.approx(0.38, abs=0.02)
    assert fit.prefactor == pytest.approx(2.2, rel=0.1)
    # A normal residual of std 0.05 has its central 95% within +-1.96 sigma.
    assert math.log(fit.band_high) == pytest.approx(1.96 * 0.05, abs=0.02)
    # A Gaussian cloud with per-axis std s has Rg close to sqrt(3) s.
    cloud = rng.normal(size=(2000, 3)) * (fit.expected(2000) / math.sqrt(3))
    inside = compactness(cloud, fit)
    assert inside["rg_ratio"] == pytest.approx(1.0, abs=0.05) and inside["rg_in_band"] == 1.0
    assert compactness(cloud * 2.0, fit)["rg_in_band"] == 0.0


def test_radius_of_gyration_of_points_on_a_sphere():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3))
    points = 7.0 * points / np.linalg.norm(points, axis=1, keepdims=True)
    assert radius_of_gyration(points - points.mean(0)) == pytest.approx(7.0, abs=0.1)


def test_sequence_metrics():
    uniform = AA_ORDER * 5
    stats = sequence_metrics(uniform)
    assert stats["aa_entropy"] == pytest.approx(math.log(NUM_AMINO_ACIDS))
    assert stats["low_complexity"] == 0.0
    poly = sequence_metrics("A" * 40 + "GS" * 10)
    assert poly["aa_max_fraction"] == pytest.approx(40 / 60) and poly["low_complexity"] == 1.0
    assert sequence_metrics("ACDX")["unknown_fraction"] == pytest.approx(0.25)
    p = composition([uniform])
    np.testing.assert_allclose(p, 1 / NUM_AMINO_ACIDS)
    assert jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-12)
    only_a = composition(["AAAA"])
    # Disjoint supports reach the maximum, ln 2.
    assert jensen_shannon(only_a, composition(["GGGG"])) == pytest.approx(math.log(2))
    assert math.isnan(composition_divergence(["AAAA"], None)["aa_composition_js"])  # no reference


def test_tm_scores_of_copies_and_clusters():
    rng = np.random.default_rng(3)
    helix = helix_ca(50)
    walk = random_walk_ca_trace(50, rng)
    rotated = helix @ random_rotation(rng).T + 10.0
    matrix = pairwise_tm_matrix([helix, rotated, walk, walk.copy()])
    assert matrix[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert matrix[2, 3] == pytest.approx(1.0, abs=1e-6)
    assert matrix[0, 2] < 0.5
    np.testing.assert_allclose(matrix, matrix.T)
    summary = diversity_summary(matrix)
    assert summary["num_clusters"] == 2 and summary["cluster_fraction"] == 0.5


def test_novelty_finds_the_sample_inside_the_reference():
    rng = np.random.default_rng(5)
    references = [random_walk_ca_trace(int(n), rng) for n in rng.integers(60, 90, size=20)]
    references.append(helix_ca(70))
    descriptors = np.array([shape_descriptor(ca, *_helix_strand(ca)) for ca in references])
    lengths = np.array([len(ca) for ca in references])
    sample = references[7] @ random_rotation(rng).T
    sample_descriptor = shape_descriptor(sample, *_helix_strand(sample))
    np.testing.assert_allclose(sample_descriptor, descriptors[7], atol=1e-9)
    [found] = novelty_search([sample], sample_descriptor[None], references, lengths, descriptors,
                             NoveltySettings(top_k=3))
    assert found["nearest_reference_index"] == 7
    assert found["max_tm_to_reference"] == pytest.approx(1.0, abs=1e-6)
    excluded = np.zeros(len(references), dtype=bool)
    excluded[7] = True
    [other] = novelty_search([sample], sample_descriptor[None], references, lengths, descriptors,
                             NoveltySettings(top_k=3), exclusions=[excluded])
    assert other["nearest_reference_index"] != 7 and other["max_tm_to_reference"] < 0.9
    assert novelty_summary(np.array([1.0, 0.5]))["memorised_fraction"] == 0.5


def _helix_strand(ca):
    states = psea_states(ca)
    return float(np.mean(states == "H")), float(np.mean(states == "E"))


def test_self_consistency_of_a_perfect_refold():
    rng = np.random.default_rng(2)
    atoms = backbone(helix_ca(30))
    moved = atoms @ random_rotation(rng).T + 3.0
    result = self_consistency(atoms, moved)
    assert result["sc_rmsd"] == pytest.approx(0.0, abs=1e-6)
    assert result["sc_tm"] == pytest.approx(1.0, abs=1e-6) and result["designable"] == 1.0
    assert kabsch_rmsd(atoms[:, 1], atoms[:, 1] + rng.normal(0, 1.0, size=(30, 3))) > 0.5
