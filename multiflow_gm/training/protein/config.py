"""Typed configuration of protein co-design training (``configs/protein/*.yaml``).

Each setting has one key; see :mod:`multiflow_gm.protein.run_config` for the keys training
and sampling share and the retired ones older files still carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from multiflow_gm.protein.losses import LossConfig
from multiflow_gm.protein.model.network import ModelConfig
from multiflow_gm.protein.process import ProcessConfig
from multiflow_gm.protein.run_config import migrate_run_config, resolve_self_condition
from multiflow_gm.protein.sampling import SamplingConfig
from multiflow_gm.protein.validation import ValidationConfig
from multiflow_gm.training.lr_schedule import warmup_cosine_scale


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # "cosine" holds lr from warm-up to decay_start, then follows a half cosine down to
    # lr * final_lr_fraction at trainer.max_steps. Steps are the run directory's optimiser steps:
    # a run started with init_from counts from 0, a resumed run continues its count.
    schedule: Literal["constant", "cosine"] = "constant"
    decay_start: int = 0
    final_lr_fraction: float = 0.1
    # Network parameter-name prefixes held fixed (e.g. [sequence_decoder]): they get no
    # gradient and no optimiser state, so a leg can settle one part without moving another.
    frozen: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0; got {self.lr}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"optim.schedule must be constant or cosine; got {self.schedule!r}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(f"optim.final_lr_fraction must lie in [0, 1]; got {self.final_lr_fraction}")
        if self.decay_start < 0:
            raise ValueError(f"optim.decay_start must be >= 0; got {self.decay_start}")

    def lr_at(self, step: int, max_steps: int) -> float:
        """Learning rate for optimiser step ``step`` (0-based) of a run of ``max_steps`` steps."""
        decay_end = max_steps if self.schedule == "cosine" else None
        return self.lr * warmup_cosine_scale(step, self.warmup_steps, self.decay_start, decay_end,
                                             self.final_lr_fraction)


@dataclass
class DataConfig:
    cache: Optional[str] = None             # preprocessed cache directory (or --data)
    squared_residue_budget: int = 500_000   # batch size ~ budget / L^2
    max_batch_size: int = 64
    min_length: int = 60
    max_length: Optional[int] = 384
    batching: Literal["same_length", "padded"] = "same_length"
    cluster_weighting: bool = False
    preload: bool = True
    num_workers: int = 0
    use_split: bool = True                  # train on the cache's train split when it has splits.csv
    # Keep only chains whose source file path contains one of these strings (e.g. [pdb_subset]).
    sources: Optional[list[str]] = None
    designed_sequence_fraction: float = 0.0  # chance of a ProteinMPNN-designed sequence (`distill`)
    # Designs in which one residue type exceeds this fraction of the chain are not drawn (1.0: all).
    designed_max_type_fraction: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.designed_sequence_fraction <= 1.0:
            raise ValueError("data.designed_sequence_fraction must lie in [0, 1]; "
                             f"got {self.designed_sequence_fraction}")
        if not 0.0 < self.designed_max_type_fraction <= 1.0:
            raise ValueError("data.designed_max_type_fraction must lie in (0, 1]; "
                             f"got {self.designed_max_type_fraction}")


@dataclass
class TrainerConfig:
    max_steps: int = 10_000
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "ddp_spawn"] = "auto"
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    threads: int = 0                        # torch intra-op threads on CPU; 0 = leave as is
    max_minutes: Optional[float] = None     # stop (with a checkpoint) after this wall time

    def __post_init__(self):
        if self.max_steps < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("trainer.max_steps, checkpoint_every and log_every must be >= 1")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    self_condition: bool = True
    # Exported weights (.safetensors) to start from instead of a random initialisation;
    # the architecture in `model` must match. Ignored when a run resumes.
    init_from: Optional[str] = None
    # Weights of the sequence decoder alone (scripts/pretrain_sequence_decoder.py), loaded
    # after init_from; needs model.sequence_decoder. Ignored when a run resumes.
    decoder_init_from: Optional[str] = None

    def __post_init__(self):
        if self.decoder_init_from and not self.model.sequence_decoder:
            raise ValueError("decoder_init_from needs model.sequence_decoder: true")
        if self.process.so3_jump != self.model.so3_jump_head:
            raise ValueError("process.so3_jump and model.so3_jump_head must agree")
        # Validation samples with this: null follows `self_condition`, true without it is an error.
        self.sampling.self_condition = resolve_self_condition(self.self_condition, self.sampling.self_condition)

    @staticmethod
    def migrate_retired_keys(config: dict) -> dict:
        """Older files' keys in their current places (see :func:`migrate_run_config`)."""
        return migrate_run_config(config)
