"""Benchmark the co-design network: forward / forward+backward time, peak memory, sampling
speed, sparse long-chain sampling, and achieved GFLOP/s; JSON out.

Every measurement runs in a fresh subprocess (so peak RSS is that measurement's),
with ``torch.set_num_threads(--threads)``, float32 and random valid inputs, and
reports the median of ``--repeats`` runs after a warm-up.

    python scripts/bench_protein.py --out results/bench_protein.json
    python scripts/bench_protein.py --quick            # fewer lengths, fewer repeats
    python scripts/bench_protein.py --device cuda      # adds bf16 timings on a GPU
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# MultiFlow reference implementation on the same kind of 2-core machine (issue 4), seconds / GB.
REFERENCE = {"fwd_bwd_s": {100: 1.43, 200: 6.1, 400: 44.0}, "fwd_s": {100: 0.54, 200: 2.5, 400: 12.1},
             "peak_gb_fwd_bwd_400": 11.5, "sample_s_per_step_100": 0.52}


def _load_model(config_name: str, overrides: list[str], device: str):
    import torch

    from multiflow_gm.config import load_config
    from multiflow_gm.protein.model.network import CoDesignNetwork
    from multiflow_gm.protein.process import CoDesignProcess
    from multiflow_gm.training.protein.config import TrainConfig

    cfg = load_config(TrainConfig, REPO / "configs" / "protein" / f"{config_name}.yaml", overrides)
    torch.manual_seed(0)
    return CoDesignNetwork(cfg.model).to(device), CoDesignProcess(cfg.process), cfg


def _inputs(length: int, device: str, batch: int = 1):
    import torch

    from multiflow_gm.core import seeded_generator, so3
    from multiflow_gm.protein.alphabet import NUM_MODEL_TOKENS

    g = seeded_generator(length)
    return dict(aatype=torch.randint(0, NUM_MODEL_TOKENS, (batch, length), generator=g).to(device),
                rotations=so3.uniform((batch, length), generator=g).to(device),
                translations=(torch.randn(batch, length, 3, generator=g) * 1.5).to(device),
                t_struct=torch.full((batch,), 0.5, device=device), t_seq=torch.full((batch,), 0.5, device=device),
                residue_index=torch.arange(length, device=device).expand(batch, length),
                residue_mask=torch.ones(batch, length, dtype=torch.bool, device=device))


def _sync(device):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, repeats, device, warmup=True):
    if warmup:
        fn()
        _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _peak_gb(device):
    import torch
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def _flops(fn):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def measure(task: dict) -> dict:
    """One measurement (runs inside a subprocess)."""
    import torch

    from multiflow_gm.runtime import tune_allocator

    tune_allocator()
    torch.set_num_threads(task["threads"])
    device = task["device"]
    net, process, cfg = _load_model(task["config"], task.get("overrides", []), device)
    length = task["length"]
    inputs = _inputs(length, device)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if task.get("bf16") else None
    out = {**task}
    if task["kind"] in ("fwd", "fwd_bwd"):
        net.train(task["kind"] == "fwd_bwd")

        def step():
            ctx = autocast or torch.enable_grad()
            if task["kind"] == "fwd":
                with torch.no_grad(), (autocast or torch.no_grad()):
                    net(**inputs)
                return
            with ctx:
                pred = net(**inputs)
                loss = pred["translations"].square().mean() + pred["rotations"].square().mean() + pred["logits"].mean()
            loss.backward()
            net.zero_grad(set_to_none=True)

        out["median_s"], out["all_s"] = _timed(step, task["repeats"], device)
        if not device.startswith("cuda"):
            out["gflop"] = _flops(step) / 1e9
            out["gflop_per_s"] = out["gflop"] / out["median_s"]
    elif task["kind"] == "sample":
        from multiflow_gm.core import seeded_generator
        from multiflow_gm.protein.sampling import SamplingConfig, sample_batch

        net.eval()
        steps = task["steps"]
        cfg_s = SamplingConfig(num_steps=steps)
        batch = task.get("batch", 1)

        def run():
            sample_batch(net, process, cfg_s, batch, length, generator=seeded_generator(0),
                         device=device)

        median, all_s = _timed(run, task["repeats"], device, warmup=task.get("warmup", True))
        out.update(median_s=median, all_s=all_s, s_per_step=median / steps,
                   s_per_protein_step=median / steps / batch, samples_per_s=batch / median)
    out["peak_gb"] = _peak_gb(device)
    out["parameters"] = sum(p.numel() for p in net.parameters())
    return out


def _run_isolated(task: dict) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(measure, (task,))


def matmul_gflops(threads: int) -> float:
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    median, _ = _timed(lambda: a @ b, 5, "cpu")
    return 2 * 2048 ** 3 / median / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_protein.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="lengths 100 and 200 only, 3 repeats")
    parser.add_argument("--sparse-steps", type=int, default=10,
                        help="steps actually run for the 1,000-residue sparse sample (time is per step x 200; "
                             "200 measures the whole sample directly)")
    parser.add_argument("--configs", nargs="+", default=["paper", "small"])
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    lengths = [100, 200] if args.quick else [100, 200, 400]
    base = {"threads": args.threads, "device": args.device, "repeats": repeats}
    results = {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
                           "load_average_start": os.getloadavg()},
               "reference_multiflow": REFERENCE, "runs": []}
    if args.device == "cpu":
        results["machine"]["matmul_gflop_per_s"] = matmul_gflops(args.threads)
    for config in args.configs:
        for length in lengths:
            for kind in ("fwd", "fwd_bwd"):
                results["runs"].append(_run_isolated({**base, "config": config, "length": length, "kind": kind}))
                _print(results["runs"][-1])
        for batch in (1, 8):  # 8 is the sample command's default --batch-size
            results["runs"].append(_run_isolated({**base, "config": config, "length": 100, "kind": "sample",
                                                  "steps": 20, "batch": batch}))
            _print(results["runs"][-1])
        sparse = _run_isolated({**base, "config": config, "length": 1000, "kind": "sample",
                                "steps": args.sparse_steps, "repeats": 1,
                                # A long run needs no warm-up pass; a 10-step one does.
                                "warmup": args.sparse_steps < 100,
                                "overrides": ["model.pair_mode=sparse", "model.knn=32"]})
        sparse["extrapolated_200_steps_min"] = sparse["s_per_step"] * 200 / 60
        results["runs"].append(sparse)
        _print(sparse)
        if args.device.startswith("cuda"):
            for length in (100, 200, 400, 1000):
                mode = ["model.pair_mode=sparse"] if length == 1000 else []
                results["runs"].append(_run_isolated({**base, "config": config, "length": length,
                                                      "kind": "fwd_bwd", "bf16": True, "overrides": mode}))
                results["runs"].append(_run_isolated({**base, "config": config, "length": length, "kind": "sample",
                                                      "steps": 20, "batch": 8, "bf16": True, "overrides": mode}))
                _print(results["runs"][-2]), _print(results["runs"][-1])
    results["machine"]["load_average_end"] = os.getloadavg()
    results["speedups_vs_multiflow"] = _speedups(results["runs"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from multiflow_gm.atomic_files import atomic_write_text

    atomic_write_text(args.out, json.dumps(results, indent=2))
    print(json.dumps(results["speedups_vs_multiflow"], indent=2))
    print(f"wrote {args.out}")


def _print(run):
    extra = f" {run['gflop_per_s']:.1f} GFLOP/s" if "gflop_per_s" in run else ""
    per_step = (f" ({run['s_per_step']:.3f} s/step, batch {run.get('batch', 1)})" if "s_per_step" in run
                else "")
    print(f"{run['config']:6s} L={run['length']:5d} {run['kind']:8s}{' bf16' if run.get('bf16') else ''}"
          f" median {run['median_s']:.3f} s{per_step}{extra}, peak {run['peak_gb']:.2f} GB", flush=True)


def _speedups(runs):
    out = {}
    for run in runs:
        if run["config"] != "paper" or run.get("bf16") or run["device"] != "cpu":
            continue
        if run["kind"] in ("fwd", "fwd_bwd") and run["length"] in REFERENCE[f"{run['kind']}_s"]:
            ref = REFERENCE[f"{run['kind']}_s"][run["length"]]
            out[f"{run['kind']}_{run['length']}"] = {"ours_s": run["median_s"], "multiflow_s": ref,
                                                     "speedup": ref / run["median_s"]}
        if run["kind"] == "sample" and run["length"] == 100:
            batch = run.get("batch", 1)
            key = "sample_step_100" if batch == 1 else f"sample_protein_step_100_batch{batch}"
            out[key] = {"ours_s": run["s_per_protein_step"], "multiflow_s": REFERENCE["sample_s_per_step_100"],
                        "speedup": REFERENCE["sample_s_per_step_100"] / run["s_per_protein_step"]}
        if run["kind"] == "fwd_bwd" and run["length"] == 400:
            out["peak_gb_fwd_bwd_400"] = {"ours_gb": run["peak_gb"], "multiflow_gb": REFERENCE["peak_gb_fwd_bwd_400"]}
        if run["kind"] == "sample" and run["length"] == 1000:
            out["sparse_1000_200_steps"] = {"minutes": run["extrapolated_200_steps_min"], "peak_gb": run["peak_gb"]}
    return out


if __name__ == "__main__":
    main()
