"""Ship a trained run as the default model: weights into the package plus a model card.

Copies the run's EMA weights to ``multiflow_gm/assets/codesign_small.safetensors``
(checked to be under 25 MB), and writes ``multiflow_gm/assets/MODEL_CARD.md`` and
``results/default_model/`` (evaluation table, plots) from an evaluation report of
the model's samples. It also scores the comparisons the evaluation does not make
on its own: ProteinMPNN NLL of random sequences on the *same* backbones as the
samples, and the composition divergence of the uniform distribution.

    python scripts/export_default_model.py --run RUN_DIR --samples SAMPLES_DIR \
        --report REPORT_DIR --reference CACHE_DIR
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "multiflow_gm" / "assets" / "codesign_small.safetensors"
CARD = REPO / "multiflow_gm" / "assets" / "MODEL_CARD.md"
RESULTS = REPO / "results" / "default_model"
MAX_BYTES = 25 * 1024 * 1024


def random_sequence_nll(samples_dir: Path, reference_composition: np.ndarray, seed: int = 0) -> dict:
    """ProteinMPNN NLL of the samples' own sequences vs random ones on the same backbones."""
    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer
    from multiflow_gm.protein.evaluation.samples import load_sample_directory
    from multiflow_gm.protein.alphabet import AA_ORDER

    chains, _ = load_sample_directory(samples_dir)
    rng = np.random.default_rng(seed)
    backbones = [c.atoms for c in chains]
    own = [c.sequence for c in chains]
    uniform = ["".join(rng.choice(list(AA_ORDER), len(c))) for c in chains]
    composition = ["".join(rng.choice(list(AA_ORDER), len(c), p=reference_composition)) for c in chains]
    scorer = ProteinMPNNScorer(num_orders=1)
    out = {}
    for label, seqs in (("co-designed", own), ("random uniform", uniform), ("random, reference composition", composition)):
        scores = scorer.score(backbones, seqs)
        out[label] = float(np.nanmean([s["mpnn_nll"] for s in scores]))
    return out


def composition_check(samples_dir: Path, reference_composition: np.ndarray) -> dict:
    from multiflow_gm.protein.evaluation.samples import load_sample_directory
    from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS
    from multiflow_gm.protein.evaluation.sequence_metrics import composition, jensen_shannon

    chains, _ = load_sample_directory(samples_dir)
    samples = composition([c.sequence for c in chains])
    uniform = np.full(NUM_AMINO_ACIDS, 1 / NUM_AMINO_ACIDS)
    return {"js_samples_to_reference": jensen_shannon(samples, reference_composition),
            "js_uniform_to_reference": jensen_shannon(uniform, reference_composition)}


def checkpoint_summary(ckpt_path: Path) -> dict:
    """Steps, batches and training wall time recorded in a Lightning checkpoint (interrupted runs)."""
    import torch

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    timer = next((v for k, v in ckpt.get("callbacks", {}).items() if k.startswith("Timer")), {})
    shadow = ckpt["multiflow_gm"]["ema"]["shadow"]
    return {"steps": ckpt.get("global_step"), "batches_consumed": ckpt["multiflow_gm"]["batches_consumed"],
            "seconds": timer.get("time_elapsed", {}).get("train", 0.0),
            "parameters": int(sum(t.numel() for t in shadow.values())), "checkpoint": str(ckpt_path)}


BEFORE_TABLE = REPO / "results" / "default_model_v1" / "evaluation_table.md"


