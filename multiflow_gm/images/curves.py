"""Training curves of the image benchmark: held-out loss and distance of every EMA snapshot.

The trainer keeps the EMA weights every ``train.snapshot_every`` steps in
``checkpoints/snapshots/<network>_<step>.pt``. This module scores each snapshot once
(results are cached in ``curves.json``, so a rerun only scores new ones):

* the held-out loss: the training objective on a fixed set of held-out images with
  fixed times and noise, so successive snapshots see the same draws;
* the distance at ``eval.curve_nfe`` with ``eval.curve_samples`` images (the flow
  network with Euler, the jump network with Euler jumps, the two-head network as the
  alpha = 0.5 superposition), with its jackknife interval.

A curve has stopped improving when neither number has reached a new best (by more
than its tolerance) over the last ``patience`` snapshots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from multiflow_gm.atomic_files import atomic_save_figure, atomic_write_json
from multiflow_gm.core import CondOTPath, seeded_generator
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.images.datasets import ImageData, to_unit_range
from multiflow_gm.images.files import read_json_or_empty
from multiflow_gm.images.intervals import distance_interval
from multiflow_gm.images.metric import ImageMetric
from multiflow_gm.images.objective import training_losses
from multiflow_gm.images.sampling import model_spec, sample_images
from multiflow_gm.images.networks import load_snapshot, snapshot_files

CURVE_MODEL = {"flow": "flow", "jump": "jump", "flow_jump": "superposition"}
HELD_OUT_IMAGES = 500


@torch.no_grad()
def held_out_loss(net, config: ImageBenchConfig, data: ImageData, seed: int = 0) -> dict[str, float]:
    """The training objective on the first ``HELD_OUT_IMAGES`` held-out images, fixed draws."""
    generator = seeded_generator(seed)
    images = data.test[:HELD_OUT_IMAGES]
    images = to_unit_range(images) if images.dtype == torch.uint8 else images.float()
    was_training = net.training
    net.eval()
    try:
        totals: dict[str, float] = {}
        for chunk in images.split(250):
            losses = training_losses(net, CondOTPath(), chunk, generator, config.train.t_max,
                                     config.jump.loss_weight)
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value) * len(chunk) / len(images)
    finally:
        net.train(was_training)
    return totals


def score_snapshots(config: ImageBenchConfig, data: ImageData, metric: ImageMetric, out_dir: Path,
                    networks: list[str], log: Callable[[str], None] = print) -> dict:
    """Score every snapshot not yet in ``curves.json``; returns ``{network: [point, ...]}``."""
    out_dir = Path(out_dir)
    store = out_dir / "curves.json"
    key = {"metric": metric.label, "nfe": config.eval.curve_nfe, "samples": config.eval.curve_samples,
           "seed": config.sampling.seed}
    previous = read_json_or_empty(store)
    curves = previous.get("curves", {}) if previous.get("key") == key else {}
    for network in networks:
        points = {p["step"]: p for p in curves.get(network, [])}
        for step, path in snapshot_files(out_dir / "checkpoints" / "snapshots", network):
            if step in points:
                continue
            try:
                net, step = load_snapshot(config, network, data.image_shape, path)
            except ValueError as err:
                log(f"skipped {path.name}: {err}")
                continue
            spec = model_spec(CURVE_MODEL[network])
            result = sample_images(net, spec, config.eval.curve_samples, config.eval.curve_nfe, alpha=0.5,
                                   batch_size=config.sampling.batch_size, seed=config.sampling.seed)
            interval = distance_interval(metric.features(result.images).numpy(), metric.reference,
                                         config.eval.interval_level)
            point = {"step": step, "distance": interval.estimate, "interval": [interval.low, interval.high],
                     "held_out_loss": held_out_loss(net, config, data)}
            points[step] = point
            log(f"{network} step {step}: distance {interval.estimate:.1f} "
                f"[{interval.low:.1f}, {interval.high:.1f}], held-out loss {point['held_out_loss']['total']:.4f}")
            curves[network] = [points[s] for s in sorted(points)]
            atomic_write_json(store, {"key": key, "curves": curves})
        curves[network] = [points[s] for s in sorted(points)]
    atomic_write_json(store, {"key": key, "curves": curves})
    return curves


def stopped_improving(values: list[float], patience: int = 3, tolerance: float = 0.02) -> bool:
    """True when the last ``patience`` values hold no new best lower by more than ``tolerance``
    (relative) than the best before them."""
    if len(values) <= patience:
        return False
    best_before = min(values[:-patience])
    return min(values[-patience:]) > best_before * (1.0 - tolerance)


def curve_summary(curves: dict, patience: int = 3) -> dict:
    """Per network: best step and distance, last point, and whether both curves have flattened."""
    summary = {}
    for network, points in curves.items():
        if not points:
            continue
        distances = [p["distance"] for p in points]
        losses = [p["held_out_loss"]["total"] for p in points]
        best = int(np.argmin(distances))
        summary[network] = {
            "snapshots": len(points), "last_step": points[-1]["step"], "last_distance": distances[-1],
            "best_step": points[best]["step"], "best_distance": distances[best],
            "distance_flat": stopped_improving(distances, patience),
            "held_out_loss_flat": stopped_improving(losses, patience, tolerance=0.005),
        }
    return summary


def plot_curves(curves: dict, floor: float | None, path: Path, label: str) -> Path:
    """Distance (log scale, with intervals) and held-out loss against training steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_d, ax_l) = plt.subplots(1, 2, figsize=(11, 4))
    for network, points in curves.items():
        if not points:
            continue
        steps = [p["step"] for p in points]
        dist = np.array([p["distance"] for p in points])
        low = np.array([p["interval"][0] for p in points])
        high = np.array([p["interval"][1] for p in points])
        line, = ax_d.plot(steps, dist, marker="o", ms=3, label=f"{network} ({CURVE_MODEL[network]})")
        ax_d.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        ax_l.plot(steps, [p["held_out_loss"]["total"] for p in points], marker="o", ms=3, label=network)
    if floor is not None:
        ax_d.axhline(floor, color="k", ls="--", lw=1, label="held-out real images (floor)")
    ax_d.set_yscale("log")
    ax_d.set_xlabel("training step")
    ax_d.set_ylabel("distance (log)")
    ax_d.set_title(label, fontsize=8)
    ax_d.legend(fontsize=7)
    ax_l.set_xlabel("training step")
    ax_l.set_ylabel("held-out loss (fixed draws)")
    ax_l.legend(fontsize=7)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=110)


