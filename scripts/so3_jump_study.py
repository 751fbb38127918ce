"""SO(3) jump study: does superposing the rotation jump with the flow raise co-design diversity?

Samples co-designs from one isotropic-path model with a jump head at several jump weights
(and with the closed-form plug-in jump), evaluates each set with ``multiflow-gm evaluate``
and tabulates diversity, novelty and quality per setting:

    python scripts/so3_jump_study.py run --model runs/study2/isotropic_jump/model_ema.safetensors
    python scripts/so3_jump_study.py table            # results/so3_jump/{table.md,table.json,diversity_vs_quality.png}

Every setting draws the same lengths (60-128) and the same seeds (two by default), so the
rows differ only in the jump. ``run`` skips settings whose report exists (reruns resume).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multiflow_gm.atomic_files import atomic_write_bytes  # noqa: E402

# name -> (jump weight, source); weight 0 is the flow alone.
SETTINGS = {"flow": (0.0, "head"), "jump_0.1": (0.1, "head"), "jump_0.3": (0.3, "head"),
            "jump_0.5": (0.5, "head"), "plugin_0.3": (0.3, "plugin")}
LENGTHS = (60, 70, 80, 90, 100, 110, 120, 128)
COLUMNS = (("diversity", "cluster_fraction", "clusters@TM0.5", "{:.2f}"),
           ("diversity", "pairwise_tm_mean", "pairwise TM", "{:.3f}"),
           ("novelty", "max_tm_mean", "max TM to train", "{:.3f}"),
           ("geometry", "clash_residue_fraction", "clash", "{:.3f}"),
           ("geometry", "ca_ca_outside_fraction", "CA-CA out", "{:.3f}"),
           ("secondary_structure", "dssp_strand", "DSSP E", "{:.3f}"),
           ("secondary_structure", "dssp_helix", "DSSP H", "{:.3f}"),
           ("mpnn", "mpnn_nll_mean", "MPNN NLL", "{:.2f}"),
           ("sequence", "aa_entropy_mean", "seq entropy", "{:.2f}"))


def _run(command: list[str]) -> None:
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def sample_setting(args, name: str) -> Path:
    """Samples of one setting, all seeds gathered in one directory (file names carry the seed)."""
    weight, source = SETTINGS[name]
    merged = args.out / name / "samples"
    if merged.is_dir() and len(list(merged.glob("*.pdb"))) == len(args.lengths) * args.num * len(args.seeds):
        return merged
    for seed in args.seeds:
        seed_dir = args.out / name / f"seed{seed}"
        _run([sys.executable, "-m", "multiflow_gm.cli.main", "sample", "--ckpt", str(args.model),
              "--lengths", *map(str, args.lengths), "--num", str(args.num), "--seed", str(seed),
              *(["--steps", str(args.steps)] if args.steps else []),
              "--so3-jump-weight", str(weight), "--so3-jump-source", source, "--threads", str(args.threads),
              "--out", str(seed_dir), "--no-gallery", "--no-progress"])
    tmp = merged.with_name("samples.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for seed in args.seeds:
        for pdb in sorted((args.out / name / f"seed{seed}" / "samples").glob("*.pdb")):
            shutil.copy(pdb, tmp / f"s{seed}_{pdb.name}")
    shutil.rmtree(merged, ignore_errors=True)
    tmp.rename(merged)
    return merged


def run(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"model": str(args.model), "lengths": args.lengths, "num_per_length_and_seed": args.num,
                "seeds": args.seeds, "steps": args.steps or "the model's default"}
    atomic_write_bytes(args.out / "settings.json", (json.dumps(settings, indent=1) + "\n").encode())
    for name in args.settings or SETTINGS:
        report = args.out / name / "report"
        if (report / "metrics.json").is_file():
            continue
        samples = sample_setting(args, name)
        _run([sys.executable, "-m", "multiflow_gm.cli.main", "evaluate", str(samples), "--reference",
              str(args.reference), "--out", str(report), "--workers", str(args.workers), "--compare", "none",
              "--mpnn-threads", "1", "--no-progress"])


def collect(out: Path) -> list[dict]:
    rows = []
    for name, (weight, source) in SETTINGS.items():
        metrics = out / name / "report" / "metrics.json"
        if not metrics.is_file():
            continue
        summary = json.loads(metrics.read_text())["sets"]["samples"]["summary"]
        seconds = [json.loads((out / name / d / "summary.json").read_text()).get("seconds_this_run")
                   for d in sorted(p.name for p in (out / name).glob("seed*"))]
        rows.append({"setting": name, "weight": weight, "source": source,
                     "num_samples": summary["overview"]["num_samples"],
                     "sampling_seconds": sum(s for s in seconds if s),
                     **{label: summary[section][key] for section, key, label, _ in COLUMNS}})
    return rows


def render(rows: list[dict], settings: dict) -> str:
    header = ["setting", "jump weight", "source", "samples"] + [label for _, _, label, _ in COLUMNS]
    lengths = settings.get("lengths", LENGTHS)
    lines = [f"SO(3) jump study on `{settings.get('model')}`: co-designs at lengths {min(lengths)}-{max(lengths)} "
             f"({settings.get('num_per_length_and_seed')} per length and seed, seeds {settings.get('seeds')}, "
             f"{settings.get('steps')} steps), the same for every setting. Diversity: fraction of samples that "
             "are their own cluster at TM 0.5, and mean pairwise TM (lower is more diverse); novelty: mean "
             "max TM to the training chains. Regenerate: `python scripts/so3_jump_study.py run --model MODEL "
             "--steps 100` then `python scripts/so3_jump_study.py table`.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["setting"], f"{row['weight']:g}", row["source"], str(int(row["num_samples"]))]
        cells += [fmt.format(row[label]) if row[label] is not None else "n/a" for _, _, label, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, quality in zip(axes, ("clash", "MPNN NLL")):
        for row in rows:
            ax.scatter(row[quality], row["pairwise TM"], s=50)
            ax.annotate(row["setting"], (row[quality], row["pairwise TM"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_xlabel(f"{quality} (lower is better)")
        ax.set_ylabel("mean pairwise TM (lower is more diverse)")
    fig.suptitle("SO(3) jump weight: diversity vs quality")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run", help="sample and evaluate every setting (resumes)")
    run_parser.add_argument("--model", type=Path, required=True, help="isotropic-path export with a jump head")
    run_parser.add_argument("--reference", type=Path, default=ROOT / "cache" / "all")
    run_parser.add_argument("--out", type=Path, default=ROOT / "runs" / "so3_jump_study")
    run_parser.add_argument("--num", type=int, default=4, help="samples per length and seed")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    run_parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    run_parser.add_argument("--steps", type=int, default=None, help="time steps (default: the model's)")
    run_parser.add_argument("--threads", type=int, default=1)
    run_parser.add_argument("--workers", type=int, default=1, help="TM-align workers of evaluate")
    run_parser.add_argument("--settings", nargs="*", choices=sorted(SETTINGS))
    table = sub.add_parser("table", help="write results/so3_jump/")
    table.add_argument("--out", type=Path, default=ROOT / "runs" / "so3_jump_study")
    args = parser.parse_args(argv)
    if args.action == "run":
        run(args)
        return 0
    rows = collect(args.out)
    results = ROOT / "results" / "so3_jump"
    results.mkdir(parents=True, exist_ok=True)
    settings_path = args.out / "settings.json"
    text = render(rows, json.loads(settings_path.read_text()) if settings_path.is_file() else {})
    atomic_write_bytes(results / "table.md", text.encode())
    atomic_write_bytes(results / "table.json", (json.dumps(rows, indent=1) + "\n").encode())
    if rows:
        plot(rows, results / "diversity_vs_quality.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