def table_column(markdown: str, column: str = "samples") -> dict[str, float]:
    """``{metric label: value}`` of one column of an evaluation report's markdown table."""
    rows = [line.strip().strip("|").split("|") for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    index = header.index(column)
    values = {}
    for cells in rows[2:]:
        try:
            values[cells[0].strip()] = float(cells[index])
        except (ValueError, IndexError):
            continue
    return values


# Targets for the default model, 64 samples at lengths 60-128:
# (label, how to read it from a table column, test).
TARGETS = (
    ("residues in a CA clash < 3 A: under 2%", lambda v: v["residues in a CA clash (fraction)"], lambda x: x < 0.02),
    ("CA-CA bonds outside 3.6-4.0 A: under 3%", lambda v: v["CA-CA bonds outside 3.6-4.0 A"], lambda x: x < 0.03),
    ("DSSP strand at least 12%", lambda v: v["strand fraction (DSSP)"], lambda x: x >= 0.12),
    ("DSSP helix + strand at least 55%", lambda v: v["helix fraction (DSSP)"] + v["strand fraction (DSSP)"],
     lambda x: x >= 0.55),
    ("ProteinMPNN NLL at most 2.3 nats/residue", lambda v: v["ProteinMPNN NLL of the sequence (nats/res)"],
     lambda x: x <= 2.3),
    ("... with sequence entropy at least 2.3 nats", lambda v: v["sequence entropy (nats; max 3.00)"],
     lambda x: x >= 2.3),
    ("ProteinMPNN recovery at least 0.25", lambda v: v["ProteinMPNN recovery of the sequence"], lambda x: x >= 0.25),
    ("clusters at TM 0.5 at least 50% of samples", lambda v: v["clusters (TM 0.5) / samples"], lambda x: x >= 0.5),
    ("under 10% of samples with TM > 0.9 to a training chain", lambda v: v["max TM to reference > 0.9"],
     lambda x: x < 0.1),
)
HELDOUT_TARGETS = (
    ("held-out inverse-folding recovery at least 30%", "recovery_mean", lambda x: x >= 0.30),
    ("... ProteinMPNN's recovery on the same backbones (anchor)", "mpnn_recovery_mean", lambda x: True),
    ("held-out folding TM-score at least 0.4 (mean)", "fold_tm_mean", lambda x: x >= 0.4),
)


def target_rows(after: dict, befores: list[dict | None], heldout: dict | None = None,
                heldout_befores: list[dict | None] = ()) -> list[tuple[str, list[str], str, bool]]:
    """(target, [value of each earlier model], after, met) rows; '-' where one was not measured."""
    rows = []
    for label, read, test in TARGETS:
        value = read(after)
        olds = [f"{read(before):.3f}" if before else "-" for before in befores]
        rows.append((label, olds, f"{value:.3f}", bool(test(value))))
    for label, key, test in HELDOUT_TARGETS:
        olds = [f"{hb[key]:.3f}" if hb and hb.get(key) is not None else "-" for hb in heldout_befores]
        olds += ["-"] * (len(befores) - len(olds))
        if heldout is None or heldout.get(key) is None:
            rows.append((label, olds, "not measured", False))
            continue
        rows.append((label, olds, f"{heldout[key]:.3f}", bool(test(heldout[key]))))
    return rows


def targets_markdown(rows, before_labels: list[str]) -> str:
    header = ["target", *before_labels, "after", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {label} | {' | '.join(olds)}{' | ' if olds else ''}{new} | {'yes' if ok else '**no**'} |"
              for label, olds, new, ok in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="training run directory (config, summary, loss curve); without "
                                                 "it, --model's own config is read and the loss curve is kept")
    parser.add_argument("--samples", type=Path, required=True, help="the model's samples (sample --out DIR)/samples")
    parser.add_argument("--report", type=Path, required=True, help="evaluate --out of those samples")
    parser.add_argument("--reference", type=Path, required=True, help="reference cache used for the report")
    parser.add_argument("--heldout", type=Path, help="benchmark.json of `multiflow-gm benchmark` on the test split")
    parser.add_argument("--before", action="append", default=None, metavar="LABEL=DIR",
                        help="an earlier model's results folder (evaluation_table.md, heldout.json) for a "
                             "before column; repeatable (default: v1=results/default_model_v1)")
    parser.add_argument("--history", action="append", default=None, metavar="TEXT",
                        help="a line of the card's training history, in order (replaces the 'Started from' and "
                             "'Sequences' lines read from the run's config, which a continued run leaves incomplete)")
    parser.add_argument("--checkpoint", type=Path, help="export this training checkpoint instead of the run's final "
                                                        "model_ema.safetensors")
    parser.add_argument("--model", type=Path, help="ship this export (e.g. with new sampling defaults from "
                                                   "scripts/set_sampling_defaults.py) instead of the run's own")
    args = parser.parse_args()
    if args.run is None and (args.model is None or args.checkpoint is not None):
        parser.error("--run is needed unless --model names the export to ship (without --checkpoint)")

    from multiflow_gm.atomic_files import atomic_write_bytes, atomic_write_text
    from multiflow_gm.protein.evaluation.reference import ReferenceSet

    weights = args.model or args.run / "model_ema.safetensors"
    if args.checkpoint is not None:
        from multiflow_gm.protein.model_file import export_from_checkpoint
        weights = export_from_checkpoint(args.checkpoint, args.run / "model_ema_from_checkpoint.safetensors")
    if weights.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{weights} is {weights.stat().st_size / 1e6:.1f} MB, over the 25 MB limit")
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(ASSET, weights.read_bytes())
    metrics = json.loads((args.report / "metrics.json").read_text())
    reference = ReferenceSet.from_cache(args.reference)
    extra = {"mpnn_nll_same_backbones": random_sequence_nll(args.samples, reference.composition),
             "composition": composition_check(args.samples, reference.composition)}
    if args.run is not None and (args.run / "summary.json").is_file():
        run_summary = json.loads((args.run / "summary.json").read_text())
    elif args.checkpoint is not None:
        run_summary = checkpoint_summary(args.checkpoint)
    else:
        run_summary = {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in ("gallery.png", "ss_composition.png", "rg_vs_length.png", "tm_heatmap.png"):
        source = args.report / "plots" / name
        if source.is_file():
            shutil.copyfile(source, RESULTS / name)
    if args.run is not None:  # without it (a changed export of an earlier run) the curve stays
        copy_loss_curve(args.run)
    table = (args.report / "report.md").read_text().split("| metric |", 1)[1].split("\n\n", 1)[0]
    heldout = _benchmark_summary(args.heldout)
    labels, befores, heldout_befores = [], [], []
    for item in args.before or [f"v1={BEFORE_TABLE.parent}"]:
        label, _, folder = item.partition("=")
        table_path = Path(folder) / "evaluation_table.md"
        labels.append(f"before ({label})")
        befores.append(table_column(table_path.read_text()) if table_path.is_file() else None)
        heldout_path = Path(folder) / "heldout.json"
        heldout_befores.append(_benchmark_summary(heldout_path) if heldout_path.is_file() else None)
    targets = targets_markdown(target_rows(table_column("| metric |" + table), befores, heldout, heldout_befores),
                               labels)
    if heldout is not None:
        atomic_write_text(RESULTS / "heldout.json", json.dumps(heldout, indent=2) + "\n")
    atomic_write_text(RESULTS / "targets.md", targets + "\n")
    atomic_write_text(RESULTS / "extra_checks.json", json.dumps(extra, indent=2))
    atomic_write_text(RESULTS / "evaluation_table.md", "| metric |" + table + "\n")
    atomic_write_text(CARD, render_card(args, metrics, extra, run_summary, "| metric |" + table, targets))
    print(f"wrote {ASSET} ({ASSET.stat().st_size / 1e6:.1f} MB), {CARD} and {RESULTS}")


def _benchmark_summary(path: Path | None) -> dict | None:
    if path is None:
        return None
    document = json.loads(Path(path).read_text())
    return document.get("summary", document)


def heldout_note(path: Path | None) -> str:
    """One sentence on how the held-out rows were measured (empty without a benchmark)."""
    if path is None:
        return ""
    settings = json.loads(Path(path).read_text()).get("settings", {})
    temperature = settings.get("inverse_fold_temperature", settings.get("temperature"))
    return (f" Held-out rows: `multiflow-gm benchmark` on {settings.get('targets', 'held-out chains')}, "
            f"{settings.get('num_steps')} steps, inverse folding at temperature {temperature:g} "
            f"({settings.get('num_designs')} design per backbone).")


def decoder_note(cfg) -> str:
    """The config line's mention of the sequence decoder, when the model has one."""
    if not cfg.model.sequence_decoder:
        return ""
    return (f", plus a structure-conditioned sequence decoder of {cfg.model.decoder_layers} layers, width "
            f"{cfg.model.decoder_hidden}, {cfg.model.decoder_knn} neighbours, whose logits add to the trunk's")


def history_lines(cfg, history: list[str] | None) -> list[str]:
    """What the model started from and which sequences it saw: ``--history`` lines when given
    (a continued run's config records only its last leg), else read from the run's config."""
    if history:
        return [f"- {line}" for line in history]
    lines = [f"- Started from: `{cfg.init_from}`." if cfg.init_from else "- Started from a random initialisation."]
    if cfg.data.designed_sequence_fraction:
        lines.append(f"- Sequences: a ProteinMPNN-designed sequence (`multiflow-gm distill`) with probability "
                     f"{cfg.data.designed_sequence_fraction:g}, else the native one.")
    else:
        lines.append("- Sequences: the native ones.")
    return lines


def copy_loss_curve(run: Path) -> None:
    """The run's loss-curve figure into the results, drawn from its metrics log when it has none."""
    if (run / "loss_curve.png").is_file():
        shutil.copyfile(run / "loss_curve.png", RESULTS / "loss_curve.png")
        return
    from multiflow_gm.training.plots import plot_loss_curves

    plot_loss_curves(run / "logs" / "metrics.csv", RESULTS / "loss_curve.png")


def run_lines(run_summary: dict, cfg) -> list[str]:
    """The card's step and wall-time lines of the last training leg (none without its run)."""
    if not run_summary:
        return []
    return [f"- Steps: {run_summary.get('steps', 'see summary')} optimiser steps "
            f"({run_summary.get('batches_consumed', '?')} batches, {run_summary.get('skipped_batches', 0)} skipped).",
            f"- Wall time: {run_summary.get('seconds', 0) / 3600:.2f} h on {platform.processor() or 'x86_64'} CPU, "
            f"2 cores, shared with other jobs ({cfg.trainer.threads} torch threads)."]


def parameter_count(path: Path) -> int:
    from multiflow_gm.protein.model_file import read_model_file

    return sum(t.numel() for t in read_model_file(path)[0].values())


def export_config(path: Path):
    """The training config stored in an export's metadata."""
    from multiflow_gm.config import from_dict, migrate
    from multiflow_gm.protein.model_file import read_model_file
    from multiflow_gm.training.protein.config import TrainConfig

    return from_dict(TrainConfig, migrate(TrainConfig, read_model_file(path)[1]))


def render_card(args, metrics, extra, run_summary, table, targets) -> str:
    from multiflow_gm.config import load_config
    from multiflow_gm.training.protein.config import TrainConfig

    from multiflow_gm.protein.model_file import load_codesign

    cfg = load_config(TrainConfig, args.run / "config.yaml") if args.run is not None else export_config(ASSET)
    sampling = load_codesign(ASSET)[2].sampling
    nll = extra["mpnn_nll_same_backbones"]
    comp = extra["composition"]
    lines = [
        "# Model card: multiflow-gm co-design, small",
        "",
        "Backbone (SE(3) frames) and sequence co-design by Generator Matching: CondOT flow on CA",
        "positions, geodesic SO(3) flow on frames, masking CTMC on residue types, with separate",
        "structure and sequence times (co-design 80%, folding 10%, inverse folding 10%).",
        "",
        "## Training",
        "",
        "- Data: `../shared/data/pdb_subset` and `../shared/data/cath_domains` preprocessed with "
        "`configs/data/segments.yaml` (unbroken segments of broken chains kept), split by sequence cluster "
        "(`multiflow-gm split`, 3% validation, 3% test, never trained on); the train split's chains of "
        f"{cfg.data.min_length}-{cfg.data.max_length} residues.",
        f"- Config: `configs/protein/small.yaml` (network c_s {cfg.model.c_s}, c_z {cfg.model.c_z}, "
        f"{cfg.model.num_blocks} IPA blocks{decoder_note(cfg)}).",
        *history_lines(cfg, args.history),
        *run_lines(run_summary, cfg),
        f"- Parameters: {run_summary.get('parameters') or parameter_count(ASSET)}; weights: EMA (decay "
        f"{cfg.optim.ema_decay}).",
        "",
        "## Evaluation",
        "",
        "`multiflow-gm evaluate` of 64 co-designed samples at lengths 60-128 with the model's default "
        f"sampling settings ({sampling.num_steps} steps, temperature {sampling.temperature:g}, purity "
        f"{'on' if sampling.purity else 'off'}), against the native reference and a random-walk baseline:",
        "",
        table,
        "",
        "Targets of the protein-quality work, for the earlier defaults (v1 is kept as "
        "`codesign_small_v1.safetensors`) and this model." + heldout_note(args.heldout),
        "",
        targets,
        "",
        "Extra checks (scripts/export_default_model.py):",
        "",
        f"- ProteinMPNN NLL on the samples' own backbones: co-designed {nll['co-designed']:.3f}, random uniform "
        f"{nll['random uniform']:.3f}, random with reference composition {nll['random, reference composition']:.3f} "
        "nats/residue.",
        f"- Amino-acid composition JS divergence to the reference: samples {comp['js_samples_to_reference']:.4f}, "
        f"uniform distribution {comp['js_uniform_to_reference']:.4f}.",
        "",
        "Plots: `results/default_model/` (gallery, secondary structure, Rg vs length, TM heatmap, loss curve).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
