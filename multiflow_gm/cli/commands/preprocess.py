"""`multiflow-gm preprocess`: structure files -> a chain cache for training."""

from __future__ import annotations

NAME = "preprocess"
HELP = "read PDB/mmCIF/BinaryCIF files (plain or .gz), filter chains, and cache backbones for training"


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="structure files, directories (searched recursively) or .txt/.list files of paths")
    parser.add_argument("--out", required=True, metavar="CACHE_DIR", help="cache directory (created; reruns resume)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: all CPU cores)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="YAML with reading/filters/clustering settings (default: built-in, "
                             "see configs/data/preprocess.yaml)")
    parser.add_argument("--rebuild", action="store_true",
                        help="discard cached chains and records built with other settings")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.data.config import load_preprocess_config
    from multiflow_gm.protein.data.preprocess import run_preprocess

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    config = load_preprocess_config(args.config)
    report = run_preprocess(args.inputs, args.out, config=config, workers=args.workers,
                            progress=not args.no_progress, rebuild=args.rebuild)
    for line in report.summary_lines():
        print(line)
    return 0 if report.chains_accepted else 1
