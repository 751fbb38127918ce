"""The image benchmark end to end: train (or resume) the networks, evaluate every (model, NFE)
cell against the training images, and write the table (JSON, Markdown) and sample grids.

Layout of the output directory::

    checkpoints/{flow,jump,flow_jump}.pt   training state (resumable)
    checkpoints/snapshots/                  EMA weights every ``train.snapshot_every`` steps
    cache/                                  metric classifier and reference statistics
    features/<row>_nfe<N>.{npz,json}        every cell: metric features of its images, and its record
                                            (a rerun reuses a cell whose network step and settings match)
    results.json, results.md                the table (updated after every cell)
    samples_<row>.png                       samples at the largest NFE

Every cell carries a jackknife interval over its generated set, and every row its paired
difference to the baseline row (``eval.baseline``, the flow row unless set) at the same NFE.

A rerun reuses every cell whose network step, metric and sampling settings are
unchanged (whatever rows the run before asked for), so an interrupted evaluation
resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from multiflow_gm.config import to_dict
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.atomic_files import atomic_write_json, atomic_write_text
from multiflow_gm.images.intervals import difference_interval, distance_interval
from multiflow_gm.images.metric import build_metric, floor_images_features, load_features, save_features
from multiflow_gm.images.report import console_table, markdown_table, plot_sweep, save_sample_grid
from multiflow_gm.images.sampling import ModelSpec, linear_alpha, model_spec, sample_images
from multiflow_gm.images.files import read_json_or_empty
from multiflow_gm.images.heads import ImageGeneratorNet


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@dataclass(frozen=True)
class Row:
    """One table row: a model and, for a superposition, its flow weight ``alpha``
    (a number, or ``(alpha at t=0, alpha at t=1)`` for the linear schedule)."""

    name: str
    model: str
    spec: ModelSpec
    alpha: float | tuple[float, float] | None = None

    @property
    def file_stem(self) -> str:
        return self.name.replace(" ", "_").replace("=", "")


def benchmark_rows(models: list[str], alphas: list[float] | None,
                   schedule: tuple[float, float]) -> list[Row]:
    """Rows of the table: one per model; a two-kind model gets one row per constant ``alpha``
    when ``alphas`` is given, else one row with the config's ``schedule``."""
    rows = []
    for name in models:
        spec = model_spec(name)
        if len(spec.kinds) < 2:
            rows.append(Row(name, name, spec))
        elif alphas is None:
            rows.append(Row(name, name, spec, tuple(schedule)))
        else:
            rows += [Row(f"{name} a={a:g}", name, spec, float(a)) for a in alphas]
    return rows


def _alpha_of(row: Row):
    if row.alpha is None:
        return 1.0
    if isinstance(row.alpha, tuple):
        return linear_alpha(*row.alpha)
    return linear_alpha(row.alpha, row.alpha)


def _eval_key(config: ImageBenchConfig, metric_label: str, num_samples: int, row: Row) -> dict:
    alpha = list(row.alpha) if isinstance(row.alpha, tuple) else row.alpha
    key = {"metric": metric_label, "num_samples": num_samples, "alpha": alpha, "seed": config.sampling.seed}
    if config.eval.compile:  # compiled kernels round differently: their cells are cached apart
        key["compiled"] = True
    return key


