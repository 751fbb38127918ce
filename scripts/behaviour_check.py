"""Record numbers that must not move under a refactor, and compare two recordings.

    python scripts/behaviour_check.py record --root /path/to/checkout --out before.json
    python scripts/behaviour_check.py compare before.json after.json

``record`` imports ``multiflow_gm`` from ``--root`` (it refuses to run if another copy
would be imported) and writes, with fixed seeds:

* ``sample/cli/*``: ``multiflow-gm sample`` with the shipped model, 2 samples of 60
  residues, few steps (backbone atoms from the PDBs, Angstrom, 3 decimals; sequence letters);
* ``sample/direct/*``: the same sampler called in process at full precision, in codesign, fold and
  inverse-fold mode, and on the isotropic rotation path with a plug-in SO(3) jump;
* ``train/*``: the logged losses of the first 3 optimiser steps of the protein trainer
  (tiny config on a local cache), geodesic and isotropic-with-jump-head;
* ``losses/*``: ``codesign_losses`` and the corrupted state on a fixed synthetic batch for
  the geodesic (uniform and IGSO3 prior) and isotropic rotation paths.

``compare`` prints the largest absolute difference per entry and overall.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

NUM_STEPS = 8
LENGTH = 60


def _import_from(root: Path):
    sys.path.insert(0, str(root))
    import multiflow_gm

    where = Path(multiflow_gm.__file__).resolve()
    if root.resolve() not in where.parents:
        raise SystemExit(f"multiflow_gm imported from {where}, not from {root}; set PYTHONPATH={root}")
    return where


def _flat(tensor) -> list:
    return tensor.detach().cpu().double().flatten().tolist()


def record_cli_sampling(root: Path) -> dict:
    """Run ``multiflow-gm sample`` and read its PDB atoms and FASTA sequences back."""
    from multiflow_gm.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["sample", "--lengths", str(LENGTH), "--num", "2", "--steps", str(NUM_STEPS), "--seed", "3",
                "--out", tmp, "--no-gallery", "--no-progress", "--threads", "1"]
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        if status != 0:
            raise SystemExit(f"multiflow-gm sample exited with {status}")
        out = {}
        for pdb in sorted(Path(tmp, "samples").glob("*.pdb")):
            coords = [float(v) for line in pdb.read_text().splitlines() if line.startswith("ATOM")
                      for v in (line[30:38], line[38:46], line[46:54])]
            out[f"sample/cli/{pdb.stem}/atoms"] = coords
        fasta = Path(tmp, "samples.fasta").read_text()
        sequences = [s for s in re.split(r">.*\n", fasta) if s.strip()]
        for i, seq in enumerate(sequences):
            # Letters as code points: independent of the package's residue alphabet module.
            out[f"sample/cli/seq{i}"] = [float(ord(c)) for c in seq.replace("\n", "")]
    return out


def _angstrom_sample(res, process) -> dict:
    """``rotations``, ``translations`` (Angstrom) and ``aatype`` of a sampled batch: checkouts from
    before the typed frame batch return this dict, later ones a ``FrameBatch`` in nm."""
    if isinstance(res, dict):
        return res
    from multiflow_gm.protein.coordinates import ca_angstrom

    return {"rotations": res.rotations, "translations": ca_angstrom(res, process.cfg.translation_scale),
            "aatype": res.aatype}


def record_direct_sampling() -> dict:
    """Full-precision frames and sequences from ``sample_batch`` in every mode."""
    import torch

    from multiflow_gm.cli.commands.sample import DEFAULT_MODEL
    from multiflow_gm.protein.model_file import load_codesign
    from multiflow_gm.protein.process import CoDesignProcess
    from multiflow_gm.protein.sampling import sample_batch

    torch.set_num_threads(1)
    network, process, cfg, _ = load_codesign(DEFAULT_MODEL, "cpu")
    network.eval()
    base = replace(cfg.sampling, num_steps=NUM_STEPS)
    out = {}

    def run(name, proc, sampling, mode="codesign", **kwargs):
        g = torch.Generator().manual_seed(11)
        res = _angstrom_sample(sample_batch(network, proc, sampling, 2, LENGTH, mode, generator=g, **kwargs), proc)
        for key, value in res.items():
            out[f"sample/direct/{name}/{key}"] = _flat(value)
        return res

    first = run("codesign", process, base)
    run("codesign_eta_purity", process, replace(base, eta=0.5, purity=True, temperature=0.7))
    run("fold", process, base, "fold", sequence=first["aatype"][0])
    backbone = (first["rotations"][0], first["translations"][0])
    run("inverse_fold", process, base, "inverse-fold", backbone=backbone)
    isotropic = CoDesignProcess(replace(process.cfg, rotation_path="isotropic"))
    run("isotropic_jump", isotropic, replace(base, so3_jump_weight=0.5, so3_jump_source="plugin"))
    run("isotropic_flow", isotropic, base)
    return out


def record_training(root: Path, cache: Path) -> dict:
    """Losses of the first 3 optimiser steps (tiny config), geodesic and isotropic + jump head."""
    from multiflow_gm.config import load_config
    from multiflow_gm.training.plots import read_metrics
    try:
        from multiflow_gm.training.protein.config import TrainConfig
        from multiflow_gm.training.protein.trainer import train
    except ImportError:  # checkouts from before training/protein/ existed
        from multiflow_gm.training.protein_config import TrainConfig
        from multiflow_gm.training.protein_trainer import train

    arms = {"geodesic": [], "igso3": ["process.rotation_train_prior=igso3"],
            "isotropic_jump": ["process.rotation_path=isotropic", "process.so3_jump=true",
                               "model.so3_jump_head=true"]}
    common = ["trainer.max_steps=3", "trainer.log_every=1", "trainer.threads=1", "trainer.checkpoint_every=1000",
              "validation.every_steps=0", "data.num_workers=0", "data.use_split=false"]
    out = {}
    for arm, overrides in arms.items():
        cfg = load_config(TrainConfig, root / "configs" / "protein" / "tiny.yaml", [*common, *overrides])
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            train(cfg, cache, Path(tmp) / "run", enable_progress_bar=False)
            metrics = read_metrics(Path(tmp) / "run" / "logs" / "metrics.csv")
        for key, series in sorted(metrics.items()):
            if key.startswith("train/") and "time" not in key and "lr" not in key:
                out[f"train/{arm}/{key[6:]}"] = [v for _, v in series]
    return out


def _synthetic_batch(torch, so3, generator, batch=4, length=12):
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1, 9:] = False
    mask[3, 5:] = False
    return {"residue_mask": mask.float(),
            "translations": 10 * torch.randn(batch, length, 3, generator=generator),
            "rotations": so3.uniform((batch, length), generator=generator),
            "aatype": torch.randint(0, 21, (batch, length), generator=generator),
            "residue_index": torch.arange(length).expand(batch, length)}


def _clean_frames(batch: dict, process):
    """What ``corrupt`` takes: the collated dict in checkouts from before the typed frame batch,
    its ``FrameBatch`` (nm) in later ones."""
    try:
        from multiflow_gm.protein.coordinates import frame_batch_from_collated
    except ImportError:
        return batch
    return frame_batch_from_collated(batch, process.cfg.translation_scale)


def record_losses() -> dict:
    """``codesign_losses`` and ``corrupt`` on a fixed batch, per rotation path."""
    import torch

    from multiflow_gm.core import so3
    from multiflow_gm.protein.losses import LossConfig, codesign_losses
    from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig

    variants = {"geodesic": ProcessConfig(),
                "geodesic_igso3": ProcessConfig(rotation_train_prior="igso3"),
                "isotropic": ProcessConfig(rotation_path="isotropic", so3_jump=True)}
    loss_cfg = LossConfig(clash_weight=0.5, aux_time_weight=True, aux_pairs="all")
    out = {}
    for name, process_cfg in variants.items():
        g = torch.Generator().manual_seed(5)
        batch = _synthetic_batch(torch, so3, g)
        process = CoDesignProcess(process_cfg)
        t_struct = torch.tensor([0.05, 0.5, 0.95, 1.0])
        t_seq = torch.tensor([0.3, 1.0, 0.7, 0.2])
        noisy = process.corrupt(_clean_frames(batch, process), t_struct, t_seq, g)
        b, length = batch["aatype"].shape
        pred = {"translations": noisy["trans_1"] + 0.1 * torch.randn(b, length, 3, generator=g),
                "rotations": so3.uniform((b, length), generator=g),
                "logits": torch.randn(b, length, 21, generator=g),
                "jump_intensity": torch.rand(b, length, generator=g) * 3}
        if name != "isotropic":
            del pred["jump_intensity"]
        for key in ("trans_t", "rot_t", "aatype_t"):
            out[f"losses/{name}/noisy/{key}"] = _flat(noisy[key])
        for key, value in codesign_losses(process, noisy, pred, loss_cfg).items():
            out[f"losses/{name}/{key}"] = _flat(value)
    return out


def record(args) -> None:
    root = Path(args.root).resolve()
    where = _import_from(root)
    result = {"_package": str(where)}
    result |= record_losses()
    if not args.skip_sampling:
        result |= record_direct_sampling()
        result |= record_cli_sampling(root)
    if not args.skip_training:
        result |= record_training(root, Path(args.cache).resolve())
    Path(args.out).write_text(json.dumps(result))
    print(f"{len(result) - 1} entries from {where} -> {args.out}")


def compare(args) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (args.first, args.second))
    worst, problems = 0.0, []
    for key in sorted(set(a) | set(b)):
        if key.startswith("_"):
            continue
        if key not in a or key not in b:
            problems.append(f"{key}: only in {'first' if key in a else 'second'}")
            continue
        if len(a[key]) != len(b[key]):
            problems.append(f"{key}: {len(a[key])} vs {len(b[key])} values")
            continue
        diff = max((abs(x - y) for x, y in zip(a[key], b[key])), default=0.0)
        worst = max(worst, diff)
        print(f"{diff:10.3g}  {key}  ({len(a[key])} values)")
    for line in problems:
        print("MISMATCH", line)
    print(f"max abs difference over all entries: {worst:.3g}; {len(problems)} mismatched entries")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--root", required=True, help="repository root whose multiflow_gm is measured")
    rec.add_argument("--out", required=True)
    rec.add_argument("--cache", default="cache/all", help="preprocessed chain cache for the training steps")
    rec.add_argument("--skip-sampling", action="store_true")
    rec.add_argument("--skip-training", action="store_true")
    cmp = sub.add_parser("compare")
    cmp.add_argument("first")
    cmp.add_argument("second")
    args = parser.parse_args()
    if args.command == "record":
        record(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
