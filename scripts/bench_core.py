"""Benchmark the core sampling loop against the bare tensor arithmetic of one step.

Cases: a 10^5-dimensional R^d flow + jump superposition and a CTMC
over 10^4 positions x 21 tokens. The generator returns fixed parameters so the
timings measure the loop and the step arithmetic, not a network.

    python scripts/bench_core.py --out results/bench_core.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from multiflow_gm.core import (BinnedLanding, Component, CTMCStep, FlowStep, JumpParams, JumpStep,
                               seeded_generator, simulate, time_grid)
from multiflow_gm.runtime import tune_allocator


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_superposition(dim, steps, repeats, bins=64):
    g = seeded_generator(0)
    velocity = torch.randn(dim, generator=g)
    intensity = torch.rand(dim, generator=g) * 0.5
    edges = torch.linspace(-1, 1, bins + 1)
    probs = torch.softmax(torch.randn(dim, bins, generator=g), -1)
    params = {"x": {"flow": velocity, "jump": JumpParams(intensity, BinnedLanding(edges, probs))}}
    comp = {"x": Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": 0.5, "jump": 0.5})}
    grid = time_grid(steps)
    x0 = torch.randn(dim, generator=g)

    def loop():
        simulate(lambda x, t: params, {"x": x0}, comp, grid, generator=g)

    def bare():
        x = x0
        h = 1.0 / steps
        for _ in range(steps):
            x = x + (h * 0.5) * velocity
            jumps = torch.rand(dim, generator=g) < -torch.expm1(-(h * 0.5) * intensity)
            idx = torch.multinomial(probs[jumps], 1, generator=g).squeeze(-1)
            lo = edges[idx]
            x = x.clone()
            x[jumps] = lo + torch.rand(idx.shape, generator=g) * (edges[idx + 1] - lo)
        return x

    return _report(loop, bare, steps, repeats)


def bench_ctmc(positions, tokens, steps, repeats):
    g = seeded_generator(1)
    mask = tokens - 1
    rates = torch.rand(1, positions, tokens, generator=g)
    x0 = torch.full((1, positions), mask)
    comp = {"s": Component({"ctmc": CTMCStep(mask_index=mask)})}
    grid = time_grid(steps)

    def loop():
        simulate(lambda x, t: {"s": {"ctmc": rates}}, {"s": x0}, comp, grid, generator=g)

    def bare():
        x = x0
        h = 1.0 / steps
        for i in range(steps):
            r = rates
            if i == steps - 1:
                r = r.clone()
                r[..., mask] = 0
            leave = torch.rand(x.shape, generator=g) < (h * r.sum(-1)).clamp(max=1.0)
            if i == steps - 1:
                leave |= x == mask
            x = x.clone()
            x[leave] = torch.multinomial(r[leave], 1, generator=g).squeeze(-1)
        return x

    return _report(loop, bare, steps, repeats)


def _report(loop, bare, steps, repeats):
    loop(), bare()  # warm-up
    t_loop = _median_seconds(loop, repeats)
    t_bare = _median_seconds(bare, repeats)
    return {"steps": steps, "loop_steps_per_s": steps / t_loop, "bare_steps_per_s": steps / t_bare,
            "loop_s_per_step": t_loop / steps, "bare_s_per_step": t_bare / steps,
            "loop_overhead": t_loop / t_bare - 1.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_core.json"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tune_allocator()  # as the multiflow-gm command does
    torch.set_num_threads(args.threads)
    result = {
        "machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                    "platform": platform.platform(), "load_average": os.getloadavg()},
        "flow_jump_superposition_1e5": bench_superposition(100_000, args.steps, args.repeats),
        "ctmc_1e4_positions_21_tokens": bench_ctmc(10_000, 21, args.steps, args.repeats),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from multiflow_gm.atomic_files import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=2))
    for name in ("flow_jump_superposition_1e5", "ctmc_1e4_positions_21_tokens"):
        r = result[name]
        print(f"{name:32s} {r['loop_steps_per_s']:8.1f} steps/s (bare {r['bare_steps_per_s']:8.1f}), "
              f"loop overhead {100 * r['loop_overhead']:+.1f}%")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