def evaluate_benchmark(config: ImageBenchConfig, rows: list[Row], nfes: list[int], data,
                       networks: dict[str, ImageGeneratorNet], steps: dict[str, int], out_dir: Path,
                       log: Callable[[str], None] = print, progress: bool = True,
                       device: str | torch.device = "cpu", extra: dict | None = None) -> dict:
    """Evaluate every (row, NFE) cell with its jackknife interval and its paired difference to
    the baseline row (``eval.baseline``), write the outputs and return the results dict.

    ``networks``: each network by name (``flow``, ``jump``, ``flow_jump``) holding the weights
    to sample with (the EMA weights); ``steps``: its training step; ``extra``: more fields
    for the results (e.g. training summaries).
    """
    out_dir = Path(out_dir)
    tqdm_progress = _tqdm_factory() if progress else None
    if config.eval.compile:
        for net in networks.values():
            net.compile()  # in place: the samplers still see the network's heads and bins
    metric = build_metric(data, config, out_dir / "cache", progress=tqdm_progress, log=log, device=device)
    num_samples = min(config.eval.num_samples, len(data.test))
    floor_features = floor_images_features(metric, data, num_samples, seed=config.sampling.seed)
    floor = distance_interval(floor_features, metric.reference, config.eval.interval_level)
    results = {
        "dataset": data.name, "data": data.describe(), "train_images": len(data.train),
        "metric": metric.describe(), "num_samples": num_samples, "floor": floor.estimate,
        "floor_interval": [floor.low, floor.high], "interval_level": config.eval.interval_level,
        "nfe": list(nfes), "alpha": list(config.sampling.alpha), "models": {}, **(extra or {}),
        "config": to_dict(config), "torch_threads": torch.get_num_threads(), "device": str(device),
        "baseline": config.eval.baseline,
    }
    features = {}
    for row in rows:
        step = _network_step(row.spec, steps)
        key = _eval_key(config, metric.label, num_samples, row)
        results["models"][row.name] = {"model": row.model, "network": row.spec.network,
                                       "kinds": list(row.spec.kinds), "method": row.spec.method,
                                       "alpha": key["alpha"], "description": row.spec.description,
                                       "network_step": step, "cells": {}}
        for nfe in nfes:
            grid = out_dir / f"samples_{row.file_stem}.png"
            stem = f"{row.file_stem}_nfe{nfe}"  # alpha's dot: no Path.with_suffix here
            feature_file, record_file = out_dir / "features" / f"{stem}.npz", out_dir / "features" / f"{stem}.json"
            cell = read_json_or_empty(record_file)
            needs_grid = nfe == max(nfes) and not grid.is_file()
            if (cell and cell.get("eval_key") == key and cell.get("network_step") == step and not needs_grid
                    and feature_file.is_file()):
                results["models"][row.name]["cells"][str(nfe)] = cell
                features[row.name, nfe] = load_features(feature_file)
                continue
            cell, features[row.name, nfe] = _evaluate_cell(
                row, networks, step, metric, nfe, num_samples, config, key,
                grid if nfe == max(nfes) else None, log, tqdm_progress)
            save_features(feature_file, features[row.name, nfe])
            atomic_write_json(record_file, cell)
            results["models"][row.name]["cells"][str(nfe)] = cell
            results["load_average"] = _load_average()
            _write(results, out_dir)
    _compare_with_baseline(results, features, metric, config)
    results["load_average"] = _load_average()
    _write(results, out_dir)
    log("\n" + console_table(results))
    return results


def _compare_with_baseline(results: dict, features: dict, metric, config: ImageBenchConfig) -> None:
    """Paired jackknife interval of ``distance(row) - distance(baseline)`` at each NFE (all rows
    start image ``i`` from the same noise, so the pairs share it)."""
    baseline = config.eval.baseline
    if baseline not in results["models"]:
        return
    for name, model in results["models"].items():
        if name == baseline:
            continue
        for nfe, cell in model["cells"].items():
            diff = difference_interval(features[name, int(nfe)], features[baseline, int(nfe)], metric.reference,
                                       config.eval.interval_level)
            cell["minus_baseline"] = diff.to_dict()


def _network_step(spec, steps: dict[str, int]) -> int | list[int]:
    """Training step of the model's network (a list, one per network, for two networks)."""
    found = [steps[network] for network in spec.networks]
    return found[0] if len(found) == 1 else found


def _evaluate_cell(row: Row, networks, step, metric, nfe, num_samples, config, key, grid_path, log, progress):
    spec = row.spec
    nets = {kind: networks[network] for kind, network in spec.sources.items()}
    bar = (lambda r: progress(r, desc=f"{row.name} NFE {nfe}")) if progress else None
    result = sample_images(nets, spec, num_samples, nfe, alpha=_alpha_of(row),
                           batch_size=config.sampling.batch_size, seed=config.sampling.seed, progress=bar)
    feats = metric.features(result.images).numpy()
    interval = distance_interval(feats, metric.reference, config.eval.interval_level)
    log(f"{row.name} NFE {nfe}: {interval.estimate:.3f} [{interval.low:.2f}, {interval.high:.2f}] "
        f"({result.evaluations} evaluations, {result.steps} steps, {result.seconds:.0f} s)")
    if grid_path is not None:
        count = min(config.eval.grid_images, len(result.images))
        save_sample_grid(result.images[:count].cpu(), grid_path,
                         title=f"{row.name}, NFE {result.evaluations}, step {step}")
    cell = {"distance": interval.estimate, "interval": [interval.low, interval.high],
            "nfe_used": result.evaluations, "network_calls": result.network_calls,
            "steps": result.steps, "method": spec.method, "sampling_seconds": round(result.seconds, 2),
            "network_step": step, "eval_key": key, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    return cell, feats


def _write(results: dict, out_dir: Path) -> None:
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "results.md", markdown_table(results))
    plot_sweep(results, out_dir / "alpha_sweep.png")


def _tqdm_factory():
    from tqdm import tqdm

    def wrap(iterable, desc=None):
        return tqdm(iterable, desc=desc, leave=False)
    return wrap
