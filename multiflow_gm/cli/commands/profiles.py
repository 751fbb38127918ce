"""`multiflow-gm profiles`: ProteinMPNN's residue-type distributions for a cache's chains (decoder distillation)."""

from __future__ import annotations

from multiflow_gm.cli.common import add_threads_argument

NAME = "profiles"
HELP = ("store ProteinMPNN's residue-type distribution given each backbone (CACHE/profiles/), the soft "
        "targets of `pretrain-decoder --teacher-weight`")


def _shard(text: str) -> tuple[int, int]:
    import argparse

    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes K/N (for example 0/2), got {text!r}") from None
    return k, n


def add_arguments(parser) -> None:
    parser.add_argument("cache", metavar="CACHE_DIR", help="a cache with splits.csv (reruns resume)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="chains of this split (default train: never profile what you evaluate on)")
    parser.add_argument("--min-length", type=int, default=40, help="skip chains shorter than this (default 40)")
    parser.add_argument("--max-length", type=int, default=256, help="skip chains longer than this (default 256)")
    parser.add_argument("--max-chains", type=int, default=None, metavar="N",
                        help="only N chains of a seeded random order")
    parser.add_argument("--shard", type=_shard, default=(0, 1), metavar="K/N",
                        help="every N-th chain of that order from the K-th (run N processes to share the work)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chain order (default 0)")
    parser.add_argument("--residue-budget", type=int, default=6000,
                        help="chains x longest length per ProteinMPNN call (default 6000)")
    add_threads_argument(parser, "torch threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from multiflow_gm.cli.common import default_threads
    from multiflow_gm.protein.data.teacher_profiles import run_profiles

    report = run_profiles(args.cache, threads=args.threads or default_threads(1), split=args.split,
                          min_length=args.min_length, max_length=args.max_length, max_chains=args.max_chains,
                          residue_budget=args.residue_budget, seed=args.seed, shard=args.shard,
                          progress=not args.no_progress)
    for line in report.summary_lines():
        print(line)
    return 0 if report.profiled + report.cached else 1
