"""Per-modality Generator Matching losses of the co-design process.

With clean-sample predictions the Bregman losses become:

* translations and rotations: squared error between the path's conditional target
  at the noisy state and its estimate at the clean-sample prediction,
  ``u(x_t; x_1) - u(x_t; x1_hat)`` (CondOT: ``(x1 - x1_hat) / (1 - t)`` in nm; SO(3): body-frame tangent);
* residue types: the CTMC generalised KL of the masking path, i.e. cross-entropy
  on masked positions (up to the time weight kappa'/(1-kappa));
* optional SO(3) jump head: the generalised KL of the jump intensities,
  ``lambda* log(lambda*/lambda) - lambda* + lambda`` (the landing law is the path's own,
  around the predicted clean frame, so only the intensity is learned);
* auxiliary losses late in time: backbone-atom MSE, CA-distance MSE (on pairs
  closer than a cutoff in the data, or on all pairs), and a clash penalty on
  non-local pairs (|i - j| >= 3) that the prediction puts closer than the data
  allows; optionally with the same ``1/(1 - t)^2`` weight as the translations;
* an optional chain-bond term: squared error of the predicted distance between
  consecutive CA atoms that are bonded in the data (off by default).

Each path says at which time its target is compared (``regression_time``): paths whose
target error is a scalar rate of t times a time-free term (CondOT, geodesic) evaluate it
at ``min(t, t_clip)``, which only reweights the loss (a positive weight keeps the
minimiser) and bounds the ``1 / (1 - t)`` growth; the isotropic path's velocity is bounded
and is compared at the time the state was drawn at. The auxiliary losses' optional time
weight uses the same clipped ``1 - t``. Structure losses are off for inverse-folding
examples (t_struct = 1) and the sequence loss has nothing to score at t_seq = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from multiflow_gm.core import ConditionalPath, PathSample
from multiflow_gm.core.losses import generalized_kl, masked_cross_entropy
from multiflow_gm.protein.alphabet import MASK
from multiflow_gm.protein.coordinates import backbone_atoms_nm
from multiflow_gm.protein.process import CoDesignProcess


@dataclass
class LossConfig:
    translation_weight: float = 1.0
    rotation_weight: float = 1.0
    aatype_weight: float = 1.0
    aux_weight: float = 1.0
    aux_t_threshold: float = 0.25
    # CA-distance loss on pairs within aux_pair_cutoff, on all pairs, or both means added
    # ("both" keeps every pair in the loss and weights the contacts that make sheets as "near" does).
    aux_pairs: Literal["near", "all", "both"] = "near"
    aux_pair_cutoff: float = 1.0                 # nm
    aux_time_weight: bool = False                # scale the aux terms by 1/(1 - min(t, t_clip))^2
    clash_weight: float = 0.0
    clash_distance: float = 0.38                 # nm; non-local CA pairs closer than this (or the data) cost
    # The clash and bond terms apply where t_struct is at least this (0: at every time). At early
    # times the clean prediction is an average over many folds; penalising its contacts there
    # can teach the network to keep segments apart before it knows which ones pair.
    clash_t_threshold: float = 0.0
    bond_weight: float = 0.0                     # consecutive CA-CA distance error, timed as the clash term
    jump_weight: float = 0.1
    t_clip: float = 0.9

    def __post_init__(self):
        if not 0.0 < self.t_clip < 1.0:
            raise ValueError(f"loss.t_clip must lie in (0, 1); got {self.t_clip}")
        if self.clash_weight < 0 or self.clash_distance <= 0:
            raise ValueError("loss.clash_weight must be >= 0 and loss.clash_distance > 0")
        if self.bond_weight < 0:
            raise ValueError("loss.bond_weight must be >= 0")
        if not 0.0 <= self.clash_t_threshold < 1.0:
            raise ValueError(f"loss.clash_t_threshold must lie in [0, 1); got {self.clash_t_threshold}")


def _per_example_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid residues ``[B, L] -> [B]``."""
    m = mask.to(values.dtype)
    return (values * m).sum(-1) / m.sum(-1).clamp_min(1)


