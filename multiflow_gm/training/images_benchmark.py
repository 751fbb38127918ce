"""The image benchmark end to end: train (or resume) the networks, evaluate every (model, NFE)
cell against the training images, and write the table (JSON, Markdown) and sample grids.

Layout of the output directory::

    checkpoints/{flow,jump,flow_jump}.pt   training state (resumable)
    cache/                                  metric classifier and reference statistics
    results.json, results.md                the table (updated after every cell)
    samples_<model>.png                     samples at the largest NFE

A rerun reuses every cell whose network step, metric and sampling settings are
unchanged, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

import torch

from multiflow_gm.config import to_dict
from multiflow_gm.errors import UserError
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.images.datasets import load_dataset
from multiflow_gm.atomic_files import atomic_write_json, atomic_write_text
from multiflow_gm.images.metric import build_metric, floor_distance
from multiflow_gm.images.report import console_table, markdown_table, save_sample_grid
from multiflow_gm.images.sampling import linear_alpha, model_spec, sample_images
from multiflow_gm.training.images_trainer import ImageTrainer

NETWORK_ORDER = ("flow", "jump", "flow_jump")


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _eval_key(config: ImageBenchConfig, metric_label: str, num_samples: int) -> dict:
    s = config.sampling
    return {"metric": metric_label, "num_samples": num_samples, "alpha": list(s.alpha), "seed": s.seed}


def _previous_results(path: Path) -> dict:
    if not path.is_file():
        return {}
    import json
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_benchmark(config: ImageBenchConfig, models: list[str], nfes: list[int], out_dir: Path,
                  log: Callable[[str], None] = print, progress: bool = True,
                  device: str | torch.device = "cpu") -> dict:
    """Train what is missing, evaluate every cell, write the outputs; returns the results dict."""
    if not models or not nfes:
        raise UserError("give at least one model and one NFE")
    specs = {name: model_spec(name) for name in models}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(config.data)
    log(data.describe())
    alpha = linear_alpha(*config.sampling.alpha)

    trainers, summaries = {}, {}
    for network in (n for n in NETWORK_ORDER if any(n in s.networks for s in specs.values())):
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

    tqdm_progress = _tqdm_factory() if progress else None
    metric = build_metric(data, config, out_dir / "cache", progress=tqdm_progress, log=log, device=device)
    num_samples = min(config.eval.num_samples, len(data.test))
    floor = floor_distance(metric, data, num_samples, seed=config.sampling.seed)
    key = _eval_key(config, metric.label, num_samples)
    previous = _previous_results(out_dir / "results.json")
    results = {
        "dataset": data.name, "data": data.describe(), "train_images": len(data.train),
        "metric": metric.describe(), "num_samples": num_samples, "floor": floor,
        "nfe": list(nfes), "alpha": list(config.sampling.alpha), "models": {},
        "networks": {n: s.to_dict() for n, s in summaries.items()},
        "config": to_dict(config), "torch_threads": torch.get_num_threads(), "device": str(device),
    }
    for name, spec in specs.items():
        old = previous.get("models", {}).get(name, {})
        step = _network_step(spec, trainers)
        results["models"][name] = {"network": spec.network, "kinds": list(spec.kinds), "method": spec.method,
                                   "description": spec.description, "network_step": step, "cells": {}}
        for nfe in nfes:
            cell = old.get("cells", {}).get(str(nfe))
            grid = out_dir / f"samples_{name}.png"
            needs_grid = nfe == max(nfes) and not grid.is_file()
            if cell and cell.get("eval_key") == key and cell.get("network_step") == step and not needs_grid:
                results["models"][name]["cells"][str(nfe)] = cell
                continue
            results["models"][name]["cells"][str(nfe)] = _evaluate_cell(
                name, spec, trainers, metric, nfe, num_samples, alpha, config, key,
                grid if nfe == max(nfes) else None, log, tqdm_progress)
            results["load_average"] = _load_average()
            _write(results, out_dir)
    results["load_average"] = _load_average()
    _write(results, out_dir)
    log("\n" + console_table(results))
    return results


def _network_step(spec, trainers) -> int | list[int]:
    """Training step of the model's network (a list, one per network, for two networks)."""
    steps = [trainers[network].step for network in spec.networks]
    return steps[0] if len(steps) == 1 else steps


def _evaluate_cell(name, spec, trainers, metric, nfe, num_samples, alpha, config, key, grid_path, log, progress):
    nets = {kind: trainers[network].net for kind, network in spec.sources.items()}
    step = _network_step(spec, trainers)
    with contextlib.ExitStack() as stack:
        for network in spec.networks:  # sample with every network's EMA weights
            stack.enter_context(trainers[network].ema.swapped_into(trainers[network].net))
        bar = (lambda r: progress(r, desc=f"{name} NFE {nfe}")) if progress else None
        result = sample_images(nets, spec, num_samples, nfe, alpha=alpha,
                               batch_size=config.sampling.batch_size, seed=config.sampling.seed, progress=bar)
    distance = metric.distance(result.images)
    log(f"{name} NFE {nfe}: {distance:.3f} ({result.evaluations} evaluations, {result.steps} steps, "
        f"{result.seconds:.0f} s)")
    if grid_path is not None:
        count = min(config.eval.grid_images, len(result.images))
        save_sample_grid(result.images[:count].cpu(), grid_path,
                         title=f"{name}, NFE {result.evaluations}, step {step}")
    return {"distance": distance, "nfe_used": result.evaluations, "network_calls": result.network_calls,
            "steps": result.steps, "method": spec.method, "sampling_seconds": round(result.seconds, 2),
            "network_step": step, "eval_key": key, "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def _write(results: dict, out_dir: Path) -> None:
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "results.md", markdown_table(results))


def _tqdm_factory():
    from tqdm import tqdm

    def wrap(iterable, desc=None):
        return tqdm(iterable, desc=desc, leave=False)
    return wrap
