"""The MNIST image study: flow vs jump vs flow + jump superposition, with intervals.

Steps (each resumes; run them in order, or ``all``):

    python scripts/images_study.py train --steps 6000      # one process per network, side by side
    python scripts/images_study.py curves                 # distance and held-out loss per EMA snapshot
    python scripts/images_study.py metric-check           # landing-bin dither on held-out real images
    python scripts/images_study.py sweep --steps 6000     # every sampler x alpha x NFE, both arrangements
    python scripts/images_study.py bins-check --steps 3000 # a 128-bin jump network against the 64-bin curve
    python scripts/images_study.py report                 # copy tables, figures and grids to results/images/

The run directory (``--run``, default ``runs/images/mnist``) holds checkpoints, EMA
snapshots, the metric's classifier and every cell's features; ``results/images/`` gets
what is committed. ``sweep --networks-apart-first`` evaluates the rows that need only the
flow and jump networks before training the two-head network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multiflow_gm.atomic_files import atomic_write_json, atomic_write_text  # noqa: E402

ALPHAS = ["0.1", "0.3", "0.5", "0.7", "0.9"]
NFES = ["20", "50", "100", "200"]
APART = ["flow", "jump", "superposition-2net", "mixed-2net"]
ALL = ["flow", "jump", "superposition", "mixed", "superposition-2net", "mixed-2net"]
CONTROLS = ["flow-head", "jump-head"]  # one head of the two-head network alone
TRAIN_MODELS = {"flow": "flow", "jump": "jump", "flow_jump": "superposition"}


CONFIG: list[str] = []  # ["--config", FILE] when the study runs another configuration than the preset
DEVICE: list[str] = []  # ["--device", NAME] when the study runs on an accelerator
SHARED = ("checkpoints", "cache", "features")  # what the sweep's workers share with the run


def _cli(run: Path, *args: str, threads: int = 2) -> list[str]:
    return [sys.executable, "-m", "multiflow_gm.cli.main", "bench-images", "--dataset", "mnist",
            "--out", str(run), "--threads", str(threads), "--no-progress", *CONFIG, *DEVICE, *args]


def cmd_train(args) -> None:
    """Train the networks side by side, one thread each, to ``--steps`` (resumes)."""
    procs = []
    for network in args.networks:
        log = open(args.run / f"train_{network}.log", "a")
        procs.append(subprocess.Popen(_cli(args.run, "--models", TRAIN_MODELS[network], "--train-only",
                                           "--train-steps", str(args.steps), threads=1),
                                      stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"training exited with {codes}; see {args.run}/train_*.log")


def cmd_curves(args) -> None:
    subprocess.run(_cli(args.run, "--curves", "--models", *args.models, threads=args.threads), check=True)


def study_config():
    """The MNIST preset with the study's ``--config`` laid over it."""
    from multiflow_gm.config import from_dict, merge_dicts, read_layered_yaml
    from multiflow_gm.images.config import ImageBenchConfig, preset_dict

    data = preset_dict("mnist")
    if CONFIG:
        data = merge_dicts(data, read_layered_yaml(Path(CONFIG[1])))
    return from_dict(ImageBenchConfig, data)


def cmd_metric_check(args) -> None:
    """Distance of held-out real images, plain and dithered inside 64 and 128 landing bins."""
    import torch

    from multiflow_gm.images.datasets import load_dataset
    from multiflow_gm.images.dither import dither_check
    from multiflow_gm.images.metric import build_metric

    torch.set_num_threads(args.threads)
    config = study_config()
    data = load_dataset(config.data)
    metric = build_metric(data, config, args.run / "cache")
    num = min(config.eval.num_samples, len(data.test))
    result = dither_check(metric, data, num, [64, 128], seed=config.sampling.seed,
                          level=config.eval.interval_level)
    result["metric"] = metric.label
    atomic_write_json(args.run / "metric_check.json", result)
    print(json.dumps(result, indent=1))


def cmd_sweep(args) -> None:
    """Every cell of ``--models`` x ``--nfe`` x alpha; cells already scored at these steps are
    read from the run's feature cache, so a stopped sweep resumes where it was. With
    ``--workers N`` the rows are scored by N processes side by side (one thread each), then
    the whole table is assembled from their cached cells."""
    common = ["--nfe", *args.nfe, "--train-steps", str(args.steps), "--set", f"eval.baseline={args.baseline}"]
    num_samples = args.num_samples if args.num_samples is not None else (None if CONFIG else 500)
    if num_samples is not None:  # with --config, its eval.num_samples
        common += ["--num-samples", str(num_samples)]
    if args.networks_apart_first:
        subprocess.run(_cli(args.run, "--models", *APART, *common, "--alpha", *ALPHAS, threads=args.threads),
                       check=True)
    if args.workers > 1:
        _sweep_in_workers(args, common)
    subprocess.run(_cli(args.run, "--models", *args.models, *common, "--alpha", *ALPHAS, threads=args.threads),
                   check=True)


