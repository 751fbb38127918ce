"""`multiflow-gm preprocess`: structure files -> a chain cache for training."""

from __future__ import annotations

from multiflow_gm.cli.common import add_set_argument, add_workers_argument

NAME = "preprocess"
HELP = "read PDB/mmCIF/BinaryCIF files (plain or .gz), filter chains, and cache backbones for training"


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="structure files, directories (searched recursively) or .txt/.list files of paths")
    parser.add_argument("--out", required=True, metavar="CACHE_DIR", help="cache directory (created; reruns resume)")
    add_workers_argument(parser)
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="YAML with reading/filters/clustering settings (default: built-in, "
                             "see configs/data/preprocess.yaml)")
    add_set_argument(parser, "filters.max_length=256")
    parser.add_argument("--rebuild", action="store_true",
                        help="discard cached chains and records built with other settings")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from multiflow_gm.cli.common import default_workers
    from multiflow_gm.protein.data.config import load_preprocess_config
    from multiflow_gm.protein.data.preprocess import run_preprocess

    config = load_preprocess_config(args.config, args.overrides)
    report = run_preprocess(args.inputs, args.out, config=config, workers=args.workers or default_workers(),
                            progress=not args.no_progress, rebuild=args.rebuild)
    for line in report.summary_lines():
        print(line)
    return 0 if report.chains_accepted else 1
