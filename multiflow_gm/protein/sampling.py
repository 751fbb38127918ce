"""Sampling the co-design process with a trained network (the core's one loop).

Modes: ``codesign`` (structure and sequence from noise), ``fold`` (sequence given;
its time is fixed at 1), ``inverse-fold`` (backbone given; structure time fixed at 1).
The network runs with self-conditioning on its previous prediction; the last
step lands exactly on the final prediction for every component, with no mask left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch

from multiflow_gm.core import Component, JumpStep, simulate, time_grid
from multiflow_gm.errors import UserError
from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS, model_tokens
from multiflow_gm.protein.coordinates import center_positions, centred_translations_nm
from multiflow_gm.protein.frame_batch import FrameBatch
from multiflow_gm.protein.process import CoDesignProcess

MODES = ("codesign", "fold", "inverse-fold")


@dataclass
class SamplingConfig:
    num_steps: int = 200        # the time grid runs from the process's min_t to 1
    temperature: float = 1.0
    # Residue-type temperature when the backbone is given (inverse folding); None: ``temperature``.
    # Design from a fixed backbone is usually run colder than co-design (ProteinMPNN's default is 0.1).
    inverse_fold_temperature: Optional[float] = None
    eta: float = 0.0
    purity: bool = False
    # Feed the network its previous prediction. None: as the run was trained (its top-level
    # `self_condition`, resolved when a run config is loaded; on by default, as in training).
    self_condition: Optional[bool] = None
    so3_jump_weight: float = 0.0
    so3_jump_source: Literal["head", "plugin"] = "head"

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"sampling.num_steps must be >= 1; got {self.num_steps}")
        if not 0.0 <= self.so3_jump_weight <= 1.0:
            raise ValueError(f"sampling.so3_jump_weight must lie in [0, 1]; got {self.so3_jump_weight}")
        if self.temperature <= 0:
            raise ValueError(f"sampling.temperature must be > 0; got {self.temperature}")
        if self.inverse_fold_temperature is not None and self.inverse_fold_temperature <= 0:
            raise ValueError(f"sampling.inverse_fold_temperature must be > 0 or null; got {self.inverse_fold_temperature}")

    def temperature_for(self, mode: str) -> float:
        """Residue-type temperature of a sampling mode (``codesign``, ``fold`` or ``inverse-fold``)."""
        if mode == "inverse-fold" and self.inverse_fold_temperature is not None:
            return self.inverse_fold_temperature
        return self.temperature


def check_jump_support(network, process: CoDesignProcess, cfg: SamplingConfig) -> None:
    """Refuse an SO(3) jump weight the model cannot honour (never sample silently without it)."""
    if cfg.so3_jump_weight <= 0:
        return
    if not process.rotations.supports_jump:
        raise UserError(f"--so3-jump-weight {cfg.so3_jump_weight:g} needs a model trained on the isotropic "
                        "rotation path (process.rotation_path: isotropic); this model uses the "
                        f"{process.cfg.rotation_path} path, whose marginals no jump generates")
    if cfg.so3_jump_source == "head" and not network.cfg.so3_jump_head:
        raise UserError("an SO(3) jump with so3_jump_source 'head' needs a model trained with the jump head "
                        "(model.so3_jump_head: true); use --so3-jump-source plugin for the closed-form jump "
                        "of this isotropic-path model")


def _components(process: CoDesignProcess, cfg: SamplingConfig) -> dict[str, Component]:
    """Each component steps by its path's clean-sample step (the network predicts clean samples)."""
    rotation_kinds = {"flow": process.rotation_sampling_path.prediction_step()}
    weights = None
    if cfg.so3_jump_weight > 0:
        rotation_kinds["jump"] = JumpStep()
        weights = {"flow": 1.0 - cfg.so3_jump_weight, "jump": cfg.so3_jump_weight}
    return {
        "trans": Component({"flow": process.translations.prediction_step()}),
        "rot": Component(rotation_kinds, weights),
        "seq": Component({"ctmc": process.sequence.prediction_step(eta=cfg.eta, purity=cfg.purity)}),
    }


