"""``multiflow-gm benchmark``: folding and inverse folding of held-out native chains, with a ProteinMPNN anchor."""

from __future__ import annotations

import argparse
from pathlib import Path

from multiflow_gm.cli.arguments import length_range
from multiflow_gm.cli.common import add_set_argument, add_threads_argument, add_workers_argument

NAME = "benchmark"
HELP = ("fold held-out native sequences and design sequences for their backbones; "
        "TM-score / RMSD and sequence recovery against ProteinMPNN")

TASK_CHOICES = {"fold": ("fold",), "inverse-fold": ("inverse-fold",), "both": ("fold", "inverse-fold")}
DEFAULT_DESIGNS = 4      # inverse folding: sequences per backbone
DEFAULT_STRUCTURES = 1   # folding: structures per sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multiflow_gm.protein.chain_selection import DEFAULT_MIN_CHAIN_LENGTH

    source = parser.add_argument_group("targets (give --cache or --pdb)")
    source.add_argument("--cache", type=Path, metavar="CACHE_DIR", help="preprocessed chain cache with a split")
    source.add_argument("--split", choices=("test", "val"), default="test", help="held-out split of --cache")
    source.add_argument("--max-chains", type=int, default=24,
                        help="at most this many chains of the split, chosen at random with --seed")
    source.add_argument("--pdb", type=Path, nargs="+", metavar="FILE",
                        help="structure files (PDB / mmCIF, plain or gzipped); each protein chain is one target")
    source.add_argument("--lengths", type=length_range, metavar="MIN-MAX", help="keep chains of this many residues")
    source.add_argument("--min-length", type=int, default=DEFAULT_MIN_CHAIN_LENGTH, metavar="N",
                        help="--pdb: fewest residues with N, CA, C and O for a chain to count (default "
                             f"{DEFAULT_MIN_CHAIN_LENGTH}, as in 'sample'; shorter chains are skipped as peptides)")
    parser.add_argument("--task", choices=tuple(TASK_CHOICES), default="both")
    parser.add_argument("--ckpt", type=Path, help="model (.safetensors export or training .ckpt); "
                                                  "default: the shipped small model")
    parser.add_argument("--num-steps", type=int, help="sampling time steps (default: the model's sampling config)")
    parser.add_argument("--num-designs", type=int, metavar="K",
                        help=f"inverse folding: sequences per backbone (default {DEFAULT_DESIGNS}); folding: "
                             f"structures per sequence (default {DEFAULT_STRUCTURES}); given, it sets both")
    parser.add_argument("--temperature", type=float, help="residue-type sampling temperature of this model")
    add_set_argument(parser, "sampling.eta=1.0", "a sampling setting of the model (sampling.*)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chain choice and of every draw")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--no-mpnn", action="store_true", help="skip the ProteinMPNN anchor")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    add_threads_argument(parser)
    add_workers_argument(parser, "worker processes for TM-align")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _targets(args):
    """(chains, skipped, notes, description) from --cache or --pdb."""
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.evaluation.heldout_inputs import chains_from_cache, chains_from_structure_files

    if (args.cache is None) == (args.pdb is None):
        raise UserError("give either --cache CACHE_DIR (with --split) or --pdb FILE...")
    window = f", lengths {args.lengths[0]}-{args.lengths[1]}" if args.lengths else ""
    if args.cache is not None:
        chains = chains_from_cache(args.cache, args.split, args.max_chains, args.lengths, args.seed)
        return chains, [], [], (f"{len(chains)} chains of the {args.split} split of {args.cache}{window} "
                                f"(seed {args.seed})")
    chains, skipped, notes = chains_from_structure_files(args.pdb, args.lengths, args.min_length)
    if not chains:
        reasons = "; ".join(f"{s.source}{':' + s.chain if s.chain else ''} {s.reason}" for s in skipped[:5])
        raise UserError(f"no usable protein chain in the {len(args.pdb)} file(s) given ({reasons})")
    return chains, skipped, notes, f"{len(chains)} chains of {len(args.pdb)} structure file(s){window}"


def _check_numbers(args) -> None:
    from multiflow_gm.errors import UserError

    if min(args.max_chains, args.min_length) < 1:
        raise UserError("--max-chains and --min-length must be >= 1")
    if args.num_designs is not None and args.num_designs < 1:
        raise UserError("--num-designs must be >= 1")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda requested but no CUDA device is available")


