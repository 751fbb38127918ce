"""Training throughput of a co-design config: optimiser steps/s and residues/s, split into
data loading, the self-conditioning pass, forward + loss, backward and the optimiser step.

The loop is the training step without Lightning (same corruption, losses, self-conditioning
draw, clipping, EMA), on real batches of a cache in the config's length window, so the
phases can be timed one by one; ``--lightning`` also times the real trainer for the same
number of steps to show what the framework costs. JSON out.

    python scripts/bench_train.py --data cache/all --threads 2 --steps 60 --out results/bench_train.json
    python scripts/bench_train.py --data cache/all --threads 2 --steps 60 trainer.precision=bf16-mixed
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _batches(cfg, cache_dir: Path, count: int):
    from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
    from multiflow_gm.protein.data.dataset import ProteinChainDataset
    from multiflow_gm.training.protein.data import training_chains

    d = cfg.data
    dataset = ProteinChainDataset(training_chains(cfg, cache_dir), seed=0, preload=True)
    sampler = LengthBatchSampler(dataset.lengths, squared_residue_budget=d.squared_residue_budget,
                                 max_batch_size=d.max_batch_size, mode=d.batching, seed=0, rank=0, world_size=1)
    for i, indices in enumerate(sampler):
        if i >= count:
            return
        start = time.perf_counter()
        batch = collate_chains([dataset[j] for j in indices])
        yield batch, time.perf_counter() - start


def time_phases(cfg, cache_dir: Path, steps: int, warmup: int) -> dict:
    import torch

    from multiflow_gm.config import to_dict
    from multiflow_gm.protein.losses import codesign_losses
    from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS
    from multiflow_gm.training.ema import EMA
    from multiflow_gm.protein.coordinates import frame_batch_from_collated
    from multiflow_gm.training.protein.module import CoDesignModule, step_generator

    module = CoDesignModule(to_dict(cfg))
    net = module.network.train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr)
    ema = EMA(net, cfg.optim.ema_decay)
    phases = {k: [] for k in ("data", "self_condition", "forward_loss", "backward", "optimizer")}
    # As Lightning's "bf16-mixed": forward passes and losses under bfloat16 autocast.
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.trainer.precision == "bf16-mixed")
    residues, total = [], []
    for step, (batch, data_s) in enumerate(_batches(cfg, cache_dir, steps + warmup)):
        g = step_generator(0, step, 0)
        t0 = time.perf_counter()
        size = batch["aatype"].shape[0]
        t_struct, t_seq, _ = module.process.sample_times(size, g)
        clean = frame_batch_from_collated(batch, module.process.cfg.translation_scale)
        noisy = module.process.corrupt(clean, t_struct, t_seq, g)
        sc = None
        t1 = time.perf_counter()
        if cfg.self_condition and torch.rand((), generator=g) < 0.5:
            with torch.no_grad(), autocast:
                first = net(**module._network_inputs(noisy))
            sc = (first["translations"], torch.softmax(first["logits"][..., :NUM_AMINO_ACIDS], -1))
        t2 = time.perf_counter()
        with autocast:
            pred = net(**module._network_inputs(noisy, sc))
            loss = codesign_losses(module.process, noisy, pred, cfg.loss)["total"].mean()
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(net)
        t5 = time.perf_counter()
        if step < warmup:
            continue
        for key, value in zip(phases, (data_s, t2 - t1, t3 - t2 + (t1 - t0), t4 - t3, t5 - t4)):
            phases[key].append(value)
        residues.append(int(batch["residue_mask"].sum()))
        total.append(data_s + t5 - t0)
    seconds = sum(total)
    return {"steps": len(total), "steps_per_s": len(total) / seconds, "residues_per_s": sum(residues) / seconds,
            "median_step_s": statistics.median(total), "mean_residues_per_batch": statistics.mean(residues),
            "phase_share": {k: sum(v) / seconds for k, v in phases.items()}}


def time_lightning(cfg_path: Path, overrides: list[str], cache_dir: Path, steps: int) -> dict:
    from multiflow_gm.config import load_config
    from multiflow_gm.training.protein.config import TrainConfig
    from multiflow_gm.training.protein.trainer import train

    cfg = load_config(TrainConfig, cfg_path, [*overrides, f"trainer.max_steps={steps}", "validation.every_steps=0",
                                              f"trainer.checkpoint_every={steps}", "data.preload=true"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(cfg, cache_dir, Path(tmp) / "run", enable_progress_bar=False)
    return {"steps": summary["steps"], "seconds_including_setup": summary["seconds"],
            "steps_per_s": summary["steps"] / summary["seconds"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "protein" / "small.yaml")
    parser.add_argument("--data", type=Path, required=True, help="preprocessed cache (its train split is used)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--lightning", action="store_true", help="also time the Lightning trainer")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="config overrides like loss.clash_weight=50")
    args = parser.parse_args(argv)

    import torch

    from multiflow_gm.config import load_config
    from multiflow_gm.runtime import tune_allocator
    from multiflow_gm.training.protein.config import TrainConfig

    tune_allocator()
    torch.set_num_threads(args.threads)
    cfg = load_config(TrainConfig, args.config, args.overrides)
    result = {"config": str(args.config.relative_to(REPO)) if args.config.is_relative_to(REPO) else str(args.config),
              "overrides": args.overrides, "threads": args.threads, "machine": platform.processor() or platform.machine(),
              "phases": time_phases(cfg, args.data, args.steps, args.warmup)}
    if args.lightning:
        result["lightning"] = time_lightning(args.config, args.overrides, args.data, args.steps)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        from multiflow_gm.atomic_files import atomic_write_bytes
        atomic_write_bytes(args.out, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