@torch.inference_mode()
def sample_batch(network, process: CoDesignProcess, cfg: SamplingConfig, num: int, length: int,
                 mode: str = "codesign", sequence: torch.Tensor | None = None,
                 backbone: tuple[torch.Tensor, torch.Tensor] | None = None,
                 generator: torch.Generator | None = None, device="cpu", progress=None) -> FrameBatch:
    """Draw ``num`` samples of ``length`` residues.

    ``sequence`` ``[length]`` (fold mode) or ``backbone = (rotations [L, 3, 3], translations [L, 3] Angstrom)``
    (inverse-fold mode) are copied to every sample. Returns the samples as a :class:`FrameBatch`
    ``[num, L]`` (translations in nm, centred; every residue valid); the Angstrom views come
    from :mod:`multiflow_gm.protein.coordinates`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if mode == "fold" and (sequence is None or sequence.shape != (length,)):
        raise ValueError("fold mode needs a sequence of the requested length")
    if mode == "inverse-fold" and backbone is None:
        raise ValueError("inverse-fold mode needs a backbone")
    check_jump_support(network, process, cfg)
    mask = torch.ones(num, length, dtype=torch.bool, device=device)
    residue_index = torch.arange(length, device=device).expand(num, length)
    if mode == "inverse-fold":
        rot0 = backbone[0].to(device, torch.float32).expand(num, length, 3, 3).clone()
        trans0 = centred_translations_nm(backbone[1].to(device, torch.float32).expand(num, length, 3), mask,
                                         process.cfg.translation_scale)
    else:
        trans0 = process.sample_translation_prior(mask, generator)
        rot0 = process.sample_rotation_prior((num, length), generator, device)
    if mode == "fold":
        seq0 = model_tokens(sequence.to(device)).expand(num, length).clone()
    else:
        seq0 = process.sample_sequence_prior((num, length), generator, device)
    grid = time_grid(cfg.num_steps, process.cfg.min_t, 1.0)
    fixed = torch.ones_like(grid)
    grids = {"trans": fixed if mode == "inverse-fold" else grid,
             "rot": fixed if mode == "inverse-fold" else grid,
             "seq": fixed if mode == "fold" else grid}
    previous = {}
    temperature = cfg.temperature_for(mode)

    def generator_fn(x, t):
        t_struct = t["trans"].to(device, torch.float32).expand(num)
        t_seq = t["seq"].to(device, torch.float32).expand(num)
        pred = network(aatype=x["seq"], rotations=x["rot"], translations=x["trans"], t_struct=t_struct,
                       t_seq=t_seq, residue_index=residue_index, residue_mask=mask,
                       sc_translations=previous.get("translations"), sc_probs=previous.get("probs"))
        probs = process.sequence.probs_from_logits(pred["logits"], temperature)
        if cfg.self_condition is not False:
            previous["translations"] = pred["translations"]
            previous["probs"] = torch.softmax(pred["logits"][..., :NUM_AMINO_ACIDS], -1)
        rot_params = {"flow": pred["rotations"]}
        if cfg.so3_jump_weight > 0:
            # The head's learned intensity, or (None) the closed form at the prediction.
            intensity = pred["jump_intensity"] if cfg.so3_jump_source == "head" else None
            rot_params["jump"] = process.rotations.prediction_jump(x["rot"], pred["rotations"], t["rot"], intensity)
        # Every parameter is a clean-sample prediction; the components' steps turn them into
        # velocities and rates by the paths' formulas.
        return {"trans": {"flow": center_positions(pred["translations"], mask)}, "rot": rot_params,
                "seq": {"ctmc": probs}}

    result = simulate(generator_fn, {"trans": trans0, "rot": rot0, "seq": seq0}, _components(process, cfg),
                      grids, generator=generator, progress=progress)
    state = result.state
    return FrameBatch(rotations=state["rot"], translations=state["trans"], aatype=state["seq"],
                      residue_index=residue_index, residue_mask=mask)