def sweep_jobs(models: list[str], workers: int) -> list[list[str]]:
    """``models`` dealt to ``workers``, the costliest first to the least loaded one (a model over
    two generator kinds has one row per alpha; a row over two networks costs two). Whole models,
    so each worker is one process that compiles its networks once."""
    from multiflow_gm.images.sampling import model_spec

    costs = {}
    for model in models:
        spec = model_spec(model)
        costs[model] = len(spec.networks) * (len(ALPHAS) if len(spec.kinds) > 1 else 1)
    loads, jobs = [0] * workers, [[] for _ in range(workers)]
    for model in sorted(costs, key=lambda m: -costs[m]):
        i = loads.index(min(loads))
        loads[i] += costs[model]
        jobs[i].append(model)
    return [job for job in jobs if job]


def _sweep_in_workers(args, common: list[str]) -> None:
    """Score the baseline row in the run itself (it also builds the metric's classifier), then
    deal the other rows to sibling run directories that share the run's checkpoints, metric
    cache and cell features, and copy their sample grids back."""
    import threading

    others = [m for m in args.models if m != args.baseline]
    if args.baseline in args.models:
        subprocess.run(_cli(args.run, "--models", args.baseline, *common, threads=1), check=True)
    dirs = []
    for i, models in enumerate(sweep_jobs(others, args.workers)):
        worker = args.run.parent / f"{args.run.name}_worker{i}"
        worker.mkdir(parents=True, exist_ok=True)
        for name in SHARED:
            (args.run / name).mkdir(exist_ok=True)
            if not (worker / name).exists():
                (worker / name).symlink_to((args.run / name).resolve(), target_is_directory=True)
        dirs.append((worker, models))
    failures = []

    def work(worker: Path, models: list[str]) -> None:
        with open(worker / "sweep.log", "a") as log:
            code = subprocess.run(_cli(worker, "--models", *models, *common, "--alpha", *ALPHAS, threads=1),
                                  stdout=log, stderr=subprocess.STDOUT).returncode
        if code:
            failures.append(f"{worker.name}: {' '.join(models)} exited with {code}")

    threads = [threading.Thread(target=work, args=job) for job in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for worker, _ in dirs:
        for grid in worker.glob("samples_*.png"):
            shutil.copyfile(grid, args.run / grid.name)
    if failures:
        raise SystemExit("; ".join(failures) + " (see sweep.log in each worker directory)")


def cmd_bins_check(args) -> None:
    """Train a jump network with ``--bins`` landing bins in a sibling run (sharing the metric's
    cache) to ``--steps``, score its snapshots, and table its curve beside the flow and 64-bin
    jump curves at the same steps (``bins_check.md``): do the bins change the ranking?"""
    run = args.run.parent / f"{args.run.name}_bins{args.bins}"
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "cache").exists():
        (run / "cache").symlink_to((args.run / "cache").resolve(), target_is_directory=True)
    bins = ["--set", f"jump.bins={args.bins}"]
    subprocess.run(_cli(run, "--models", "jump", "--train-only", "--train-steps", str(args.steps), *bins,
                        threads=args.threads), check=True)
    subprocess.run(_cli(run, "--models", "jump", "--curves", *bins, threads=args.threads), check=True)
    base = json.loads((args.run / "curves.json").read_text())["curves"]
    other = json.loads((run / "curves.json").read_text())["curves"]["jump"]
    atomic_write_text(args.run / "bins_check.md", _bins_check_md(base, other, args.bins))
    print((args.run / "bins_check.md").read_text())


def _curve_cell(point: dict | None) -> str:
    if point is None:
        return "-"
    return f"{point['distance']:.1f} [{point['interval'][0]:.1f}, {point['interval'][1]:.1f}]"


def _bins_check_md(base: dict, other: list[dict], bins: int) -> str:
    """Distance per snapshot step of flow, the 64-bin jump network and the ``bins`` one."""
    by_step = {name: {p["step"]: p for p in points} for name, points in base.items()}
    lines = [f"# Landing bins: the jump network with 64 and {bins} bins", "",
             "Distance of each EMA snapshot (the training curves' setting: NFE 50, the same noise for every "
             "network; 95% jackknife interval).", "",
             f"| step | flow | jump, 64 bins | jump, {bins} bins |", "|---:|---:|---:|---:|"]
    for point in other:
        step = point["step"]
        lines.append(f"| {step:,} | {_curve_cell(by_step.get('flow', {}).get(step))} | "
                     f"{_curve_cell(by_step.get('jump', {}).get(step))} | {_curve_cell(point)} |")
    return "\n".join(lines) + "\n"


