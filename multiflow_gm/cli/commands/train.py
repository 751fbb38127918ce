"""``multiflow-gm train``: co-design training from a preprocessed cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from multiflow_gm.cli.common import add_set_argument

NAME = "train"
HELP = "train the protein co-design model (Lightning; resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="YAML config (configs/protein/*.yaml)")
    add_set_argument(parser, "trainer.max_steps=100")
    # The former positional form (`train --config F key=value`): caught to say what replaced it.
    parser.add_argument("positional_overrides", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help="preprocessed cache directory (else data.cache)")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")


def run(args) -> int:
    from multiflow_gm.config import load_config
    from multiflow_gm.errors import ConfigError, UserError
    from multiflow_gm.training.protein.config import TrainConfig
    from multiflow_gm.training.protein.trainer import train

    if args.positional_overrides:
        raise UserError("config overrides are given with --set: "
                        + " ".join(f"--set {item}" for item in args.positional_overrides))
    cfg = load_config(TrainConfig, args.config, args.overrides)
    data = args.data or (Path(cfg.data.cache) if cfg.data.cache else None)
    if data is None:
        raise ConfigError("no training data: pass --data CACHE_DIR or set data.cache")
    summary = train(cfg, data, args.out, resume=args.resume)
    if summary:
        print(json.dumps({k: v for k, v in summary.items() if k != "last_metrics"}, indent=2))
        losses = {k.split("/", 1)[1]: round(v, 4) for k, v in summary["last_metrics"].items()
                  if k.startswith("train/")}
        print(f"trained {summary['steps']} steps in {summary['seconds'] / 60:.1f} min; last losses {losses}")
        if summary.get("interrupted_by"):
            print(f"stopped early by {summary['interrupted_by']}: checkpoint, summary and EMA export are written; "
                  "continue with --resume")
            return 130 if summary["interrupted_by"] == "SIGINT" else 143
    return 0
