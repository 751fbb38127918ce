"""Training curves of the image benchmark: held-out loss and distance of every EMA snapshot.

The trainer keeps the EMA weights every ``train.snapshot_every`` steps in
``checkpoints/snapshots/<network>_<step>.pt``. This module scores each snapshot once
(results are cached in ``curves.json``, so a rerun only scores new ones):

* the held-out loss: the training objective on a fixed set of held-out images with
  fixed times and noise, so successive snapshots see the same draws;
* the distance at ``eval.curve_nfe`` with ``eval.curve_samples`` images (the flow
  network with Euler, the jump network with Euler jumps, the two-head network as the
  alpha = 0.5 superposition), with its jackknife interval.

A curve has stopped improving when neither number has reached a new best over the last
``patience`` snapshots. For the held-out loss a new best must beat the old one by a relative
tolerance. For the distance, whose sampling noise is larger than its late gains, the best of
the last snapshots must beat the best before them beyond the paired jackknife interval of their
difference (every snapshot draws its images from the same starting noise, and its features are
kept in ``curve_features/``); without those features the relative tolerance decides.
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
from multiflow_gm.images.intervals import Interval, difference_interval, distance_interval
from multiflow_gm.images.metric import ImageMetric, load_features, save_features
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
    if previous.get("key") != key:   # features of another key are stale
        for stale in features_dir(out_dir).glob("*.npz"):
            stale.unlink()
    for network in networks:
        points = {p["step"]: p for p in curves.get(network, [])}
        files = dict(snapshot_files(out_dir / "checkpoints" / "snapshots", network))
        for step, path in files.items():
            if step not in points:
                _score_snapshot(config, data, metric, out_dir, network, path, points, log)
                curves[network] = [points[s] for s in sorted(points)]
                atomic_write_json(store, {"key": key, "curves": curves})
        # Points scored before features were kept: rescore (same seed, same images) the few the
        # flatness test compares.
        for step in flatness_steps([points[s] for s in sorted(points)]):
            if step in files and not features_path(out_dir, network, step).is_file():
                _score_snapshot(config, data, metric, out_dir, network, files[step], points, log)
        curves[network] = [points[s] for s in sorted(points)]
    atomic_write_json(store, {"key": key, "curves": curves})
    return curves


def features_dir(out_dir: Path) -> Path:
    """Where the curve images' features are kept, one ``.npz`` per snapshot."""
    return Path(out_dir) / "curve_features"


def features_path(out_dir: Path, network: str, step: int) -> Path:
    """Metric features ``[curve_samples, D]`` of one snapshot's curve images."""
    return features_dir(out_dir) / f"{network}_{step:07d}.npz"


def _score_snapshot(config: ImageBenchConfig, data: ImageData, metric: ImageMetric, out_dir: Path,
                    network: str, path: Path, points: dict, log: Callable[[str], None]) -> None:
    """Sample, featurise and score one snapshot; stores its point in ``points`` and its features."""
    try:
        net, step = load_snapshot(config, network, data.image_shape, path)
    except ValueError as err:
        log(f"skipped {path.name}: {err}")
        return
    result = sample_images(net, model_spec(CURVE_MODEL[network]), config.eval.curve_samples,
                           config.eval.curve_nfe, alpha=0.5, batch_size=config.sampling.batch_size,
                           seed=config.sampling.seed)
    features = metric.features(result.images).numpy()
    save_features(features_path(out_dir, network, step), features)
    interval = distance_interval(features, metric.reference, config.eval.interval_level)
    point = {"step": step, "distance": interval.estimate, "interval": [interval.low, interval.high],
             "held_out_loss": held_out_loss(net, config, data)}
    points[step] = point
    log(f"{network} step {step}: distance {interval.estimate:.1f} "
        f"[{interval.low:.1f}, {interval.high:.1f}], held-out loss {point['held_out_loss']['total']:.4f}")


def stopped_improving(values: list[float], patience: int = 3, tolerance: float = 0.02) -> bool:
    """True when the last ``patience`` values hold no new best lower by more than ``tolerance``
    (relative) than the best before them."""
    if len(values) <= patience:
        return False
    best_before = min(values[:-patience])
    return min(values[-patience:]) > best_before * (1.0 - tolerance)


def flatness_steps(points: list[dict], patience: int = 3) -> list[int]:
    """Steps of the best snapshot before the last ``patience`` and the best among them (by
    distance); empty when there are too few points."""
    if len(points) <= patience:
        return []
    before, last = points[:-patience], points[-patience:]
    return [min(before, key=lambda p: p["distance"])["step"], min(last, key=lambda p: p["distance"])["step"]]


def late_gain(out_dir: Path, network: str, points: list[dict], reference, patience: int = 3,
              level: float = 0.95) -> Interval | None:
    """Distance of the best of the last ``patience`` snapshots minus the best before them, with
    its paired jackknife interval; None without both snapshots' features."""
    steps = flatness_steps(points, patience)
    paths = [features_path(out_dir, network, step) for step in steps]
    if not steps or reference is None or not all(p.is_file() for p in paths):
        return None
    before, last = (load_features(p) for p in paths)
    return difference_interval(last, before, reference, level)


def curve_summary(curves: dict, patience: int = 3, out_dir: Path | None = None, reference=None,
                  level: float = 0.95) -> dict:
    """Per network: best step and distance, last point, and whether both curves have flattened.

    With ``out_dir`` and the metric's ``reference``, the distance is flat unless its late gain
    (see :func:`late_gain`) is negative beyond its interval; otherwise the 2% tolerance decides.
    """
    summary = {}
    for network, points in curves.items():
        if not points:
            continue
        distances = [p["distance"] for p in points]
        losses = [p["held_out_loss"]["total"] for p in points]
        best = int(np.argmin(distances))
        gain = late_gain(out_dir, network, points, reference, patience, level) if out_dir else None
        summary[network] = {
            "snapshots": len(points), "last_step": points[-1]["step"], "last_distance": distances[-1],
            "best_step": points[best]["step"], "best_distance": distances[best],
            "distance_flat": gain.high >= 0.0 if gain is not None
            else stopped_improving(distances, patience),
            "distance_flat_rule": "paired interval" if gain is not None else "2% tolerance",
            "late_gain": None if gain is None else [gain.estimate, gain.low, gain.high],
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
    summary = curve_summary(curves, out_dir=Path(out_dir), reference=metric.reference,
                            level=config.eval.interval_level)
    store = Path(out_dir) / "curves.json"
    atomic_write_json(store, {**read_json_or_empty(store), "floor": floor, "summary": summary})
    label = f"{metric.label}\n{config.eval.curve_samples} images, NFE {config.eval.curve_nfe}"
    plot_curves(curves, floor, Path(out_dir) / "curves.png", label)
    for network, info in summary.items():
        log(f"{network}: {info['snapshots']} snapshots to step {info['last_step']}; best distance "
            f"{info['best_distance']:.1f} at step {info['best_step']} (floor {floor:.1f}); "
            f"distance {'flat' if info['distance_flat'] else 'still improving'} ({_gain_text(info)}), held-out loss "
            f"{'flat' if info['held_out_loss_flat'] else 'still improving'}")
    return summary


def _gain_text(info: dict) -> str:
    if info["late_gain"] is None:
        return info["distance_flat_rule"]
    estimate, low, high = info["late_gain"]
    return f"best of the last snapshots minus the best before: {estimate:+.1f} [{low:+.1f}, {high:+.1f}]"