def run_curves(config: ImageBenchConfig, networks: list[str], out_dir: Path,
               log: Callable[[str], None] = print, device: str | torch.device = "cpu") -> dict:
    """Score new snapshots of ``networks``, write ``curves.json`` and ``curves.png``; returns the summary."""
    from multiflow_gm.images.datasets import load_dataset
    from multiflow_gm.images.metric import build_metric, floor_distance

    data = load_dataset(config.data)
    metric = build_metric(data, config, Path(out_dir) / "cache", log=log, device=device)
    floor = floor_distance(metric, data, config.eval.curve_samples, seed=config.sampling.seed)
    curves = score_snapshots(config, data, metric, out_dir, networks, log)
    summary = curve_summary(curves)
    store = Path(out_dir) / "curves.json"
    atomic_write_json(store, {**read_json_or_empty(store), "floor": floor, "summary": summary})
    label = f"{metric.label}\n{config.eval.curve_samples} images, NFE {config.eval.curve_nfe}"
    plot_curves(curves, floor, Path(out_dir) / "curves.png", label)
    for network, info in summary.items():
        log(f"{network}: {info['snapshots']} snapshots to step {info['last_step']}; best distance "
            f"{info['best_distance']:.1f} at step {info['best_step']} (floor {floor:.1f}); "
            f"distance {'flat' if info['distance_flat'] else 'still improving'}, held-out loss "
            f"{'flat' if info['held_out_loss_flat'] else 'still improving'}")
    return summary
