"""Recipe options of the co-design loss: clash penalty, all-pair distances, time weighting."""

import pytest
import torch

from multiflow_gm.protein.alphabet import NUM_MODEL_TOKENS
from multiflow_gm.protein.losses import LossConfig, chain_bond_error, clash_penalty, codesign_losses
from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig


def _helix_ca(length: int) -> torch.Tensor:
    """Ideal alpha-helix CA trace [1, L, 3] in nm (rise 0.15 nm, radius 0.23 nm, 100 degrees a turn)."""
    k = torch.arange(length, dtype=torch.float64)
    angle = torch.deg2rad(100.0 * k)
    return torch.stack([0.23 * torch.cos(angle), 0.23 * torch.sin(angle), 0.15 * k], -1)[None]


def test_clash_penalty_is_zero_at_the_truth_and_counts_only_nonlocal_overlaps():
    ca = _helix_ca(20)
    mask = torch.ones(1, 20, dtype=torch.bool)
    assert clash_penalty(ca, ca, mask, 0.38).item() == 0.0
    moved = ca.clone()
    moved[0, 15] = ca[0, 2] + torch.tensor([0.1, 0.0, 0.0], dtype=ca.dtype)  # residue 15 onto residue 2
    value = clash_penalty(ca, moved, mask, 0.38).item()
    assert value > 0
    # Direct sum over ordered pairs |i - j| >= 3 of relu(min(0.38, d_true) - d_pred)^2, over 20 residues.
    expected = 0.0
    for i in range(20):
        for j in range(20):
            if abs(i - j) >= 3:
                short = min(0.38, float((ca[0, i] - ca[0, j]).norm())) - float((moved[0, i] - moved[0, j]).norm())
                expected += max(short, 0.0) ** 2
    assert value == pytest.approx(expected / 20, rel=1e-9)
    assert value >= 2 * 0.28 ** 2 / 20  # at least the pair (2, 15), 0.1 nm apart
    # Pairs with |i - j| < 3 never count: shrinking neighbours does not trigger it.
    near = ca.clone()
    near[0, 1] = ca[0, 0] + 0.05
    assert clash_penalty(ca, near, mask, 0.38).item() == 0.0


def test_clash_penalty_gradient_pushes_overlapping_residues_apart():
    ca = _helix_ca(12)
    moved = ca.clone()
    moved[0, 10] = ca[0, 1] + torch.tensor([0.05, 0.0, 0.0], dtype=ca.dtype)
    moved.requires_grad_(True)
    clash_penalty(ca, moved, torch.ones(1, 12, dtype=torch.bool), 0.38).backward()
    # Descending the gradient moves residue 10 away from residue 1 (along +x).
    assert -moved.grad[0, 10, 0] > 0


def _noisy_and_pred(far_pair_error: bool):
    length = 16
    ca = _helix_ca(length).float()
    rot = torch.eye(3).expand(1, length, 3, 3).clone()
    mask = torch.ones(1, length, dtype=torch.bool)
    pred_ca = ca.clone()
    if far_pair_error:
        pred_ca[0, -1] = pred_ca[0, -1] + torch.tensor([0.0, 0.0, -1.5])  # far pair predicted too close
    noisy = {"trans_1": ca, "rot_1": rot, "aatype_1": torch.zeros(1, length, dtype=torch.long),
             "trans_t": ca, "rot_t": rot, "aatype_t": torch.zeros(1, length, dtype=torch.long),
             "t_struct": torch.tensor([0.6]), "t_seq": torch.tensor([0.6]), "residue_mask": mask,
             "residue_index": torch.arange(length)[None]}
    pred = {"translations": pred_ca, "rotations": rot, "logits": torch.zeros(1, length, NUM_MODEL_TOKENS)}
    return noisy, pred


def test_all_pair_distances_see_far_pairs_that_near_pairs_ignore():
    process = CoDesignProcess(ProcessConfig())
    noisy, pred = _noisy_and_pred(far_pair_error=True)
    exact_noisy, exact_pred = _noisy_and_pred(far_pair_error=False)
    near = LossConfig(aux_pairs="near", aux_pair_cutoff=0.5)
    every = LossConfig(aux_pairs="all")
    for cfg in (near, every):
        assert codesign_losses(process, exact_noisy, exact_pred, cfg)["auxiliary"].item() == pytest.approx(0, abs=1e-6)
    # The moved residue's backbone atoms cost in both; the distance term only with all pairs.
    gap = (codesign_losses(process, noisy, pred, every)["auxiliary"]
           - codesign_losses(process, noisy, pred, near)["auxiliary"]).item()
    assert gap > 1e-3


