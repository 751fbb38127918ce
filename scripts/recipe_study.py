"""Recipe study: train each arm of configs/protein/recipe_study.yaml on one budget and tabulate
its validation outcomes.

    python scripts/recipe_study.py run ARM [ARM ...] --data cache/all   # train (resumes a killed arm)
    python scripts/recipe_study.py evaluate [ARM ...] --samples 8       # same outcome check for all
    python scripts/recipe_study.py table                                # results/recipe_study/
    python scripts/recipe_study.py --study configs/protein/recipe_study_round2.yaml run ...  # another study

Every arm is the study's base config plus its overrides, with the same data, seed,
validation chains and step budget; each trains with the thread count of the study
file. ``evaluate`` measures each arm's final EMA export (and the starting weights) with one
validation code path, seed and sample count, so every row of the table is comparable;
the table uses those measurements where present and the arm's last validation row otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multiflow_gm.atomic_files import atomic_write_bytes  # noqa: E402
from multiflow_gm.training.protein.validation_callback import read_validation  # noqa: E402

STUDY = ROOT / "configs" / "protein" / "recipe_study.yaml"
COLUMNS = (("pred_clash_t0.25", "clash@0.25", "{:.3f}"), ("pred_clash_t0.5", "clash@0.5", "{:.3f}"), ("pred_clash_t0.8", "clash@0.8", "{:.3f}"),
           ("pred_clash_t0.95", "clash@0.95", "{:.3f}"), ("pred_strand_t0.5", "E@0.5", "{:.3f}"),
           ("pred_strand_t0.8", "E@0.8", "{:.3f}"), ("ca_rmse_A_t0.8", "CA RMSE@0.8 (A)", "{:.2f}"),
           ("aatype_t0.5", "seq CE@0.5", "{:.3f}"), ("invfold_ce", "inv-fold CE", "{:.3f}"),
           ("invfold_argmax_recovery", "inv-fold argmax", "{:.3f}"), ("codesign_clash", "co-design clash", "{:.3f}"),
           ("codesign_ca_ca_outside", "CA-CA out", "{:.3f}"), ("codesign_dssp_strand", "DSSP E", "{:.3f}"),
           ("codesign_dssp_helix", "DSSP H", "{:.3f}"), ("codesign_mpnn_nll", "MPNN NLL", "{:.2f}"), ("codesign_mpnn_recovery", "MPNN rec", "{:.3f}"),
           ("codesign_seq_entropy", "seq entropy", "{:.2f}"), ("inverse_fold_recovery", "inv-fold rec", "{:.3f}"),
           ("fold_tm", "fold TM", "{:.3f}"))


def load_study(path: Path = STUDY) -> dict:
    study = yaml.safe_load(path.read_text())
    for key in ("base_config", "common", "arms", "runs_dir"):
        if key not in study:
            raise SystemExit(f"{path}: missing key {key!r}")
    study.setdefault("results_dir", "results/recipe_study")
    study["path"] = path
    return study


def arm_command(study: dict, name: str, data: str) -> list[str]:
    if name not in study["arms"]:
        raise SystemExit(f"unknown arm {name!r}; arms: {', '.join(study['arms'])}")
    arm = study["arms"][name]
    out = ROOT / study["runs_dir"] / name
    overrides = [*study["common"], *arm.get("overrides", [])]
    command = [sys.executable, "-m", "multiflow_gm.cli.main", "train", "--config", str(ROOT / study["base_config"]),
               "--data", data, "--out", str(out), *(f"--set={item}" for item in overrides)]
    if (out / "checkpoints" / "last.ckpt").is_file():
        command.append("--resume")
    return command


def run_arms(study: dict, names: list[str], data: str) -> None:
    for name in names:
        command = arm_command(study, name, data)
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)


EVAL_FILE = "final_eval.json"


def evaluate_model(model: Path, data: str, samples: int, out: Path, study: dict) -> dict:
    """Validation metrics of an exported model with the study's validation settings."""
    import dataclasses

    import torch

    from multiflow_gm.config import load_config
    from multiflow_gm.protein.validation import ValidationSet, validate
    from multiflow_gm.protein.model_file import load_codesign
    from multiflow_gm.training.protein.config import TrainConfig
    from multiflow_gm.training.protein.data import training_chains

    torch.set_num_threads(1)
    cfg = load_config(TrainConfig, ROOT / study["base_config"], [])
    vcfg = dataclasses.replace(cfg.validation, codesign_samples=samples)
    network, _, model_cfg, _ = load_codesign(model)
    # Corrupt with the base recipe's process, so arms that train on other noise (IGSO3) are
    # measured on the same inputs; sampling uses the arm's own process settings.
    from multiflow_gm.protein.process import CoDesignProcess

    data_set = ValidationSet.from_cache(training_chains(cfg, Path(data), "val"), vcfg)
    metrics = validate(network, CoDesignProcess(cfg.process), data_set, vcfg, cfg.loss, model_cfg.sampling)
    metrics["codesign_samples"] = samples
    atomic_write_bytes(out, (json.dumps(metrics, indent=1) + "\n").encode())
    return metrics


