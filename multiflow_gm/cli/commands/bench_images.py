"""``multiflow-gm bench-images``: flow, jump and flow+jump superposition on images.

Trains one network per kind (or resumes from ``--out``), samples every model at
every NFE with EMA weights, and writes the distance table (JSON, Markdown) and a
PNG grid of samples per model.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from multiflow_gm.cli.common import add_set_argument, add_threads_argument

NAME = "bench-images"
HELP = "train and evaluate flow / jump / superposition / mixed image models at several NFE"

DEFAULT_MODELS = ["flow", "jump", "superposition", "mixed"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multiflow_gm.images.config import DATASETS
    from multiflow_gm.images.sampling import MODELS

    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="dataset and its built-in preset (default: mnist, or data.dataset of --config)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=DEFAULT_MODELS, metavar="MODEL",
                        help=f"models (table rows); choices: {', '.join(MODELS)} (default: %(default)s)")
    parser.add_argument("--nfe", nargs="+", type=int, default=[20, 50, 100],
                        help="network evaluations per sample (table columns; default: %(default)s)")
    parser.add_argument("--alpha", nargs="+", type=float, default=None, metavar="A",
                        help="constant flow weights of the superposition rows, one row per value (e.g. "
                             "0.1 0.3 0.5 0.7 0.9; default: one row with sampling.alpha of the config)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (checkpoints, results)")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="total optimiser steps per network (default: the preset's train.steps)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config (e.g. a copy of multiflow_gm/images/presets/mnist.yaml); "
                             "its keys replace the preset's")
    add_set_argument(parser, "sampling.alpha=[0.8,0.2]")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory of the official CIFAR-10 / ImageNet32 files")
    parser.add_argument("--inception-weights", type=Path, default=None,
                        help="local pytorch-fid Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth) "
                             "for FID; without it a classifier-feature Frechet distance is used")
    parser.add_argument("--num-samples", type=int, default=None, help="generated images per cell")
    add_threads_argument(parser)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    parser.add_argument("--train-only", action="store_true",
                        help="train (or resume) the models' networks to --train-steps and stop; run one "
                             "process per network with the same --out to train them side by side")
    parser.add_argument("--curves", action="store_true",
                        help="score the EMA snapshots of the models' networks (held-out loss and distance "
                             "at eval.curve_nfe) into curves.json and curves.png, and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _load_config(args):
    """Preset of the dataset, then the YAML file (its keys over the preset), then overrides."""
    from multiflow_gm.config import apply_overrides, from_dict, merge_dicts, read_layered_yaml
    from multiflow_gm.errors import ConfigError
    from multiflow_gm.images.config import ImageBenchConfig, preset_dict

    file_data = read_layered_yaml(args.config) if args.config is not None else {}
    file_dataset = (file_data.get("data") or {}).get("dataset") if isinstance(file_data.get("data"), dict) else None
    if args.dataset and file_dataset and args.dataset != file_dataset:
        raise ConfigError(f"--dataset {args.dataset} disagrees with data.dataset={file_dataset} in {args.config}")
    dataset = args.dataset or file_dataset or "mnist"
    data = apply_overrides(merge_dicts(preset_dict(dataset), file_data), list(args.overrides))
    direct = {("train", "steps"): args.train_steps, ("data", "root"): args.data_dir,
              ("eval", "inception_weights"): args.inception_weights, ("eval", "num_samples"): args.num_samples}
    for (section, key), value in direct.items():
        if value is not None:
            data.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
    return from_dict(ImageBenchConfig, data)


def _device(name: str):
    import torch

    from multiflow_gm.errors import UserError

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"--device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    return device


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from multiflow_gm.cli.common import set_torch_threads
    from multiflow_gm.config import save_config
    from multiflow_gm.errors import UserError
    from multiflow_gm.training.images.benchmark import run_benchmark

    if any(n < 1 for n in args.nfe):
        raise UserError("every --nfe value must be >= 1")
    if args.alpha is not None and any(not 0.0 <= a <= 1.0 for a in args.alpha):
        raise UserError(f"every --alpha value must lie in [0, 1]; got {args.alpha}")
    if args.num_samples is not None and args.num_samples < 2:
        raise UserError("--num-samples must be >= 2")
    set_torch_threads(args.threads)
    config = _load_config(args)
    args.out.mkdir(parents=True, exist_ok=True)
    save_config(config, args.out / "config.yaml")
    models = list(dict.fromkeys(args.models))
    nfes = sorted(set(args.nfe))
    device = _device(args.device)
    # A terminated run saves its training state on the way out (the trainer saves in `finally`).
    if args.curves:
        from multiflow_gm.images.sampling import model_spec
        from multiflow_gm.images.networks import NETWORK_ORDER
        from multiflow_gm.images.curves import run_curves

        networks = [n for n in NETWORK_ORDER if any(n in model_spec(m).networks for m in models)]
        run_curves(config, networks, args.out, log=lambda msg: print(msg, flush=True), device=device)
        print(f"wrote {args.out / 'curves.json'} and {args.out / 'curves.png'}")
        return 0
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_benchmark(config, models, nfes, args.out, log=lambda msg: print(msg, flush=True),
                      progress=not args.no_progress, device=device, train_only=args.train_only,
                      alphas=sorted(set(args.alpha)) if args.alpha else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.train_only:
        print(f"trained; checkpoints and EMA snapshots in {args.out / 'checkpoints'}")
    else:
        print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'} and samples_<model>.png")
    return 0
