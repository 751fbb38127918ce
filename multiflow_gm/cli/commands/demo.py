"""``multiflow-gm demo``: exact marginal generators on a 2-D mixture, as a picture.

Simulates flow, jump and flow+jump superposition from N(0, I) to a 2-D Gaussian
mixture with the exact marginal generator of the CondOT path (no network), and
saves the trajectories and end points next to the target.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "demo"
HELP = "simulate exact flow / jump / superposition generators on a 2-D mixture and plot them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--samples", type=int, default=1500, help="particles per generator")
    parser.add_argument("--steps", type=int, default=150, help="time steps")
    parser.add_argument("--seed", type=int, default=0)


def _target(torch, seed):
    from multiflow_gm.core import CondOTPath, seeded_generator
    from multiflow_gm.core.marginal import AtomicTarget

    g = seeded_generator(seed)
    angles = torch.arange(6, dtype=torch.float64) * (2 * torch.pi / 6)
    centres = 3.0 * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    comp = torch.randint(0, 6, (300,), generator=g)
    atoms = centres[comp] + 0.3 * torch.randn(300, 2, dtype=torch.float64, generator=g)
    return AtomicTarget({"x": atoms}, torch.full((300,), 1 / 300, dtype=torch.float64),
                        {"x": CondOTPath()})


def run(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from tqdm import tqdm

    from multiflow_gm.atomic_files import atomic_save_figure, atomic_write_json
    from multiflow_gm.core import Component, FlowStep, JumpStep, seeded_generator, simulate, time_grid
    from multiflow_gm.core.statistics import energy_distance
    from multiflow_gm.errors import UserError

    if args.samples < 10 or args.steps < 2:
        raise UserError("--samples must be >= 10 and --steps >= 2")
    args.out.mkdir(parents=True, exist_ok=True)
    target = _target(torch, args.seed)
    reference = target.sample(args.samples, seeded_generator(args.seed + 1))["x"]
    generators = {
        "flow": (Component({"flow": FlowStep()}), ("flow",)),
        "jump": (Component({"jump": JumpStep()}), ("jump",)),
        "flow + jump (alpha = 0.5)": (Component({"flow": FlowStep(), "jump": JumpStep()},
                                                {"flow": 0.5, "jump": 0.5}), ("flow", "jump")),
    }
    fig, axes = plt.subplots(1, len(generators) + 1, figsize=(4.2 * (len(generators) + 1), 4.8))
    summary = {}
    for ax, (label, (component, kinds)) in zip(axes, generators.items()):
        def fn(x, t, kinds=kinds):
            params = {}
            if "flow" in kinds:
                params["flow"] = target.velocity("x", x, t)
            if "jump" in kinds:
                params["jump"] = target.jump("x", x, t)
            return {"x": params}

        g = seeded_generator(args.seed)
        x0 = torch.randn(args.samples, 2, dtype=torch.float64, generator=g)
        start = time.perf_counter()
        result = simulate(fn, {"x": x0}, {"x": component}, time_grid(args.steps), generator=g,
                          record_every=max(1, args.steps // 50),
                          progress=lambda r, label=label: tqdm(r, desc=label, leave=False))
        seconds = time.perf_counter() - start
        path = torch.stack([s["x"] for s in result.trajectory])          # [T, N, 2]
        stat = energy_distance(result.state["x"], reference)
        summary[label] = {"energy_distance": stat, "seconds": seconds}
        for i in range(min(60, args.samples)):
            ax.plot(path[:, i, 0], path[:, i, 1], lw=0.4, alpha=0.5, color="tab:blue")
        ax.scatter(*result.state["x"].T, s=1.5, color="black")
        ax.set_title(f"{label}\nenergy distance {stat:.4f}", fontsize=10)
    axes[-1].scatter(*reference.T, s=1.5, color="tab:red")
    axes[-1].set_title("target (2-D mixture)", fontsize=10)
    for ax in axes:
        ax.set_xlim(-5, 5), ax.set_ylim(-5, 5), ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    atomic_save_figure(fig, args.out / "demo.png", dpi=130)
    atomic_write_json(args.out / "demo.json", summary)
    for label, row in summary.items():
        print(f"{label:28s} energy distance {row['energy_distance']:.4f}  ({row['seconds']:.1f} s)")
    print(f"wrote {args.out / 'demo.png'} and {args.out / 'demo.json'}")
    return 0
