"""The co-design Markov process, assembled from core parts (frames on SE(3) x residue types).

A product of three components, each with its own path, generator and time:

* translations (CA positions, nm): CondOT Gaussian path with a centred prior; flow;
* rotations (backbone frames): geodesic SO(3) path (uniform prior; optional IGSO3
  training prior) with a flow sampled on an exponential-rate schedule, or the
  isotropic SO(3) path whose flow and jump generators superpose;
* residue types: masking mixture path; CTMC with eta stochasticity.

Structure and sequence have separate times: t_seq = 1 is folding, t_struct = 1 is
inverse folding. The network predicts clean samples; priors, noisy states, training
targets and sampler steps all come from the core paths' own formulas (their
``ConditionalPath`` protocol), so nothing here depends on which rotation path is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from multiflow_gm.core import (CondOTPath, ConditionalPath, ExponentialRateScheduler, GeodesicSO3Path,
                               IsotropicSO3Path, LinearScheduler, MixtureTokenPath, so3)
from multiflow_gm.core.paths.so3_isotropic import KAPPA_MAX_LIMIT
from multiflow_gm.protein.alphabet import MASK, NUM_AMINO_ACIDS, model_tokens
from multiflow_gm.protein.coordinates import NM_PER_ANGSTROM, center_positions
from multiflow_gm.protein.frame_batch import FrameBatch
from multiflow_gm.protein.noise_pairing import pair_noise


@dataclass
class TaskMix:
    """Fractions of training examples per task; they must sum to one."""

    codesign: float = 0.8
    folding: float = 0.1
    inverse_folding: float = 0.1

    def __post_init__(self):
        values = (self.codesign, self.folding, self.inverse_folding)
        if min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"task_mix fractions must be >= 0 and sum to 1; got {values}")


@dataclass
class ProcessConfig:
    translation_scale: float = NM_PER_ANGSTROM  # Angstrom -> nm: paths and network work in nm
    min_t: float = 0.01
    rotation_path: Literal["geodesic", "isotropic"] = "geodesic"
    rotation_train_prior: Literal["uniform", "igso3"] = "uniform"
    igso3_sigma: float = 1.5
    isotropic_kappa_max: float = 200.0
    rotation_sampling_rate: float = 10.0    # exponential schedule for geodesic sampling; 0 = linear
    noise_pairing: Literal["none", "align", "ot"] = "align"
    so3_jump: bool = False                  # train an SO(3) jump head (needs the isotropic path)
    task_mix: TaskMix = field(default_factory=TaskMix)

    def __post_init__(self):
        if not 0.0 <= self.min_t < 1.0:
            raise ValueError(f"process.min_t must lie in [0, 1); got {self.min_t}")
        if not 0 < self.isotropic_kappa_max <= KAPPA_MAX_LIMIT:
            raise ValueError(f"process.isotropic_kappa_max must lie in (0, {KAPPA_MAX_LIMIT:g}]; "
                             f"got {self.isotropic_kappa_max}")
        if self.so3_jump and self.rotation_path != "isotropic":
            raise ValueError("process.so3_jump needs process.rotation_path: isotropic "
                             "(flow and jump must generate the same marginals to superpose)")


class CoDesignProcess:
    """Paths, priors and corruption of the three components.

    ``translations``, ``rotations`` and ``sequence`` are the training paths;
    ``rotation_sampling_path`` is the path whose sampler step integrates rotations at
    sampling time (the geodesic path may sample on a faster, exponential-rate schedule
    than it was trained on, as in MultiFlow; otherwise it is ``rotations``).
    """

    def __init__(self, cfg: ProcessConfig):
        self.cfg = cfg
        self.translations: ConditionalPath = CondOTPath()
        self.rotations: ConditionalPath
        if cfg.rotation_path == "geodesic":
            self.rotations = GeodesicSO3Path()
            rate = cfg.rotation_sampling_rate
            self.rotation_sampling_path = GeodesicSO3Path(ExponentialRateScheduler(rate) if rate > 0
                                                          else LinearScheduler())
        else:
            self.rotations = IsotropicSO3Path(kappa_max=cfg.isotropic_kappa_max)
            self.rotation_sampling_path = self.rotations
        self.sequence: ConditionalPath = MixtureTokenPath(NUM_AMINO_ACIDS, "mask")

    # -- priors ------------------------------------------------------------------
    def sample_translation_prior(self, mask: torch.Tensor, generator=None) -> torch.Tensor:
        """Centred standard Gaussian CA positions ``[B, L, 3]`` (nm), zero at padding."""
        x = self.translations.prior((*mask.shape, 3), generator, device=mask.device)
        return center_positions(x, mask)

    def sample_rotation_prior(self, shape, generator=None, device=None) -> torch.Tensor:
        """Frames ``[*shape, 3, 3]`` from the rotation path's prior."""
        return self.rotations.prior(shape, generator, device=device)

    def sample_sequence_prior(self, shape, generator=None, device=None) -> torch.Tensor:
        """Residue types ``[*shape]`` from the sequence path's prior (all mask)."""
        return self.sequence.prior(shape, generator, device=device)

    # -- training corruption -------------------------------------------------------
    def sample_times(self, batch_size: int, generator=None):
        """Per-example ``(t_struct, t_seq, task)``; task 0 co-design, 1 folding, 2 inverse folding."""
        mix = self.cfg.task_mix
        probs = torch.tensor([mix.codesign, mix.folding, mix.inverse_folding])
        task = torch.multinomial(probs, batch_size, replacement=True, generator=generator)
        lo = self.cfg.min_t
        t_struct = lo + (1 - lo) * torch.rand(batch_size, generator=generator)
        t_seq = lo + (1 - lo) * torch.rand(batch_size, generator=generator)
        t_seq = torch.where(task == 1, torch.ones_like(t_seq), t_seq)
        t_struct = torch.where(task == 2, torch.ones_like(t_struct), t_struct)
        return t_struct, t_seq, task

    def corrupt(self, clean: FrameBatch, t_struct, t_seq, generator=None) -> dict:
        """Noisy state at the given times from clean frames (nm, see
        :func:`~multiflow_gm.protein.coordinates.frame_batch_from_collated`).

        Returns clean targets (``trans_1`` nm, ``rot_1``, ``aatype_1`` with unknown
        residues as the mask token) and noisy inputs (``trans_t``, ``rot_t``, ``aatype_t``).
        """
        mask = clean.residue_mask
        trans_1, rot_1 = clean.translations, clean.rotations
        trans_0 = self.sample_translation_prior(mask, generator)
        if self.cfg.noise_pairing != "none":
            trans_0 = pair_noise(trans_0, trans_1, mask, permute=self.cfg.noise_pairing == "ot")
        trans_t = self.translations.draw(trans_1, t_struct, generator, x0=trans_0).x_t * mask[..., None]
        rot_t = self._corrupt_rotations(rot_1, t_struct, generator)
        aatype_1 = model_tokens(clean.aatype)
        aatype_t = self.sequence.draw(aatype_1, t_seq, generator).x_t
        # Unknown residues carry no type: they stay masked and have no sequence loss.
        aatype_t = torch.where(aatype_1 == MASK, torch.full_like(aatype_t, MASK), aatype_t)
        return {"trans_1": trans_1, "rot_1": rot_1, "aatype_1": aatype_1, "trans_t": trans_t,
                "rot_t": rot_t, "aatype_t": aatype_t, "t_struct": t_struct, "t_seq": t_seq,
                "residue_mask": mask, "residue_index": clean.residue_index}

    def _corrupt_rotations(self, rot_1, t, generator):
        rot_0 = None
        # MultiFlow's IGSO3 training prior replaces the uniform start of a path that has one;
        # a path drawing r_t around r_1 directly has no start to replace.
        if self.cfg.rotation_train_prior == "igso3" and self.rotations.couples_endpoints:
            noise = so3.sample_igso3(rot_1.shape[:-2], self.cfg.igso3_sigma, generator=generator)
            rot_0 = rot_1 @ noise.to(rot_1.dtype)
        return self.rotations.draw(rot_1, t, generator, x0=rot_0).x_t