def run(args) -> int:
    import time
    from dataclasses import asdict, replace

    import torch
    from tqdm import tqdm

    from multiflow_gm.cli.commands.sample import DEFAULT_MODEL
    from multiflow_gm.cli.common import default_workers, set_torch_threads
    from multiflow_gm.config import with_overrides
    from multiflow_gm.errors import MissingResourceError, UserError
    from multiflow_gm.protein.evaluation.heldout import fold_and_design, proteinmpnn_anchor, summarize
    from multiflow_gm.protein.evaluation.heldout_report import write_benchmark_files
    from multiflow_gm.protein.model_file import load_codesign

    _check_numbers(args)
    set_torch_threads(args.threads)
    workers = args.workers or default_workers()
    ckpt = args.ckpt or DEFAULT_MODEL
    if args.ckpt is None and not DEFAULT_MODEL.is_file():
        raise MissingResourceError(f"no --ckpt given and the shipped model is missing at {DEFAULT_MODEL}")
    tasks = TASK_CHOICES[args.task]
    num_designs = args.num_designs or DEFAULT_DESIGNS
    num_structures = args.num_designs or DEFAULT_STRUCTURES
    # The model and its sampling settings first: a wrong --set key stops before any target is read.
    network, process, cfg, _ = load_codesign(ckpt, args.device)
    cfg = with_overrides(cfg, args.overrides, ("sampling.",))
    chains, skipped, notes, description = _targets(args)
    # An explicit --temperature is the temperature of both tasks.
    updates = {"num_steps": args.num_steps, "temperature": args.temperature,
               "inverse_fold_temperature": args.temperature}
    try:
        sampling = replace(cfg.sampling, **{k: v for k, v in updates.items() if v is not None})
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"model {ckpt} | {description} | tasks {', '.join(tasks)} | {sampling.num_steps} steps"
          + (f" | {len(skipped)} input(s) skipped" if skipped else ""))
    for label, items in (("skipped", skipped), ("note", notes)):
        for item in items:
            print(f"{label}: {item.source}{' chain ' + item.chain if item.chain else ''}: "
                  f"{item.reason} {item.detail}".rstrip())

    started = time.perf_counter()
    with tqdm(total=len(chains) * len(tasks), desc="benchmark", unit="task", disable=args.no_progress) as bar:
        rows = fold_and_design(network, process, chains, sampling, tasks, num_designs=num_designs,
                               num_structures=num_structures, seed=args.seed, device=args.device,
                               workers=workers, progress=bar.update)
    model_seconds = time.perf_counter() - started
    mpnn_rows, mpnn_status = None, "not run: inverse folding was not requested"
    if "inverse-fold" in tasks and args.no_mpnn:
        mpnn_status = "not computed: skipped with --no-mpnn"
    elif "inverse-fold" in tasks:
        with tqdm(total=len(chains) * num_designs, desc="ProteinMPNN", unit="design",
                  disable=args.no_progress) as bar:
            mpnn_rows, mpnn_status = proteinmpnn_anchor(chains, num_designs, seed=args.seed,
                                                        device=args.device, progress=bar.update)
    for row, anchor in zip(rows, mpnn_rows or ()):
        row.update(anchor)
    summary = summarize(rows)
    if "inverse-fold" in tasks and mpnn_rows is None:
        summary.update(mpnn_recovery_mean=None, mpnn_recovery_median=None, mpnn_recovery_best_mean=None,
                       mpnn_recovery_best_median=None, mpnn_native_nll_mean=None)
    total_seconds = time.perf_counter() - started
    document = {
        "settings": {"model": str(ckpt), "targets": description, "tasks": list(tasks), "seed": args.seed,
                     "num_designs": num_designs, "num_structures": num_structures,
                     "num_steps": sampling.num_steps, "temperature": sampling.temperature,
                     "inverse_fold_temperature": sampling.temperature_for("inverse-fold"),
                     "sampling": asdict(sampling), "device": args.device,
                     "torch_threads": torch.get_num_threads()},
        "summary": summary, "mpnn_status": mpnn_status, "rows": rows,
        "skipped": [asdict(item) for item in skipped], "notes": [asdict(item) for item in notes],
        "timings": {"model_seconds": model_seconds, "mpnn_seconds": total_seconds - model_seconds,
                    "total_seconds": total_seconds},
    }
    paths = write_benchmark_files(args.out, document)
    print(_summary_line(summary, mpnn_status, len(skipped), total_seconds, paths["markdown"]))
    return 0


def _summary_line(summary: dict, mpnn_status: str, skipped: int, seconds: float, report: Path) -> str:
    def number(key, fmt="{:.3f}"):
        value = summary.get(key)
        return "not computed" if value is None or value != value else fmt.format(value)

    parts = [f"{summary['chains']} chains" + (f" ({skipped} inputs skipped)" if skipped else "")]
    if "fold_tm_mean" in summary:
        parts.append(f"fold TM mean {number('fold_tm_mean')} median {number('fold_tm_median')}, "
                     f"TM>0.5 {number('fold_tm_above_0.5')}, RMSD mean {number('fold_rmsd_mean', '{:.2f}')} A")
    if "recovery_mean" in summary:
        parts.append(f"recovery mean {number('recovery_mean')} median {number('recovery_median')} "
                     f"best-of-K {number('recovery_best_mean')} | ProteinMPNN recovery "
                     f"{number('mpnn_recovery_mean')}, native NLL {number('mpnn_native_nll_mean')}")
        if mpnn_status.startswith("not computed"):
            parts.append(f"ProteinMPNN {mpnn_status}")
    return f"benchmark: {' | '.join(parts)} | {seconds:.0f} s; report {report}"
