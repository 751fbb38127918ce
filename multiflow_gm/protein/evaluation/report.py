"""Writing the evaluation: ``metrics.json``, ``per_sample.csv``, ``report.md`` and ``plots/*.png``.

The Markdown report is rendered from the same dictionary that is saved as
``metrics.json`` (``REPORT_TABLE`` keys), so every number it shows is in the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from multiflow_gm.protein.evaluation.aggregate import REPORT_TABLE
from multiflow_gm.atomic_files import atomic_write_text

SCHEMA_VERSION = 1
STATUS_LABELS = {"mpnn": "ProteinMPNN (sequence-structure agreement)", "dssp": "DSSP",
                 "designability": "Designability (refolding)", "novelty": "Novelty"}
NOT_COMPUTED = "n/c"
PLOT_FILES = {
    "ss_composition": "plots/ss_composition.png",
    "rg_vs_length": "plots/rg_vs_length.png",
    "tm_heatmap": "plots/tm_heatmap.png",
    "gallery": "plots/gallery.png",
}


def to_json_ready(value):
    """NaN / inf -> None, numpy scalars and arrays -> Python, recursively."""
    if isinstance(value, dict):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_ready(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def metrics_document(run, timings: dict[str, float]) -> dict:
    """The ``metrics.json`` content of an :class:`~pipeline.EvaluationRun`."""
    reference = run.reference.summary() if run.reference is not None else None
    settings = run.settings
    return to_json_ready({
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "samples_dir": run.samples_dir,
        "primary_set": run.primary.label,
        "reference": {**run.reference_status, "summary": reference},
        "messages": run.messages,
        "skipped": [s.to_dict() for s in run.skipped],
        "not_computed": run.not_computed,
        "counts": run.counts(),
        "status": run.status,
        "settings": {"workers": settings.workers, "seed": settings.seed, "baselines": list(settings.baselines),
                     "baseline_count": settings.baseline_count, "novelty_top_k": settings.novelty.top_k,
                     "mpnn_num_orders": settings.mpnn_num_orders, "mpnn_threads": settings.mpnn_threads},
        "sets": {result.label: {"summary": result.summary} for result in run.sets},
        "report_table": [{"section": s, "key": k, "label": label} for s, k, label, _ in REPORT_TABLE],
        "plots": {name: rel for name, rel in PLOT_FILES.items()},
        "timings_s": timings,
    })


def per_sample_csv(run) -> str:
    """CSV text with one row per evaluated chain of every set (columns: union of keys)."""
    rows = [row for result in run.sets for row in result.rows]
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
    return text.getvalue()


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (file contents can hold '|' and newlines)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _format(value, fmt: str) -> str:
    return NOT_COMPUTED if value is None else fmt.format(value)


def render_markdown(document: dict) -> str:
    """Markdown report from a ``metrics.json`` document."""
    sets = list(document["sets"])
    reference = document["reference"]
    lines = ["# Protein evaluation report", ""]
    lines.append(f"- Samples: `{document['samples_dir']}`" if document["samples_dir"]
                 else f"- Samples: generated baseline `{document['primary_set']}`")
    primary = document["sets"][document["primary_set"]]["summary"]["overview"]
    lines.append(f"- Evaluated: {_format(primary['num_samples'], '{:.0f}')} chains; "
                 f"skipped inputs: {len(document['skipped'])}; per-chain metric values not computed: "
                 f"{len(document.get('not_computed', []))}")
    lines.append(f"- Reference: {reference['detail']}")
    for name, status in document["status"].items():
        lines.append(f"- {STATUS_LABELS.get(name, name)}: {status['detail']}")
    for message in document["messages"]:
        lines.append(f"- **Note:** {message}")
    lines += ["", f"Baselines are evaluated at the samples' lengths; `{NOT_COMPUTED}` = not computed. "
              "The native baseline stands for the reference set where a metric is not computed for the "
              "whole reference (DSSP, ProteinMPNN, diversity); its novelty leaves out each chain's own "
              "entry and sequence cluster.", ""]
    lines.append("| metric | " + " | ".join(sets) + " |")
    lines.append("|---|" + "---|" * len(sets))
    for section, key, label, fmt in REPORT_TABLE:
        cells = [_format(document["sets"][s]["summary"][section][key], fmt) for s in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if reference.get("summary"):
        ref = reference["summary"]
        fit = ref["rg_fit"]
        lines += ["", "## Reference set", "",
                  f"{ref['num_chains']} chains, lengths {ref['length_min']}-{ref['length_max']} "
                  f"(median {ref['length_median']:.0f}); P-SEA helix {ref['psea_helix_mean']:.3f}, "
                  f"strand {ref['psea_strand_mean']:.3f}, coil {ref['psea_coil_mean']:.3f}; "
                  f"Rg fit {fit['prefactor']:.3f} L^{fit['exponent']:.3f} A, {fit['coverage']:.0%} band "
                  f"x{fit['band_low']:.3f} to x{fit['band_high']:.3f}."]
    lines += ["", "## Plots", ""]
    titles = {"ss_composition": "Secondary-structure composition", "rg_vs_length": "Radius of gyration vs length",
              "tm_heatmap": "Pairwise TM-scores", "gallery": "CA traces"}
    for name, rel in document["plots"].items():
        lines += [f"### {titles[name]}", "", f"![{titles[name]}]({rel})", ""]
    if document["skipped"]:
        lines += ["## Skipped inputs", "", "| file | chain | reason | detail |", "|---|---|---|---|"]
        lines += [f"| `{s['source']}` | {s.get('chain', '')} | {s['reason']} | {_cell(s['detail'])} |"
                  for s in document["skipped"]]
        lines.append("")
    if document.get("not_computed"):
        lines += ["## Metrics not computed for a chain", "", "| set | sample | metric | reason |", "|---|---|---|---|"]
        lines += [f"| {r['set']} | {r['sample']} | {r['metric']} | {_cell(r['reason'])} |"
                  for r in document["not_computed"]]
        lines.append("")
    lines += ["## Timings (s)", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in sorted(document["timings_s"].items())]
    lines += ["", "Per-sample values: `per_sample.csv`; all numbers: `metrics.json`.", ""]
    return "\n".join(lines)


def _write_plots(run, out_dir: Path) -> dict[str, str]:
    """Each plot on its own: one that fails is noted in ``run.messages`` and the rest are drawn."""
    from multiflow_gm.protein.evaluation import plots

    primary = run.primary
    reference_ss = run.reference.ss.mean(axis=0) if run.reference is not None else None
    summaries = {result.label: result.summary for result in run.sets}
    matrix = primary.tm_matrix if primary.tm_matrix is not None else np.zeros((0, 0))
    names = primary.tm_names if primary.tm_names is not None else []
    drawers = {
        "ss_composition": lambda path: plots.ss_composition_bars(summaries, reference_ss, path),
        "rg_vs_length": lambda path: plots.rg_vs_length(run.sets, run.reference, path),
        "tm_heatmap": lambda path: plots.tm_heatmap(matrix, names, path, f"Pairwise TM-score ({primary.label})"),
        "gallery": lambda path: plots.ca_trace_gallery(
            [(c.name, c.ca) for c in primary.chains], primary.psea_states, path, primary.label),
    }
    written = {}
    for name, draw in drawers.items():
        try:
            written[name] = str(draw(out_dir / PLOT_FILES[name]))
        except Exception as err:  # a plot must not cost the report its numbers
            run.messages.append(f"plot {name} not drawn: {type(err).__name__}: {err}")
    return written


def write_outputs(run, out_dir: Path, timer) -> dict[str, str]:
    """Write plots, CSV, JSON and Markdown into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with timer("plots"):
        outputs = _write_plots(run, out_dir)
    outputs["per_sample_csv"] = str(atomic_write_text(out_dir / "per_sample.csv", per_sample_csv(run)))
    document = metrics_document(run, dict(timer.seconds))
    outputs["metrics_json"] = str(atomic_write_text(out_dir / "metrics.json",
                                                json.dumps(document, indent=1, allow_nan=False) + "\n"))
    outputs["report"] = str(atomic_write_text(out_dir / "report.md", render_markdown(document)))
    return outputs
