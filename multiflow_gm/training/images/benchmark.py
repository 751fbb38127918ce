"""The image benchmark end to end: train (or resume) the networks a table needs, then hand
their EMA weights to the images package's evaluation."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import torch

from multiflow_gm.errors import ConfigError, UserError
from multiflow_gm.images.benchmark import benchmark_rows, evaluate_benchmark
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.images.datasets import load_dataset
from multiflow_gm.images.networks import NETWORK_ORDER
from multiflow_gm.images.sampling import MODELS
from multiflow_gm.training.images.trainer import ImageTrainer
from multiflow_gm.training.run_lock import exclusive_run_dir


def run_benchmark(config: ImageBenchConfig, models: list[str], nfes: list[int], out_dir: Path,
                  log: Callable[[str], None] = print, progress: bool = True,
                  device: str | torch.device = "cpu", train_only: bool = False,
                  alphas: list[float] | None = None) -> dict:
    """Train what is missing, then evaluate every (row, NFE) cell; returns the results dict
    (with ``train_only``: stop after training and return the training summaries)."""
    if not models or not nfes:
        raise UserError("give at least one model and one NFE")
    if config.eval.baseline not in MODELS:
        raise ConfigError(f"eval.baseline must be one of {list(MODELS)}; got {config.eval.baseline!r}")
    rows = benchmark_rows(models, alphas, config.sampling.alpha)
    networks = [n for n in NETWORK_ORDER if any(n in r.spec.networks for r in rows)]
    with ExitStack() as locks:
        # Training locks only its networks' checkpoints, so one process per network can train
        # side by side; an evaluation writes the tables too, so it also holds the directory.
        if not train_only:
            locks.enter_context(exclusive_run_dir(out_dir))
        for network in networks:
            locks.enter_context(exclusive_run_dir(out_dir, f".lock-{network}"))
        return _train_and_evaluate(config, networks, rows, nfes, Path(out_dir), log, progress, device, train_only)


def _train_and_evaluate(config: ImageBenchConfig, networks: list[str], rows, nfes: list[int], out_dir: Path,
                        log, progress: bool, device, train_only: bool) -> dict:
    data = load_dataset(config.data)
    log(data.describe())
    trainers, summaries = {}, {}
    for network in networks:
        trainer = ImageTrainer(config, network, data, out_dir / "checkpoints" / f"{network}.pt", log, progress,
                               device)
        if trainer.step:
            log(f"{network}: loaded checkpoint at step {trainer.step}")
        summary = trainer.train_to(config.train.steps)
        if trainer.step > config.train.steps:
            log(f"{network}: the checkpoint has {trainer.step} steps, more than --train-steps "
                f"{config.train.steps}; evaluating it as it is")
        log(f"{network}: {summary.parameters:,} parameters, {summary.steps} steps"
            + (f", {summary.images_per_second:.1f} training images/s" if summary.images_per_second else ""))
        trainers[network], summaries[network] = trainer, summary
    trained = {n: s.to_dict() for n, s in summaries.items()}
    if train_only:
        return {"networks": trained}
    return evaluate_benchmark(config, rows, nfes, data, {n: t.ema_network() for n, t in trainers.items()},
                              {n: t.step for n, t in trainers.items()}, out_dir, log, progress, device,
                              extra={"networks": trained})
