"""Lightning callback that validates the EMA weights on held-out chains every N steps.

Each validation appends one row to ``validation.csv`` in the run directory (written
atomically), logs the metrics as ``val/<name>`` and redraws ``validation_curve.png``.
The time it takes is logged too (``val/seconds``) so its share of training is measured.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import lightning as L

from multiflow_gm.atomic_files import atomic_write_bytes
from multiflow_gm.protein.validation import ValidationSet, validate
from multiflow_gm.training.ema_callback import EMACallback

VALIDATION_FILE = "validation.csv"
VALIDATION_PLOT = "validation_curve.png"
# The curves that say most about sample quality, in plotting order.
PLOTTED = ("pred_clash_t0.5", "pred_clash_t0.8", "pred_clash_t0.95", "codesign_clash", "pred_strand_t0.8",
           "codesign_dssp_strand", "codesign_strand_paired", "codesign_mpnn_nll", "invfold_ce", "inverse_fold_recovery", "fold_tm", "translation_t0.8", "aatype_t0.5")


def read_validation(path: str | Path) -> list[dict]:
    """Rows of ``validation.csv`` as dicts of floats (``step`` first); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def write_validation(path: Path, rows: list[dict]) -> None:
    columns = ["step"] + sorted({k for row in rows for k in row} - {"step"})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def plot_validation(rows: list[dict], out_png: Path) -> Path | None:
    """One panel per validation metric against training step; None without rows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in PLOTTED if any(n in row for row in rows)]
    if not rows or not names:
        return None
    cols = min(5, len(names))
    nrows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        points = [(row["step"], row[name]) for row in rows if name in row]
        ax.plot(*zip(*points), marker="o", ms=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())
    return out_png


class ValidationCallback(L.Callback):
    """Runs :func:`multiflow_gm.protein.validation.validate` on the EMA weights every N steps.

    ``ema`` is the run's :class:`~multiflow_gm.training.ema_callback.EMACallback`; it must come
    before this callback in the trainer's list so a step's validation sees that step's average.
    """

    def __init__(self, data: ValidationSet, out_dir: Path, ema: EMACallback):
        self.data, self.out_dir, self.ema = data, Path(out_dir), ema
        self.seconds = 0.0

    def on_train_start(self, trainer, pl_module):
        # A run that starts from exported weights is measured before its first step.
        if (pl_module.cfg.init_from and trainer.global_step == 0 and trainer.global_rank == 0
                and pl_module.cfg.validation.every_steps > 0
                and not read_validation(self.out_dir / VALIDATION_FILE)):
            self.run(pl_module, 0, [])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        every = pl_module.cfg.validation.every_steps
        step = trainer.global_step
        if every <= 0 or step == 0 or step % every or trainer.global_rank != 0:
            return
        rows = read_validation(self.out_dir / VALIDATION_FILE)
        if rows and rows[-1]["step"] >= step:  # already validated (a resumed run repeats no step)
            return
        self.run(pl_module, step, rows, log=True)

    def run(self, pl_module, step: int, rows: list[dict] | None = None, log: bool = False) -> dict:
        start = time.perf_counter()
        cfg = pl_module.cfg
        with self.ema.swapped_into(pl_module.network) as network:
            metrics = validate(network, pl_module.process, self.data, cfg.validation, cfg.loss, cfg.sampling)
        rows = read_validation(self.out_dir / VALIDATION_FILE) if rows is None else rows
        rows = [row for row in rows if row["step"] < step] + [{"step": float(step), **metrics}]
        write_validation(self.out_dir / VALIDATION_FILE, rows)
        plot_validation(rows, self.out_dir / VALIDATION_PLOT)
        for name, value in (metrics.items() if log else ()):
            pl_module.log(f"val/{name}", float(value), on_step=True, batch_size=1)
        self.seconds += time.perf_counter() - start
        return metrics
