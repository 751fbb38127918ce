"""``multiflow-gm evaluate``: quality report of generated proteins against a reference set."""

from __future__ import annotations

import argparse

from multiflow_gm.cli.arguments import length_range
from multiflow_gm.cli.common import add_threads_argument, add_workers_argument

NAME = "evaluate"
HELP = "Evaluate a directory of generated protein backbones (or a baseline) against a reference cache."
EPILOG = """\
chains: every protein chain (ATOM records; first model, first altloc; MSE and other
  modified residues read as their parent) with at least --min-length residues that have
  N, CA, C and O is one sample; residues missing one of them are dropped and listed.
  A file with several such chains gives one sample per chain (NAME_A, NAME_B, ...);
  --chain A keeps only chain A of every file. Shorter chains (peptides), unreadable
  files and absent chains are listed in the report's "Skipped inputs" table. A metric
  that cannot handle a chain (DSSP below 6 residues, TM-align below 3, any failure)
  is "not computed" for that chain, with the reason, in "Metrics not computed".

exit status:
  0  report written; every file read, every chain used, every metric computed
  1  report written, but there was no usable sample
  2  usage error (bad option, missing directory): no report
  3  report written; something was skipped or not computed (the summary line counts it)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multiflow_gm.protein.chain_selection import DEFAULT_MIN_CHAIN_LENGTH

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("samples_dir", nargs="?",
                        help="directory of PDB/mmCIF/BinaryCIF files (plain or .gz) and optional FASTA")
    parser.add_argument("--chain", action="append", metavar="ID",
                        help="use only this chain of each file (repeatable; default: every protein chain)")
    parser.add_argument("--min-length", type=int, default=DEFAULT_MIN_CHAIN_LENGTH, metavar="N",
                        help="fewest residues with a complete backbone for a chain to be a sample "
                             f"(default {DEFAULT_MIN_CHAIN_LENGTH})")
    parser.add_argument("--reference", metavar="CACHE_DIR",
                        help="preprocessed reference cache (output of 'multiflow-gm preprocess')")
    parser.add_argument("--out", required=True, metavar="REPORT_DIR", help="where to write the report")
    add_workers_argument(parser, "worker processes for TM-align (diversity and novelty)")
    parser.add_argument("--baseline", choices=("native", "random-walk"),
                        help="evaluate this baseline instead of samples (needs no SAMPLES_DIR)")
    parser.add_argument("--num-samples", type=int, default=64, help="baseline chains to generate with --baseline")
    parser.add_argument("--lengths", type=length_range, default=(60, 128), metavar="MIN-MAX",
                        help="baseline length range with --baseline (reference lengths in this window)")
    parser.add_argument("--compare", default="native,random-walk",
                        help="baselines evaluated next to the samples, comma-separated, or 'none'")
    parser.add_argument("--baseline-count", type=int, default=32,
                        help="at most this many chains per comparison baseline")
    parser.add_argument("--novelty-top-k", type=int, default=32,
                        help="references TM-aligned per sample after the descriptor prefilter")
    parser.add_argument("--no-mpnn", action="store_true", help="skip ProteinMPNN scoring")
    add_threads_argument(parser, "torch threads for ProteinMPNN", flag="--mpnn-threads")
    parser.add_argument("--mpnn-orders", type=int, default=1,
                        help="random decoding orders averaged in the ProteinMPNN NLL")
    parser.add_argument("--no-dssp", action="store_true", help="skip DSSP (P-SEA is always computed)")
    parser.add_argument("--folding-model", metavar="SPEC",
                        help="designability backend, e.g. esmfold:/path/to/local/esmfold (never downloaded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from multiflow_gm.cli.common import default_threads, default_workers
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.evaluation.novelty import NoveltySettings
    from multiflow_gm.protein.evaluation.pipeline import run_evaluation
    from multiflow_gm.protein.evaluation.runner import EvaluationSettings

    if args.samples_dir is None and args.baseline is None:
        raise UserError("give SAMPLES_DIR or --baseline native|random-walk")
    if args.samples_dir is not None and args.baseline is not None:
        raise UserError("give either SAMPLES_DIR or --baseline, not both (samples reports include baselines)")
    if min(args.num_samples, args.novelty_top_k, args.mpnn_orders) < 1:
        raise UserError("--num-samples, --novelty-top-k and --mpnn-orders must be >= 1")
    if args.baseline_count < 0:
        raise UserError("--baseline-count must be >= 0")
    if args.min_length < 1:
        raise UserError("--min-length must be >= 1")
    compare = () if args.compare.strip().lower() in ("", "none") else tuple(
        name.strip() for name in args.compare.split(","))
    unknown = [name for name in compare if name not in ("native", "random-walk")]
    if unknown:
        raise UserError(f"--compare: unknown baseline(s) {unknown}; use native, random-walk or none")
    settings = EvaluationSettings(
        workers=args.workers or default_workers(), use_mpnn=not args.no_mpnn, use_dssp=not args.no_dssp,
        novelty=NoveltySettings(top_k=args.novelty_top_k), baselines=compare,
        baseline_count=args.baseline_count, seed=args.seed, mpnn_threads=args.mpnn_threads or default_threads(),
        mpnn_num_orders=args.mpnn_orders, folding_model=args.folding_model,
        progress=not args.no_progress,
    )
    try:
        result = run_evaluation(args.samples_dir, args.reference, args.out, settings,
                                baseline_only=args.baseline, num_baseline_samples=args.num_samples,
                                baseline_length_range=args.lengths, chain_ids=args.chain,
                                min_length=args.min_length)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise UserError(str(err)) from None
    _print_summary(result)
    if not result.primary.chains:
        return 1
    return 3 if result.anything_skipped else 0


def summary_line(result) -> str:
    """One line: samples evaluated, and how many inputs and metric values were skipped."""
    counts = result.counts()
    line = f"evaluated {counts['samples']} chain(s) from {counts['files']} file(s)"
    if result.samples_dir is None:
        return line
    return (line + f"; skipped: {counts['file_problems']} file-level and {counts['chain_problems']} chain-level "
            f"input problem(s), {counts['metrics_not_computed']} per-chain metric value(s) not computed")


def _print_summary(result) -> None:
    from multiflow_gm.protein.evaluation.aggregate import REPORT_TABLE

    for message in result.messages:
        print(f"note: {message}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} input(s); see the report's 'Skipped inputs' table")
    if result.primary.not_computed:
        print(f"{len(result.primary.not_computed)} per-chain metric value(s) not computed; "
              "see the report's 'Metrics not computed' table")
    labels = [s.label for s in result.sets]
    print(f"{'metric':46s}" + "".join(f"{label:>13s}" for label in labels))
    for section, key, label, fmt in REPORT_TABLE:
        cells = []
        for s in result.sets:
            value = s.summary[section][key]
            cells.append(fmt.format(value) if value == value else "n/c")
        print(f"{label[:46]:46s}" + "".join(f"{cell:>13s}" for cell in cells))
    print(summary_line(result))
    print(f"report: {result.outputs.get('report')}")
