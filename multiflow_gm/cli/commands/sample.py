"""``multiflow-gm sample``: co-design, folding or inverse folding with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from multiflow_gm.cli.common import add_set_argument, add_threads_argument

NAME = "sample"
HELP = "generate protein backbones and sequences (PDB + FASTA) with a trained model"

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "codesign_small.safetensors"
EPILOG = """\
inverse-fold input (--pdb): PDB, mmCIF or BinaryCIF, plain or .gz; first model, first
  altloc, MSE and other modified residues read as their parent. A protein chain is a
  chain with ATOM records; residues missing N, CA, C or O are dropped (and noted). The
  file must hold exactly one protein chain with at least --min-length such residues
  (shorter chains, e.g. bound peptides, are left out and noted); with several, the
  command stops and names them: pick one with --chain ID. The same rule picks the
  samples of 'multiflow-gm evaluate'.

fold input (--sequence): the 20 standard one-letter codes, at least 2 of them;
  whitespace is ignored, lower case accepted.

exit status:
  0  samples written from the whole input
  2  unusable input or option: the message says why, nothing is drawn
  3  samples written, but part of the input file was left out (listed as 'note:')
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multiflow_gm.protein.chain_selection import DEFAULT_MIN_CHAIN_LENGTH

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--ckpt", type=Path, help="model (.safetensors export or training .ckpt); "
                                                  "default: the shipped small model")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100], help="residues per sample")
    parser.add_argument("--num", type=int, default=8, help="samples per length")
    parser.add_argument("--steps", type=int, help="time steps (default: the model's sampling config)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--mode", choices=("codesign", "fold", "inverse-fold"), default="codesign")
    parser.add_argument("--sequence", help="amino-acid sequence to fold (fold mode)")
    parser.add_argument("--pdb", type=Path, help="backbone to design a sequence for (inverse-fold mode)")
    parser.add_argument("--chain", metavar="ID", help="chain of --pdb to design (needed when it has several)")
    parser.add_argument("--min-length", type=int, default=DEFAULT_MIN_CHAIN_LENGTH, metavar="N",
                        help="fewest residues with a complete backbone for a chain of --pdb to count "
                             f"(default {DEFAULT_MIN_CHAIN_LENGTH})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8, help="samples drawn together")
    parser.add_argument("--temperature", type=float, help="residue-type sampling temperature")
    parser.add_argument("--eta", type=float, help="CTMC stochasticity (re-masking rate)")
    parser.add_argument("--purity", action=argparse.BooleanOptionalAction, default=None,
                        help="unmask the most confident positions first")
    parser.add_argument("--so3-jump-weight", type=float, help="weight of the SO(3) jump in [0, 1] "
                                                              "(needs an isotropic-path model)")
    parser.add_argument("--so3-jump-source", choices=("head", "plugin"), help="trained jump head or the "
                                                                              "closed form at the predicted frame")
    add_set_argument(parser, "sampling.eta=1.0", "a sampling setting of the model (sampling.*; the flags "
                                                 "above take precedence)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    add_threads_argument(parser)
    parser.add_argument("--no-gallery", action="store_true", help="skip the gallery PNG")
    parser.add_argument("--no-progress", action="store_true")


def _sampling_config(base, args):
    from dataclasses import replace

    # An explicit --temperature is the temperature of whichever mode runs.
    updates = {"num_steps": args.steps, "temperature": args.temperature, "eta": args.eta,
               "inverse_fold_temperature": args.temperature,
               "purity": args.purity, "so3_jump_weight": args.so3_jump_weight,
               "so3_jump_source": args.so3_jump_source}
    return replace(base, **{k: v for k, v in updates.items() if v is not None})


def _inputs(args):
    """Validated (lengths, sequence, backbone frames, notes) for the chosen mode."""
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.sample_inputs import check_sequence, design_target

    if args.mode == "fold":
        sequence = check_sequence(args.sequence)
        return [len(sequence)], sequence, None, []
    if args.mode == "inverse-fold":
        if not args.pdb:
            raise UserError("inverse-fold mode needs --pdb")
        if args.min_length < 1:
            raise UserError("--min-length must be >= 1")
        target, left_out = design_target(args.pdb, args.chain, args.min_length)
        notes = [f"designing chain {target.chain_id} of {target.source} ({len(target)} residues)", *left_out]
        return [len(target)], None, target.frames(), notes
    if any(length < 2 for length in args.lengths):
        raise UserError("--lengths must be >= 2")
    return args.lengths, None, None, []


def run(args) -> int:
    import torch

    from multiflow_gm.cli.common import set_torch_threads
    from multiflow_gm.config import with_overrides
    from multiflow_gm.errors import MissingResourceError, UserError
    from multiflow_gm.protein.sample_writer import SampleJob, run_sampling
    from multiflow_gm.protein.sampling import check_jump_support
    from multiflow_gm.protein.model_file import load_codesign

    set_torch_threads(args.threads)
    ckpt = args.ckpt or DEFAULT_MODEL
    if args.ckpt is None and not DEFAULT_MODEL.is_file():
        raise MissingResourceError(f"no --ckpt given and the shipped model is missing at {DEFAULT_MODEL}")
    if args.num < 1 or args.batch_size < 1:
        raise UserError("--num and --batch-size must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    lengths, sequence, backbone, notes = _inputs(args)
    for note in notes:
        print(f"note: {note}")
    network, process, cfg, _ = load_codesign(ckpt, args.device)
    cfg = with_overrides(cfg, args.overrides, ("sampling.",))
    try:
        sampling = _sampling_config(cfg.sampling, args)
    except ValueError as err:
        raise UserError(str(err)) from None
    check_jump_support(network, process, sampling)
    job = SampleJob(lengths=lengths, num=args.num, out=args.out, mode=args.mode, seed=args.seed,
                    batch_size=args.batch_size, sequence=sequence, backbone=backbone, device=args.device)
    print(f"model {ckpt} | mode {args.mode} | {args.num} x lengths {lengths} | {sampling.num_steps} steps")
    summary = run_sampling(network, process, sampling, job, progress=not args.no_progress)
    if not args.no_gallery:
        _gallery(args.out)
    print(f"{summary['samples']} samples in {args.out / 'samples'} ({summary['drawn_this_run']} drawn now, "
          f"{summary['seconds_this_run']:.0f} s); sequences in {args.out / 'samples.fasta'}")
    # The first note names the chain used; any further one says what was left out.
    left_out = len(notes) - 1 if args.mode == "inverse-fold" else 0
    if left_out:
        print(f"{left_out} part(s) of the input left out (see the notes above); exit status 3")
    return 3 if left_out else 0


def _gallery(out: Path) -> None:
    """CA-trace gallery of every sample in ``out``, from the CA arrays the sampler recorded
    (the PDB files are read back only for records written before they held the trace)."""
    from multiflow_gm.protein.evaluation.plots import ca_trace_gallery
    from multiflow_gm.protein.evaluation.secondary_structure import psea_states
    from multiflow_gm.protein.sample_writer import sample_traces

    traces = sample_traces(out)
    if traces is None:
        from multiflow_gm.protein.evaluation.samples import load_sample_directory

        chains, _ = load_sample_directory(out / "samples", min_length=1)
        traces = [(c.name, c.ca) for c in chains]
    states = [psea_states(ca) for _, ca in traces]
    path = ca_trace_gallery(traces, states, out / "gallery.png", "samples")
    print(f"gallery: {path}")
