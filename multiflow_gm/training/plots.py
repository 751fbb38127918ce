"""Loss curves from Lightning's CSV log."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from multiflow_gm.atomic_files import atomic_save_figure


def read_metrics(csv_path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` from a Lightning ``metrics.csv``."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(csv_path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                number = float(value)
                if math.isfinite(number):
                    series.setdefault(key, []).append((step, number))
    return series


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_loss_curves(csv_path: str | Path, out_png: str | Path, prefix: str = "train/",
                     names: tuple[str, ...] = ("total", "translation", "rotation", "aatype", "auxiliary",
                                               "so3_jump")) -> Path | None:
    """One panel per loss component (raw and smoothed), saved as PNG; None if nothing logged."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not Path(csv_path).is_file():
        return None
    series = read_metrics(csv_path)
    present = [n for n in names if f"{prefix}{n}" in series]
    if not present:
        return None
    fig, axes = plt.subplots(1, len(present), figsize=(3.6 * len(present), 3.2), squeeze=False)
    for ax, name in zip(axes[0], present):
        steps, values = zip(*series[f"{prefix}{name}"])
        window = max(1, len(values) // 50)
        ax.plot(steps, values, lw=0.5, alpha=0.35, color="tab:blue")
        ax.plot(steps, _smooth(list(values), window), lw=1.5, color="tab:blue")
        ax.set_title(name)
        ax.set_xlabel("step")
        if min(values) > 0:
            ax.set_yscale("log")
    fig.tight_layout()
    return atomic_save_figure(fig, out_png, dpi=120)
