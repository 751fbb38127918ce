"""Training loop of the image benchmark's networks, with EMA and exact resume.

A plain PyTorch loop rather than Lightning: each step is one small CPU batch, and
the checkpoint (model, optimiser, EMA, random-generator state, step) is a plain
dict written atomically every ``checkpoint_seconds`` and at the end, loaded with
``weights_only=True``. Resuming continues the same random stream, so training
N steps at once or in pieces gives the same weights.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from multiflow_gm.core import CondOTPath, seeded_generator
from multiflow_gm.errors import UserError
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.images.datasets import BatchSampler, ImageData
from multiflow_gm.atomic_files import atomic_torch_save
from multiflow_gm.images.files import load_torch_file
from multiflow_gm.images.heads import ImageGeneratorNet
from multiflow_gm.images.networks import build_network, fingerprint, save_snapshot
from multiflow_gm.images.objective import training_losses
from multiflow_gm.training.ema import EMA
from multiflow_gm.training.lr_schedule import warmup_cosine_scale

FORMAT = "multiflow-gm/images-v1"
_SEED_OFFSETS = {"flow": 0, "jump": 1, "flow_jump": 2}


@dataclass
class TrainingSummary:
    network: str
    steps: int
    parameters: int
    seconds: float
    images_per_second: float | None
    recent_losses: dict = field(default_factory=dict)
    resumed_from: int = 0

    def to_dict(self) -> dict:
        return {"steps": self.steps, "parameters": self.parameters, "train_seconds": round(self.seconds, 1),
                "train_images_per_second": self.images_per_second, "recent_losses": self.recent_losses,
                "resumed_from": self.resumed_from}


class ImageTrainer:
    """Trains one network (``flow``, ``jump`` or ``flow_jump``) and keeps its EMA weights."""

    def __init__(self, config: ImageBenchConfig, network: str, data: ImageData, checkpoint: Path | None,
                 log: Callable[[str], None] = print, progress: bool = True, device: str | torch.device = "cpu"):
        self.config, self.network_name, self.data = config, network, data
        self.checkpoint, self.log, self.progress = checkpoint, log, progress
        self.device = torch.device(device)
        self.path = CondOTPath()
        seed = config.train.seed * 1000 + _SEED_OFFSETS[network]
        torch.manual_seed(seed)
        self.net = build_network(config, network, data.image_shape).to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.train.lr,
                                           weight_decay=config.train.weight_decay)
        self.ema = EMA(self.net, config.train.ema_decay)
        # Batches are drawn on the CPU; times and noise on the network's device (one stream on a CPU).
        self.generator = seeded_generator(seed)
        self.noise_generator = (self.generator if self.device.type == "cpu"
                                else seeded_generator(seed + 1, device=self.device))
        self.step, self.seconds, self.loss_history = 0, 0.0, []
        self.fingerprint = fingerprint(config, network)
        if checkpoint is not None and checkpoint.is_file():
            self._load(checkpoint)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def _load(self, path: Path) -> None:
        state = load_torch_file(path)
        if state.get("format") != FORMAT:
            raise UserError(f"{path} is not an image-benchmark checkpoint (format {state.get('format')!r})")
        if state["fingerprint"] != self.fingerprint:
            diff = _first_difference(state["fingerprint"], self.fingerprint)
            raise UserError(f"{path} was trained with other settings ({diff}); use another --out "
                            f"directory or delete the checkpoint")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.ema.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        if self.noise_generator is not self.generator and "noise_generator" in state:
            self.noise_generator.set_state(state["noise_generator"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])
        self.loss_history = [list(map(float, row)) for row in state["loss_history"]]

    def save(self) -> None:
        if self.checkpoint is None:
            return
        state = {
            "format": FORMAT, "fingerprint": self.fingerprint, "step": self.step, "seconds": self.seconds,
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict(), "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "loss_history": self.loss_history,
        }
        if self.noise_generator is not self.generator:
            state["noise_generator"] = self.noise_generator.get_state()
        atomic_torch_save(state, self.checkpoint)

    def save_snapshot(self) -> None:
        """The EMA weights at this step, for the training curve (``networks.load_snapshot`` reads them)."""
        if self.checkpoint is not None:
            save_snapshot(self.checkpoint.parent / "snapshots", self.network_name, self.step, self.fingerprint,
                          self.ema.shadow)

    def ema_network(self) -> ImageGeneratorNet:
        """A copy of the network holding the EMA weights, in eval mode (for sampling)."""
        net = copy.deepcopy(self.net)
        self.ema.copy_to(net)
        return net.eval()

    def _lr(self, step: int) -> float:
        cfg = self.config.train
        decay_end = cfg.decay_end if cfg.schedule == "cosine" else None
        return cfg.lr * warmup_cosine_scale(step, max(1, cfg.warmup_steps), cfg.decay_start, decay_end,
                                            cfg.final_lr_fraction)

    def train_to(self, total_steps: int) -> TrainingSummary:
        """Train until ``total_steps`` optimiser steps (nothing to do if already there)."""
        cfg = self.config.train
        start_step = self.step
        sampler = BatchSampler(self.data.train, cfg.batch_size, self.generator, self.config.data.horizontal_flip)
        step_times, window = [], {}
        last_save = time.monotonic()
        bar = None
        if self.progress and self.step < total_steps:
            from tqdm import tqdm
            bar = tqdm(total=total_steps, initial=self.step, desc=f"train {self.network_name}", leave=False)
        self.net.train()
        try:
            while self.step < total_steps:
                tic = time.perf_counter()
                for group in self.optimizer.param_groups:
                    group["lr"] = self._lr(self.step)
                batch = sampler.next().to(self.device, non_blocking=True)
                losses = training_losses(self.net, self.path, batch, self.noise_generator,
                                         cfg.t_max, self.config.jump.loss_weight)
                if not torch.isfinite(losses["total"]):
                    raise RuntimeError(f"{self.network_name}: non-finite loss at step {self.step} "
                                       f"({ {k: float(v) for k, v in losses.items()} }); the last "
                                       f"checkpoint is kept")
                self.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.ema.update(self.net)
                self.step += 1
                elapsed = time.perf_counter() - tic
                self.seconds += elapsed
                step_times.append(elapsed)
                for k, v in losses.items():
                    window.setdefault(k, []).append(float(v.detach()))
                if self.step % 100 == 0 or self.step == total_steps:
                    self._log_window(window)
                    window = {}
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['total'].item():.4f}")
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    self.save_snapshot()
                if time.monotonic() - last_save > cfg.checkpoint_seconds:
                    self.save()
                    last_save = time.monotonic()
        finally:
            if bar is not None:
                bar.close()
            if self.step > start_step:
                self.save()
        # The first steps include allocator warm-up; the median ignores them.
        ips = cfg.batch_size / statistics.median(step_times) if step_times else None
        recent = {k: v for k, v in zip(("total", "flow", "jump"), self.loss_history[-1][1:])} \
            if self.loss_history else {}
        return TrainingSummary(self.network_name, self.step, self.parameters, self.seconds, ips,
                               {k: v for k, v in recent.items() if not math.isnan(v)}, start_step)

    def _log_window(self, window: dict) -> None:
        if not window:
            return
        mean = {k: sum(v) / len(v) for k, v in window.items()}
        self.loss_history.append([float(self.step), mean["total"], mean.get("flow", math.nan),
                                  mean.get("jump", math.nan)])
        if not self.progress:
            parts = ", ".join(f"{k} {v:.4f}" for k, v in mean.items())
            self.log(f"{self.network_name} step {self.step}: {parts}")


def _first_difference(old, new, prefix="") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {old!r} then, {new!r} now"
