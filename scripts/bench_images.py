"""Speed of the image benchmark's U-Net on this machine (issue 6 targets).

Measures, for the MNIST preset (28x28, batch 64, ~1.2M parameters):

* training images/s of a full step (batch, GM loss with exact binned jump targets,
  backward, AdamW, EMA) for the flow, jump and flow+jump networks;
* the jump-head cost ratio: jump (and flow+jump) step time over the flow step time;
* sampling seconds per step for 64 images: Euler flow, Euler jump, superposition
  (Euler) of the two-head network and of the two networks trained apart, and one Heun
  step of the mixed sampler (two evaluations).

``--device cuda --bf16`` times the same cases on a GPU under bfloat16 autocast.

Cases are interleaved in rounds and reported as medians, so a change of machine
load hits all of them alike. The load average is recorded: other processes on a
2-core machine make multi-threaded ops many times slower, so rerun when it is high.

    python scripts/bench_images.py --out results/images/bench_images.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from multiflow_gm.core import CondOTPath, seeded_generator, simulate, time_grid
from multiflow_gm.images.config import preset
from multiflow_gm.images.datasets import BatchSampler, load_dataset
from multiflow_gm.images.objective import training_losses
from multiflow_gm.images.sampling import MODELS, STATE, CountingGenerator, component_for
from multiflow_gm.runtime import tune_allocator
from multiflow_gm.training.ema import EMA
from multiflow_gm.images.networks import build_network

TARGETS = {"train_images_per_second": 110.0, "euler_seconds_per_step_64": 0.25, "jump_cost_ratio": 1.5}


def _autocast(device, bf16):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_case(config, network, data, device, bf16=False, channels_last=False):
    torch.manual_seed(0)
    net = build_network(config, network, data.image_shape).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    ema = EMA(net, 0.999)
    sampler = BatchSampler(data.train, config.train.batch_size, seeded_generator(0))
    noise = seeded_generator(1, device=device)
    path = CondOTPath()

    def step():
        x1 = sampler.next().to(device)
        if channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
        with _autocast(device, bf16):
            loss = training_losses(net, path, x1, noise, config.train.t_max)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update(net)
        _sync(device)
    return net, step


def _sample_case(net, model, batch, device, bf16=False):
    """``net``: one network, or ``{kind: network}`` for the two-network models."""
    spec = MODELS[model]
    component = component_for(spec.kinds, 0.5)
    g = seeded_generator(0, device=device)
    shape = next(iter(net.values())).image_shape if isinstance(net, dict) else net.image_shape
    x0 = torch.randn(batch, *shape, generator=g, device=device)
    grid = time_grid(2) * 0.5 if spec.method == "heun" else time_grid(1) * 0.5   # one step (Heun: 2 evals)

    @torch.no_grad()
    def step():
        fn = CountingGenerator(net, spec.kinds)
        with _autocast(device, bf16):
            simulate(fn, {STATE: x0}, {STATE: component}, grid, method=spec.method, generator=g)
        _sync(device)
    return step


def _steps(case: str, nfe: int) -> float:
    """Timed units per sample: Euler steps, or Heun steps (each timed call is one Heun step)."""
    return (nfe + 1) // 2 if case.startswith("mixed") else nfe


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/images/bench_images.json"))
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per case (median)")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per case and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="also time channels_last memory format")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (meant for GPUs)")
    args = parser.parse_args()
    tune_allocator()  # as the multiflow-gm command does
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = preset("mnist")
    data = load_dataset(config.data)
    load_before = os.getloadavg()

    train_cases, nets = {}, {}
    for network in ("flow", "jump", "flow_jump"):
        nets[network], train_cases[network] = _train_case(config, network, data, device, args.bf16)
        if args.channels_last:
            _, train_cases[f"{network}/channels_last"] = _train_case(config, network, data, device, args.bf16,
                                                                     channels_last=True)
    sample_cases = {
        "flow (Euler)": _sample_case(nets["flow"], "flow", 64, device, args.bf16),
        "jump (Euler)": _sample_case(nets["jump"], "jump", 64, device, args.bf16),
        "superposition (Euler)": _sample_case(nets["flow_jump"], "superposition", 64, device, args.bf16),
        "mixed (one Heun step = 2 evaluations)": _sample_case(nets["flow_jump"], "mixed", 64, device, args.bf16),
        "superposition of two networks (Euler)": _sample_case({"flow": nets["flow"], "jump": nets["jump"]},
                                                              "superposition-2net", 64, device, args.bf16),
    }
    for fn in [*train_cases.values(), *sample_cases.values()]:   # warm-up (allocator, kernels)
        fn()
    train_times = {k: [] for k in train_cases}
    sample_times = {k: [] for k in sample_cases}
    for _ in range(args.rounds):
        for name, fn in train_cases.items():
            train_times[name] += [_timed(fn) for _ in range(args.steps)]
        for name, fn in sample_cases.items():
            sample_times[name] += [_timed(fn) for _ in range(args.steps)]
    batch = config.train.batch_size
    train_med = {k: statistics.median(v) for k, v in train_times.items()}
    result = {
        "config": "mnist preset (28x28, batch 64)",
        "parameters": {n: sum(p.numel() for p in net.parameters()) for n, net in nets.items()},
        "device": str(device), "bf16_autocast": args.bf16,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "train_step_seconds_median": {k: round(v, 4) for k, v in train_med.items()},
        "train_images_per_second": {k: round(batch / v, 1) for k, v in train_med.items()},
        "jump_cost_ratio": {k: round(v / train_med["flow"], 3) for k, v in train_med.items() if k != "flow"},
        "sampling_seconds_per_step_64_images": {k: round(statistics.median(v), 4)
                                                for k, v in sample_times.items()},
        # Images per second for a whole sample at NFE 20 / 50 / 100 (Heun: NFE // 2 + 1 steps).
        "sampling_images_per_second": {
            k: {nfe: round(64 / (statistics.median(v) * _steps(k, nfe)), 2) for nfe in (20, 50, 100)}
            for k, v in sample_times.items()},
        "targets": TARGETS, "rounds": args.rounds, "steps_per_round": args.steps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(result, indent=2))
    if max(result["load_average_before"][0], result["load_average_after"][0]) > 2.5:
        print("note: load average above 2.5 while measuring; other processes share the cores, rerun later")


if __name__ == "__main__":
    main()
