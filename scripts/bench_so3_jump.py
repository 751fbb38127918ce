"""Cost of a jump-superposed SO(3) sampling step against a flow-only step.

Builds the shipped model size (``configs/protein/small.yaml``) on the isotropic rotation path
with the jump head (random weights: timing does not depend on training) and times
``sample_batch`` at one length for the flow alone, the flow + learned jump, and the flow +
closed-form (plug-in) jump. Each setting runs ``--repeats`` times; the per-step time is the
median over repeats of (wall time / steps). JSON out.

    python scripts/bench_so3_jump.py --length 100 --num 4 --steps 20 --threads 1 --out results/bench_so3_jump.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETTINGS = {"flow": (0.0, "head"), "flow+jump (head)": (0.5, "head"), "flow+jump (plug-in)": (0.5, "plugin")}


def main(argv=None) -> int:
    import torch

    from multiflow_gm.atomic_files import atomic_write_bytes
    from multiflow_gm.config import load_config
    from multiflow_gm.core import seeded_generator
    from multiflow_gm.protein.model.network import CoDesignNetwork
    from multiflow_gm.protein.process import CoDesignProcess
    from multiflow_gm.protein.sampling import SamplingConfig, sample_batch
    from multiflow_gm.training.protein.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "protein" / "small.yaml")
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--num", type=int, default=4, help="samples drawn together")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_so3_jump.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = load_config(TrainConfig, args.config, ["process.rotation_path=isotropic", "process.so3_jump=true",
                                                 "model.so3_jump_head=true"])
    torch.manual_seed(0)
    network = CoDesignNetwork(cfg.model).eval()
    process = CoDesignProcess(cfg.process)
    per_step = {}
    for name, (weight, source) in SETTINGS.items():
        sampling = SamplingConfig(num_steps=args.steps, so3_jump_weight=weight, so3_jump_source=source)
        sample_batch(network, process, sampling, args.num, args.length, generator=seeded_generator(0))
        times = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            sample_batch(network, process, sampling, args.num, args.length,
                         generator=seeded_generator(repeat))
            times.append((time.perf_counter() - start) / args.steps)
        per_step[name] = {"median_s": statistics.median(times), "all_s": times}
    flow = per_step["flow"]["median_s"]
    result = {"length": args.length, "num": args.num, "steps": args.steps, "repeats": args.repeats,
              "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
              "per_step": per_step,
              "ratio_to_flow": {name: v["median_s"] / flow for name, v in per_step.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(result, indent=1) + "\n").encode())
    for name, v in per_step.items():
        print(f"{name:22s} {1000 * v['median_s']:8.1f} ms/step  x{v['median_s'] / flow:.2f} of flow")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