def evaluate_arms(study: dict, names: list[str], data: str, samples: int) -> None:
    runs = ROOT / study["runs_dir"]
    targets = [("start", ROOT / study["common_start"].split()[0], runs / f"start_{EVAL_FILE}")]
    targets += [(n, runs / n / "model_ema.safetensors", runs / n / EVAL_FILE) for n in names or study["arms"]]
    for name, model, out in targets:
        if out.is_file() or not model.is_file():
            continue
        metrics = evaluate_model(model, data, samples, out, study)
        print(name, json.dumps({k: round(v, 3) for k, v in metrics.items()}), flush=True)


def collect(study: dict) -> list[dict]:
    rows = []
    runs = ROOT / study["runs_dir"]
    start_eval = runs / f"start_{EVAL_FILE}"
    for name, arm in study["arms"].items():
        run_dir = runs / name
        validation = read_validation(run_dir / "validation.csv")
        summary_path = run_dir / "summary.json"
        if not validation or not summary_path.is_file():
            continue
        summary = json.loads(summary_path.read_text())
        final = run_dir / EVAL_FILE
        rows.append({"arm": name, "description": arm.get("description", ""),
                     "overrides": arm.get("overrides", []), "steps": summary.get("steps"),
                     "train_minutes": round(summary.get("seconds", float("nan")) / 60, 1),
                     "start": json.loads(start_eval.read_text()) if start_eval.is_file() else validation[0],
                     "final": json.loads(final.read_text()) if final.is_file() else validation[-1],
                     "curve": validation})
    return rows


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "n/a" if value is None else fmt.format(value)


def render(rows: list[dict], study: dict) -> str:
    lines = [f"Recipe study: every arm starts from `{study['common_start']}` and trains on the same data "
             f"and seed for the same step budget ({study['budget']}). Metrics are on the validation split "
             "(never trained on); lower is better for clashes, CE, NLL and RMSE, higher for DSSP E, "
             "recovery and TM.", ""]
    header = ["arm", "steps", "min"] + [label for _, label, _ in COLUMNS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if rows:
        start = rows[0]["start"]
        lines.append("| start (step 0) | 0 | 0 | " + " | ".join(_cell(start, k, f) for k, _, f in COLUMNS) + " |")
    for row in rows:
        cells = [row["arm"], str(row["steps"]), str(row["train_minutes"])]
        cells += [_cell(row["final"], key, fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Arms:", ""]
    lines += [f"- `{row['arm']}`: {row['description']} (`{' '.join(row['overrides']) or 'no overrides'}`)"
              for row in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("pred_clash_t0.8", "codesign_clash", "codesign_dssp_strand", "codesign_mpnn_nll",
            "inverse_fold_recovery", "fold_tm")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3.4))
    names = [row["arm"] for row in rows]
    for ax, key in zip(axes, keys):
        ax.barh(names, [row["final"].get(key, float("nan")) for row in rows], color="tab:blue")
        if rows and key in rows[0]["start"]:
            ax.axvline(rows[0]["start"][key], color="k", ls="--", lw=1, label="start")
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    import io
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, default=STUDY, help="the study file (default %(default)s)")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="train arms (resuming any that were interrupted)")
    run.add_argument("arms", nargs="+")
    run.add_argument("--data", default="cache/all")
    evaluate = sub.add_parser("evaluate", help="measure every arm's final export the same way")
    evaluate.add_argument("arms", nargs="*")
    evaluate.add_argument("--data", default="cache/all")
    evaluate.add_argument("--samples", type=int, default=8, help="co-designs per model")
    sub.add_parser("table", help="write RESULTS_DIR/{table.md,table.json,arms.png} (results/recipe_study by default)")
    args = parser.parse_args(argv)
    study = load_study(args.study.resolve())
    if args.action == "run":
        run_arms(study, args.arms, args.data)
        return 0
    if args.action == "evaluate":
        evaluate_arms(study, args.arms, args.data, args.samples)
        return 0
    rows = collect(study)
    out = ROOT / study["results_dir"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "table.md", render(rows, study).encode())
    atomic_write_bytes(out / "table.json", (json.dumps(rows, indent=1) + "\n").encode())
    if rows:
        plot(rows, out / "arms.png")
    print(render(rows, study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
