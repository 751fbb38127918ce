"""Files of the held-out benchmark: benchmark.json, benchmark.md, per_chain.csv, benchmark.png.

Every file is written atomically. Values that were not computed (ProteinMPNN absent,
a task not run) appear as ``null`` in JSON and "not computed" in the table and CSV;
no number is ever filled in for them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_save_figure, atomic_write_json, atomic_write_text
from multiflow_gm.protein.evaluation.heldout import TM_FOLDED

NOT_COMPUTED = "not computed"
CSV_COLUMNS = ("name", "length", "fold_tm", "fold_tm_best", "fold_rmsd", "fold_rmsd_best", "recovery",
               "recovery_best", "mpnn_recovery", "mpnn_recovery_best", "mpnn_native_nll", "fold_seconds",
               "design_seconds", "native_sequence", "source")
MPNN_COLUMNS = ("mpnn_recovery", "mpnn_recovery_best", "mpnn_native_nll")
# (summary key of our model, summary key of ProteinMPNN or None, label, format)
SUMMARY_TABLE = (
    ("fold_tm_mean", None, "folding: TM-score to native, mean", "{:.3f}"),
    ("fold_tm_median", None, "folding: TM-score to native, median", "{:.3f}"),
    (f"fold_tm_above_{TM_FOLDED}", None, f"folding: chains with TM > {TM_FOLDED}", "{:.3f}"),
    ("fold_tm_best_mean", None, "folding: best-of-K TM-score, mean", "{:.3f}"),
    ("fold_rmsd_mean", None, "folding: CA RMSD after superposition, mean (A)", "{:.2f}"),
    ("fold_rmsd_median", None, "folding: CA RMSD after superposition, median (A)", "{:.2f}"),
    ("recovery_mean", "mpnn_recovery_mean", "inverse folding: sequence recovery, mean", "{:.3f}"),
    ("recovery_median", "mpnn_recovery_median", "inverse folding: sequence recovery, median", "{:.3f}"),
    ("recovery_best_mean", "mpnn_recovery_best_mean", "inverse folding: best-of-K recovery, mean", "{:.3f}"),
    (None, "mpnn_native_nll_mean", "ProteinMPNN NLL of the native sequence (nats/res)", "{:.3f}"),
)


def finite_or_none(value):
    """NaN / inf -> None, recursively, so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def _cell(value, fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_COMPUTED
    return fmt.format(value) if isinstance(value, float) else str(value)


def write_benchmark_files(out: Path, document: dict) -> dict[str, Path]:
    """Write all four files from ``document``.

    Keys: settings, summary, rows, skipped, notes (optional), mpnn_status, timings.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": atomic_write_json(out / "benchmark.json", finite_or_none(document)),
             "csv": atomic_write_text(out / "per_chain.csv", per_chain_csv(document)),
             "markdown": atomic_write_text(out / "benchmark.md", markdown_report(document))}
    paths["plot"] = benchmark_plot(document, out / "benchmark.png")
    return paths


def per_chain_csv(document: dict) -> str:
    summary = document["summary"]
    mpnn_missing = "recovery_mean" in summary and summary.get("mpnn_recovery_mean") is None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in document["rows"]:
        cells = []
        for column in CSV_COLUMNS:
            value = row.get(column)
            if column in MPNN_COLUMNS and mpnn_missing:
                cells.append(NOT_COMPUTED)
            elif isinstance(value, float):
                cells.append("" if not math.isfinite(value) else f"{value:.4f}")
            else:
                cells.append("" if value is None else value)
        writer.writerow(cells)
    return text.getvalue()


def markdown_report(document: dict) -> str:
    settings, summary = document["settings"], document["summary"]
    lines = ["# Held-out folding and inverse-folding benchmark", "",
             f"- model: `{settings['model']}`", f"- targets: {settings['targets']}",
             f"- tasks: {', '.join(settings['tasks'])}; {settings['num_steps']} sampling steps, "
             f"temperature {settings['temperature']} (inverse folding "
             f"{settings.get('inverse_fold_temperature', settings['temperature'])}), seed {settings['seed']}",
             f"- designs per backbone: {settings['num_designs']}; structures per sequence: "
             f"{settings['num_structures']}",
             f"- ProteinMPNN anchor: {document['mpnn_status']}",
             f"- chains: {summary['chains']} benchmarked, {len(document['skipped'])} input(s) skipped; "
             f"{document['timings']['total_seconds']:.0f} s in all", "",
             "| metric | this model | ProteinMPNN |", "|---|---|---|"]
    for ours, theirs, label, fmt in SUMMARY_TABLE:
        if ours is not None and ours not in summary:
            continue  # a task that was not run
        if ours is None and "recovery_mean" not in summary:
            continue
        lines.append(f"| {label} | {_cell(summary.get(ours), fmt) if ours else '-'} | "
                     f"{_cell(summary.get(theirs), fmt) if theirs else '-'} |")
    # Per-chain columns of the tasks that were run: (header, row key, format).
    columns = [("chain", "name", "{}"), ("length", "length", "{}")]
    if "fold_tm_mean" in summary:
        columns += [("fold TM", "fold_tm", "{:.3f}"), ("fold RMSD (A)", "fold_rmsd", "{:.2f}")]
    if "recovery_mean" in summary:
        columns += [("recovery", "recovery", "{:.3f}"), ("best recovery", "recovery_best", "{:.3f}"),
                    ("ProteinMPNN recovery", "mpnn_recovery", "{:.3f}"),
                    ("ProteinMPNN native NLL", "mpnn_native_nll", "{:.3f}")]
    lines += ["", "## Per chain", "", "| " + " | ".join(c[0] for c in columns) + " |",
              "|" + "---|" * len(columns)]
    for row in document["rows"]:
        lines.append("| " + " | ".join(_cell(row.get(key), fmt) for _, key, fmt in columns) + " |")
    for title, key in (("Skipped inputs", "skipped"), ("Notes (chains used without some residues)", "notes")):
        if document.get(key):
            lines += ["", f"## {title}", "", "| source | chain | reason | detail |", "|---|---|---|---|"]
            for item in document[key]:
                lines.append(f"| {item['source']} | {item['chain'] or '-'} | {item['reason']} | {item['detail']} |")
    return "\n".join(lines) + "\n"


def _column(rows: Sequence[dict], key: str) -> np.ndarray:
    """``[len(rows)]`` float values of ``key``, NaN where absent."""
    return np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=np.float64)


def benchmark_plot(document: dict, path: Path) -> Path:
    """Left: recovery per chain, this model against ProteinMPNN; right: histogram of fold TM-scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = document["rows"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 4.0))
    ours, theirs = _column(rows, "recovery"), _column(rows, "mpnn_recovery")
    if np.isfinite(ours).any() and np.isfinite(theirs).any():
        left.scatter(theirs, ours, s=18, color="#2ca02c")
        left.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        left.set_xlabel("ProteinMPNN recovery (T = 0.1)")
        left.set_ylabel("this model's recovery")
        left.set_xlim(0, 1)
        left.set_ylim(0, 1)
    elif np.isfinite(ours).any():
        left.hist(ours[np.isfinite(ours)], bins=np.linspace(0, 1, 21), color="#2ca02c")
        left.set_xlabel("this model's recovery (ProteinMPNN not computed)")
        left.set_ylabel("chains")
    else:
        left.text(0.5, 0.5, "inverse folding not run", ha="center", va="center", transform=left.transAxes)
    left.set_title("Inverse folding: sequence recovery per chain")
    tms = _column(rows, "fold_tm")
    if np.isfinite(tms).any():
        right.hist(tms[np.isfinite(tms)], bins=np.linspace(0, 1, 21), color="#1f77b4")
        right.axvline(TM_FOLDED, color="grey", linestyle="--", linewidth=0.8)
        right.set_xlabel("TM-score to the native (normalised by native length)")
        right.set_ylabel("chains")
    else:
        right.text(0.5, 0.5, "folding not run", ha="center", va="center", transform=right.transAxes)
    right.set_title("Folding: TM-score per chain")
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=110)
