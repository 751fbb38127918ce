"""``multiflow-gm sample``: co-design, folding or inverse folding with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "sample"
HELP = "generate protein backbones and sequences (PDB + FASTA) with a trained model"

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "codesign_small.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", type=Path, help="model (.safetensors export or training .ckpt); "
                                                  "default: the shipped small model")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100], help="residues per sample")
    parser.add_argument("--num", type=int, default=8, help="samples per length")
    parser.add_argument("--steps", type=int, help="time steps (default: the model's sampling config)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--mode", choices=("codesign", "fold", "inverse-fold"), default="codesign")
    parser.add_argument("--sequence", help="amino-acid sequence to fold (fold mode)")
    parser.add_argument("--pdb", type=Path, help="backbone to design a sequence for (inverse-fold mode)")
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
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; 1 is faster on a busy machine)")
    parser.add_argument("--no-gallery", action="store_true", help="skip the gallery PNG")
    parser.add_argument("--no-progress", action="store_true")


def _sampling_config(base, args):
    from dataclasses import replace

    updates = {"num_steps": args.steps, "temperature": args.temperature, "eta": args.eta,
               "purity": args.purity, "so3_jump_weight": args.so3_jump_weight,
               "so3_jump_source": args.so3_jump_source}
    return replace(base, **{k: v for k, v in updates.items() if v is not None})


def _inputs(args):
    """Validated (lengths, sequence, backbone) for the chosen mode."""
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein import residue_constants as rc

    if args.mode == "fold":
        if not args.sequence:
            raise UserError("fold mode needs --sequence")
        bad = sorted(set(args.sequence.upper()) - set(rc.AA_ORDER))
        if bad:
            raise UserError(f"--sequence has letters outside the 20 standard amino acids: {''.join(bad)}")
        return [len(args.sequence)], args.sequence.upper(), None
    if args.mode == "inverse-fold":
        if not args.pdb:
            raise UserError("inverse-fold mode needs --pdb")
        return _backbone_from_pdb(args.pdb)
    if any(length < 2 for length in args.lengths):
        raise UserError("--lengths must be >= 2")
    return args.lengths, None, None


def _backbone_from_pdb(path):
    import numpy as np
    import torch

    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.geometry import frames_from_backbone
    from multiflow_gm.protein.structure_io import read_chains

    result = read_chains(path)
    for chain in result.chains:
        atoms = np.asarray(chain.atoms, dtype=np.float64)
        complete = np.isfinite(atoms[:, :3]).all(axis=(1, 2))
        if complete.sum() >= 2:
            a = torch.from_numpy(atoms[complete]).float()
            rotations, translations = frames_from_backbone(a[:, 0], a[:, 1], a[:, 2])
            return [int(complete.sum())], None, (rotations, translations)
    reasons = "; ".join(p.reason for p in result.problems) or "no chain with a backbone"
    raise UserError(f"cannot read a backbone from {path}: {reasons}")


def run(args) -> int:
    import torch

    from multiflow_gm.errors import MissingResourceError, UserError
    from multiflow_gm.protein.sample_writer import SampleJob, run_sampling
    from multiflow_gm.training.checkpoints import load_codesign

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    ckpt = args.ckpt or DEFAULT_MODEL
    if args.ckpt is None and not DEFAULT_MODEL.is_file():
        raise MissingResourceError(f"no --ckpt given and the shipped model is missing at {DEFAULT_MODEL}")
    if args.num < 1 or args.batch_size < 1:
        raise UserError("--num and --batch-size must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    lengths, sequence, backbone = _inputs(args)
    network, process, cfg, _ = load_codesign(ckpt, args.device)
    try:
        sampling = _sampling_config(cfg.sampling, args)
    except ValueError as err:
        raise UserError(str(err)) from None
    job = SampleJob(lengths=lengths, num=args.num, out=args.out, mode=args.mode, seed=args.seed,
                    batch_size=args.batch_size, sequence=sequence, backbone=backbone, device=args.device)
    print(f"model {ckpt} | mode {args.mode} | {args.num} x lengths {lengths} | {sampling.num_steps} steps")
    summary = run_sampling(network, process, sampling, job, progress=not args.no_progress)
    if not args.no_gallery:
        _gallery(args.out)
    print(f"{summary['samples']} samples in {args.out / 'samples'} ({summary['drawn_this_run']} drawn now, "
          f"{summary['seconds_this_run']:.0f} s); sequences in {args.out / 'samples.fasta'}")
    return 0


def _gallery(out: Path) -> None:
    from multiflow_gm.protein.evaluation.plots import ca_trace_gallery
    from multiflow_gm.protein.evaluation.samples import load_sample_directory
    from multiflow_gm.protein.evaluation.secondary_structure import psea_states

    chains, _ = load_sample_directory(out / "samples")
    states = [psea_states(c.ca) for c in chains]
    path = ca_trace_gallery(chains, states, out / "gallery.png", "samples")
    print(f"gallery: {path}")
