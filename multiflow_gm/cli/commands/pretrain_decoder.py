"""`multiflow-gm pretrain-decoder`: train the structure-conditioned sequence decoder on a cache's backbones."""

from __future__ import annotations

import argparse
from dataclasses import fields

from multiflow_gm.cli.common import add_threads_argument

NAME = "pretrain-decoder"
HELP = ("train the co-design network's sequence decoder alone (inverse folding of the cache's train split); "
        "its decoder.safetensors goes into a training config's decoder_init_from")


def add_arguments(parser) -> None:
    from multiflow_gm.training.protein.decoder_pretraining import DecoderPretraining

    parser.add_argument("cache", metavar="CACHE_DIR", help="a cache with splits.csv (`multiflow-gm split`)")
    parser.add_argument("--out", required=True, help="run directory (curve.csv, decoder.safetensors, state.pt)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    defaults = DecoderPretraining()
    for field in fields(DecoderPretraining):
        value = getattr(defaults, field.name)
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=f"(default {value})")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"(default {value})")
    add_threads_argument(parser, "torch threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    import torch

    from multiflow_gm.cli.common import default_threads
    from multiflow_gm.training.protein.decoder_pretraining import DecoderPretraining, pretrain_decoder

    torch.set_num_threads(args.threads or default_threads(1))
    settings = DecoderPretraining(**{f.name: getattr(args, f.name) for f in fields(DecoderPretraining)})
    row = pretrain_decoder(args.cache, args.out, settings, resume=args.resume, progress=not args.no_progress)
    if row:
        print(f"step {row['step']}: validation cross-entropy {row['val_ce']:.3f} nats/residue, "
              f"recovery {row['val_recovery']:.3f} (whole sequence masked); weights in {args.out}/decoder.safetensors")
    return 0