def _metric_check_md(check: dict) -> str:
    plain = check["plain"]
    lines = ["# Metric check: landing-bin dither on held-out real images", "",
             f"{check['num_samples']} held-out real images, {check['metric']}.", "",
             "| images | distance [95%] | minus plain [paired 95%] |", "|---|---:|---:|",
             f"| plain | {plain['estimate']:.2f} [{plain['low']:.2f}, {plain['high']:.2f}] | - |"]
    for info in check["dithered"].values():
        d, m = info["distance"], info["minus_plain"]
        lines.append(f"| dithered in {info['bins']} bins (std {info['dither_std']:.4f}) | "
                     f"{d['estimate']:.2f} [{d['low']:.2f}, {d['high']:.2f}] | "
                     f"{m['estimate']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}] |")
    return "\n".join(lines) + "\n"


def cmd_report(args) -> None:
    """Copy the run's latest table (as ``--as`` NAME.json / NAME.md), the curves, the metric
    check and the sample grids to results/images/."""
    out = args.dest
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    renames = {"results.json": f"{args.name}.json", "results.md": f"{args.name}.md",
               "alpha_sweep.png": f"{args.name}.png" if args.name != "results" else "alpha_sweep.png"}
    for name in ["results.json", "results.md", "alpha_sweep.png", "curves.json", "curves.png", "metric_check.json",
                 "bins_check.md"]:
        if (args.run / name).is_file():
            shutil.copyfile(args.run / name, out / renames.get(name, name))
            copied.append(renames.get(name, name))
    for grid in sorted(args.run.glob("samples_*.png")):
        shutil.copyfile(grid, out / grid.name)
        copied.append(grid.name)
    if (args.run / "metric_check.json").is_file():
        atomic_write_text(out / "metric_check.md", _metric_check_md(json.loads((args.run / "metric_check.json").read_text())))
    stamp = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "run": str(args.run), "copied": copied}
    sources = "report_sources.json" if args.name == "results" else f"{args.name}_sources.json"
    atomic_write_json(out / sources, stamp)
    print(f"copied {len(copied)} files to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "images" / "mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="torch device of every step (e.g. cuda; default: cpu)")
    parser.add_argument("--config", type=Path, default=None,
                        help="a bench-images YAML laid over the MNIST preset (e.g. configs/images/mnist_budget.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train")
    train.add_argument("--steps", type=int, required=True)
    train.add_argument("--networks", nargs="+", choices=list(TRAIN_MODELS), default=["flow", "jump", "flow_jump"])
    curves = sub.add_parser("curves")
    curves.add_argument("--models", nargs="+", default=["flow", "jump", "superposition"],
                        help="networks whose EMA snapshots are scored (superposition = the two-head network)")
    sub.add_parser("metric-check")
    bins_check = sub.add_parser("bins-check")
    bins_check.add_argument("--steps", type=int, default=3000)
    bins_check.add_argument("--bins", type=int, default=128)
    sweep = sub.add_parser("sweep")
    sweep.add_argument("--steps", type=int, required=True)
    sweep.add_argument("--num-samples", type=int, default=None,
                       help="images per cell (default: eval.num_samples of --config, else 500)")
    sweep.add_argument("--networks-apart-first", action="store_true")
    sweep.add_argument("--models", nargs="+", choices=ALL + CONTROLS, default=ALL,
                       help="table rows (default: all six; the -2net rows need only the flow and jump networks)")
    sweep.add_argument("--baseline", default="flow", choices=["flow", "flow-head"],
                       help="row of the paired differences (flow-head: the two-head network's own flow head)")
    sweep.add_argument("--nfe", nargs="+", default=NFES, help="table columns, scored in this order")
    sweep.add_argument("--workers", type=int, default=1,
                       help="processes scoring rows side by side, one thread each (sibling run directories)")
    report = sub.add_parser("report")
    report.add_argument("--as", dest="name", default="results",
                        help="file name of the copied table (e.g. alpha_sweep_nfe50 for a second table)")
    report.add_argument("--dest", type=Path, default=ROOT / "results" / "images",
                        help="folder the files are copied to (default: %(default)s)")
    args = parser.parse_args()
    if args.config is not None:
        CONFIG[:] = ["--config", str(args.config.resolve())]
    if args.device is not None:
        DEVICE[:] = ["--device", args.device]
    args.run.mkdir(parents=True, exist_ok=True)
    {"train": cmd_train, "curves": cmd_curves, "metric-check": cmd_metric_check, "bins-check": cmd_bins_check,
     "sweep": cmd_sweep, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