def test_both_pair_sets_add_the_near_and_all_pair_losses():
    process = CoDesignProcess(ProcessConfig())
    # A residue moved 0.3 nm changes near and far distances alike.
    noisy, pred = _noisy_and_pred(far_pair_error=False)
    pred = dict(pred, translations=pred["translations"].clone())
    pred["translations"][0, 5] += torch.tensor([0.3, 0.0, 0.0])
    exact_noisy, exact_pred = _noisy_and_pred(far_pair_error=False)
    both = LossConfig(aux_pairs="both", aux_pair_cutoff=0.5)
    assert codesign_losses(process, exact_noisy, exact_pred, both)["auxiliary"].item() == pytest.approx(0, abs=1e-6)
    parts = {name: codesign_losses(process, noisy, pred, LossConfig(aux_pairs=name, aux_pair_cutoff=0.5))["auxiliary"]
             for name in ("near", "all", "both")}
    # With no pair inside the cutoff, only the backbone-atom error is left.
    atoms = codesign_losses(process, noisy, pred, LossConfig(aux_pairs="near", aux_pair_cutoff=1e-9))["auxiliary"]
    assert (parts["near"] - atoms).item() > 1e-4 and (parts["all"] - atoms).item() > 1e-4
    assert parts["both"].item() == pytest.approx((parts["near"] + parts["all"] - atoms).item(), rel=1e-6)


def test_time_weight_scales_aux_by_inverse_square_of_remaining_time():
    process = CoDesignProcess(ProcessConfig())
    noisy, pred = _noisy_and_pred(far_pair_error=True)
    plain = codesign_losses(process, noisy, pred, LossConfig(aux_pairs="all"))["auxiliary"]
    weighted = codesign_losses(process, noisy, pred, LossConfig(aux_pairs="all", aux_time_weight=True))["auxiliary"]
    assert (weighted / plain).item() == pytest.approx(1 / 0.4 ** 2, rel=1e-5)
    with_clash = codesign_losses(process, noisy, pred, LossConfig(clash_weight=2.0))
    assert with_clash["clash"].item() > 0
    base = codesign_losses(process, noisy, pred, LossConfig())
    assert (with_clash["total"] - base["total"]).item() == pytest.approx(2.0 * with_clash["clash"].item(), rel=1e-5)


def test_chain_bond_error_is_the_mean_squared_error_of_bonded_ca_distances():
    ca = _helix_ca(12)
    mask = torch.ones(1, 12, dtype=torch.bool)
    assert chain_bond_error(ca, ca, mask).item() == 0.0
    moved = ca.clone()
    moved[0, -1, 2] += 0.1                                   # stretch the last bond only
    d_true = (ca[0, -1] - ca[0, -2]).norm()
    d_pred = (moved[0, -1] - moved[0, -2]).norm()
    assert chain_bond_error(ca, moved, mask).item() == pytest.approx(((d_true - d_pred) ** 2 / 11).item(), rel=1e-10)
    # A chain break in the data (0.5 nm gap > 0.42 nm) is not a bond: closing it costs nothing.
    broken = ca.clone()
    broken[0, 6:, 2] += 0.5
    assert chain_bond_error(broken, ca, mask).item() == pytest.approx(0.0, abs=1e-12)
    # Absent residues take their bonds with them.
    partial = mask.clone()
    partial[0, -1] = False
    assert chain_bond_error(ca, moved, partial).item() == 0.0


def test_bond_weight_adds_the_bond_term_to_the_total():
    process = CoDesignProcess(ProcessConfig())
    noisy, pred = _noisy_and_pred(far_pair_error=True)
    base = codesign_losses(process, noisy, pred, LossConfig())
    with_bond = codesign_losses(process, noisy, pred, LossConfig(bond_weight=3.0))
    assert "bond" not in base and with_bond["bond"].item() > 0
    assert (with_bond["total"] - base["total"]).item() == pytest.approx(3.0 * with_bond["bond"].item(), rel=1e-5)
    with pytest.raises(ValueError, match="bond_weight"):
        LossConfig(bond_weight=-1.0)


def test_clash_t_threshold_turns_the_clash_and_bond_terms_off_at_earlier_times():
    process = CoDesignProcess(ProcessConfig())
    noisy, pred = _noisy_and_pred(far_pair_error=True)            # t_struct = 0.6, a clash predicted
    cfg = dict(clash_weight=2.0, bond_weight=3.0)
    every_time = codesign_losses(process, noisy, pred, LossConfig(**cfg))
    assert every_time["clash"].item() > 0 and every_time["bond"].item() > 0
    below = codesign_losses(process, noisy, pred, LossConfig(**cfg, clash_t_threshold=0.5))
    assert below["clash"].item() == every_time["clash"].item() and below["bond"].item() == every_time["bond"].item()
    above = codesign_losses(process, noisy, pred, LossConfig(**cfg, clash_t_threshold=0.7))
    assert above["clash"].item() == 0.0 and above["bond"].item() == 0.0
    plain = codesign_losses(process, noisy, pred, LossConfig())
    assert above["total"].item() == pytest.approx(plain["total"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="clash_t_threshold"):
        LossConfig(clash_t_threshold=1.0)
