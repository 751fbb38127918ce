"""`multiflow-gm distill`: ProteinMPNN-designed sequences for every chain of a cache."""

from __future__ import annotations

from multiflow_gm.cli.common import add_threads_argument, add_workers_argument

NAME = "distill"
HELP = ("design sequences with ProteinMPNN for each chain of a cache (stored in CACHE/designed/, "
        "used in training with data.designed_sequence_fraction)")


def add_arguments(parser) -> None:
    parser.add_argument("cache", metavar="CACHE_DIR", help="a cache built by `multiflow-gm preprocess` (reruns resume)")
    parser.add_argument("--num-sequences", type=int, default=8, metavar="K", help="designs per chain (default 8)")
    parser.add_argument("--temperature", type=float, default=0.1,
                        help="ProteinMPNN sampling temperature (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the designs (default 0)")
    add_workers_argument(parser)
    add_threads_argument(parser, "torch threads per worker", per_worker=True)
    parser.add_argument("--max-chains", type=int, default=None, metavar="N",
                        help="only the first N chains of metadata.csv")
    parser.add_argument("--min-length", type=int, default=None, help="skip chains shorter than this (residues)")
    parser.add_argument("--max-length", type=int, default=None, help="skip chains longer than this (residues)")
    parser.add_argument("--split", default=None, choices=("train", "val", "test"),
                        help="only chains of this split of splits.csv (training draws only 'train')")
    parser.add_argument("--residue-budget", type=int, default=4096,
                        help="chains x K x longest length per ProteinMPNN call (default 4096)")
    parser.add_argument("--device", default="cpu", help="torch device for ProteinMPNN (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from multiflow_gm.cli.common import default_threads, default_workers
    from multiflow_gm.protein.data.distill import DistillSettings, run_distill

    workers = args.workers or default_workers()
    threads = args.threads or default_threads(workers)
    settings = DistillSettings(num_sequences=args.num_sequences, temperature=args.temperature, seed=args.seed)
    report = run_distill(args.cache, settings, workers=workers, threads=threads,
                         max_chains=args.max_chains, residue_budget=args.residue_budget, device=args.device,
                         progress=not args.no_progress, min_length=args.min_length,
                         max_length=args.max_length, split=args.split)
    for line in report.summary_lines():
        print(line)
    return 0 if report.designed + report.cached else 1