def codesign_losses(process: CoDesignProcess, noisy: dict, pred: dict,
                    cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Per-example losses ``{name: [B]}`` (un-weighted) and ``total`` (weighted, ``[B]``)."""
    mask = noisy["residue_mask"]
    t_struct = noisy["t_struct"]
    structure_on = (t_struct < 1).to(mask.dtype if mask.is_floating_point() else torch.float32)
    scale = 1.0 / (1.0 - t_struct.clamp(max=cfg.t_clip))                     # [B]

    trans_err = _target_error(process.translations, noisy["trans_t"], noisy["trans_1"],
                              pred["translations"], t_struct, cfg.t_clip)
    trans = _per_example_mean(trans_err, mask) * structure_on

    rot_path = process.rotations
    rot_err = _target_error(rot_path, noisy["rot_t"], noisy["rot_1"], pred["rotations"], t_struct, cfg.t_clip)
    rot = _per_example_mean(rot_err, mask) * structure_on

    seq_mask = mask & (noisy["aatype_t"] == MASK) & (noisy["aatype_1"] != MASK)
    ce = masked_cross_entropy(pred["logits"][..., :MASK], noisy["aatype_1"].clamp(max=MASK - 1), seq_mask)
    aatype = _per_example_mean(ce, mask)

    late = structure_on * (t_struct > cfg.aux_t_threshold)
    if cfg.aux_time_weight:
        late = late * scale ** 2
    atom_err, dist_err = _auxiliary(noisy, pred, mask, process.cfg.translation_scale, cfg)
    aux = (atom_err + dist_err) * late
    out = {"translation": trans, "rotation": rot, "aatype": aatype, "auxiliary": aux}
    total = (cfg.translation_weight * trans + cfg.rotation_weight * rot + cfg.aatype_weight * aatype
             + cfg.aux_weight * aux)
    if cfg.clash_weight > 0:
        # Clashes form early in the trajectory, so by default the penalty is not limited to late times.
        clash = (clash_penalty(noisy["trans_1"], pred["translations"], mask, cfg.clash_distance)
                 * clash_time_weight(structure_on, t_struct, scale, cfg))
        out["clash"] = clash
        total = total + cfg.clash_weight * clash
    if cfg.bond_weight > 0:
        # Bond lengths are a local property the prediction must hold whenever clashes are penalised.
        bond = (chain_bond_error(noisy["trans_1"], pred["translations"], mask)
                * clash_time_weight(structure_on, t_struct, scale, cfg))
        out["bond"] = bond
        total = total + cfg.bond_weight * bond
    if "jump_intensity" in pred:
        jump = _jump_loss(rot_path, noisy, pred) * structure_on
        out["so3_jump"] = jump
        total = total + cfg.jump_weight * jump
    out["total"] = total
    return out


def _target_error(path: ConditionalPath, x_t, x1, x1_hat, t, t_clip: float) -> torch.Tensor:
    """Squared error per residue ``[B, L]`` (mean over the 3 tangent coordinates, per unit time
    squared) between the path's conditional target and its estimate at the prediction."""
    time = path.regression_time(t, t_clip)
    v_true = path.target(PathSample(x_t, x1), time)
    v_pred = path.estimate(x_t, x1_hat, time)
    return ((v_true - v_pred) ** 2).sum(-1) / 3


def _auxiliary(noisy, pred, mask, nm_per_angstrom: float, cfg: LossConfig):
    """Backbone-atom MSE and CA-distance MSE (FrameFlow's aux loss), each ``[B]`` in nm^2.

    The distance term sees pairs closer than ``cfg.aux_pair_cutoff`` in the data, or
    every pair (only then do two residues that are far apart in the data but predicted
    close cost anything), or both means added.
    """
    true_atoms = backbone_atoms_nm(noisy["rot_1"], noisy["trans_1"], mask, nm_per_angstrom)
    pred_atoms = backbone_atoms_nm(pred["rotations"], pred["translations"], mask, nm_per_angstrom)
    atom_err = _per_example_mean(((true_atoms - pred_atoms) ** 2).sum(-1).mean(-1), mask)
    d_true = torch.cdist(noisy["trans_1"], noisy["trans_1"])
    d_pred = torch.cdist(pred["translations"], pred["translations"])
    pair = mask[:, :, None] & mask[:, None, :]
    squared = (d_true - d_pred) ** 2
    dist_err = torch.zeros_like(atom_err)
    if cfg.aux_pairs in ("near", "both"):
        dist_err = dist_err + _mean_over_pairs(squared, pair & (d_true < cfg.aux_pair_cutoff))
    if cfg.aux_pairs in ("all", "both"):
        dist_err = dist_err + _mean_over_pairs(squared, pair)
    return atom_err, dist_err


def _mean_over_pairs(values: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [B, L, L]`` over the pairs where the bool ``pairs`` is True -> ``[B]``."""
    weights = pairs.to(values.dtype)
    return (values * weights).sum((-1, -2)) / weights.sum((-1, -2)).clamp_min(1)


def clash_penalty(ca_true: torch.Tensor, ca_pred: torch.Tensor, mask: torch.Tensor,
                  distance: float) -> torch.Tensor:
    """Steric penalty ``[B]`` (nm^2 per residue) of predicted CA positions ``[B, L, 3]`` (nm).

    For pairs with ``|i - j| >= 3`` the predicted distance costs
    ``relu(min(distance, d_true) - d_pred)^2``: zero for the data itself (so the
    minimiser is unchanged), quadratic once two residues come closer than both the
    clash distance and their true distance. Summed over partners, averaged over residues.
    """
    d_true = torch.cdist(ca_true, ca_true)
    d_pred = torch.cdist(ca_pred, ca_pred)
    length = mask.shape[-1]
    idx = torch.arange(length, device=mask.device)
    nonlocal_pairs = (idx[:, None] - idx[None, :]).abs() >= 3
    pair = (mask[:, :, None] & mask[:, None, :] & nonlocal_pairs).to(d_pred.dtype)
    overlap = torch.relu(d_true.clamp(max=distance) - d_pred) ** 2 * pair
    return _per_example_mean(overlap.sum(-1), mask)


def clash_time_weight(structure_on: torch.Tensor, t_struct: torch.Tensor, scale: torch.Tensor,
                      cfg: LossConfig) -> torch.Tensor:
    """Weight ``[B]`` of the clash and bond terms: on for structure examples with ``t_struct``
    at least ``cfg.clash_t_threshold``, times ``1/(1 - t)^2`` when the auxiliary terms carry the
    time weight."""
    on = structure_on * (t_struct >= cfg.clash_t_threshold)
    return on * (scale ** 2 if cfg.aux_time_weight else 1.0)


BONDED_CA_DISTANCE = 0.42  # nm; consecutive CA atoms of one chain sit 0.38 nm apart, a chain break further


def chain_bond_error(ca_true: torch.Tensor, ca_pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``[B]`` (nm^2) of the predicted distance between consecutive CA atoms
    ``[B, L, 3]`` (nm), over the pairs that are bonded in the data (both present and closer than
    ``BONDED_CA_DISTANCE``, so chain breaks cost nothing)."""
    d_true = (ca_true[:, 1:] - ca_true[:, :-1]).norm(dim=-1)
    d_pred = (ca_pred[:, 1:] - ca_pred[:, :-1]).norm(dim=-1)
    bonded = (mask[:, 1:] & mask[:, :-1] & (d_true < BONDED_CA_DISTANCE)).to(d_pred.dtype)
    return ((d_true - d_pred) ** 2 * bonded).sum(-1) / bonded.sum(-1).clamp_min(1)


def _jump_loss(path: ConditionalPath, noisy, pred):
    """Generalised KL of the SO(3) jump intensity ``[B]`` against the conditional one."""
    lam_true = path.jump_intensity(noisy["rot_t"], noisy["rot_1"], noisy["t_struct"])
    loss = generalized_kl(lam_true.to(pred["jump_intensity"].dtype), pred["jump_intensity"], dim=None)
    return _per_example_mean(loss, noisy["residue_mask"])
