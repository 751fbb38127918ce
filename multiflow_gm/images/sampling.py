"""Samplers of the image benchmark, all through the core's one simulation loop.

A *model* of the benchmark is a trained network plus a way to simulate it:

* ``flow``: the flow network, Euler steps;
* ``jump``: the jump network, Euler jump steps (jump with probability
  ``1 - exp(-h lambda)``, land in a bin drawn from the head, uniformly inside it);
* ``superposition``: the two-head network, ``alpha_t`` flow + ``(1 - alpha_t)`` jump, Euler;
* ``mixed``: the same superposition with Heun steps for the flow part and Euler
  steps for the jump part (the core's ``method="heun"``);
* ``superposition-2net`` / ``mixed-2net``: the same two samplers over the flow network and
  the jump network trained apart. Any convex combination of two generators of the same
  marginal path generates that path, so networks need not be trained together; each
  evaluation then runs both networks.

Controls: ``flow-heun`` (the flow network with Heun steps) and ``flow-head`` /
``jump-head`` (one head of the two-head network alone) separate the effect of the
sampler from that of training.

Number of function evaluations (NFE): Euler uses one per step; Heun two per step
except the last (an Euler step, since the generator may be singular at t = 1), so
an NFE budget ``n`` gives ``(n + 1) // 2`` Heun steps and ``2 steps - 1 <= n`` evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from multiflow_gm.core import BinnedLanding, Component, FlowStep, JumpParams, JumpStep, simulate, time_grid
from multiflow_gm.core.checks import check_weight
from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.images.heads import ImageGeneratorNet

STATE = "image"


@dataclass(frozen=True)
class ModelSpec:
    """``network``: which trained network (``flow+jump``: the flow and jump networks, one per
    kind); ``kinds``: the generator kinds simulated."""

    network: str
    kinds: tuple[str, ...]
    method: str = "euler"
    description: str = ""

    @property
    def sources(self) -> dict[str, str]:
        """The network that gives each kind's parameter."""
        if self.network == TWO_NETWORKS:
            return {kind: kind for kind in self.kinds}
        return {kind: self.network for kind in self.kinds}

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.sources.values()))


TWO_NETWORKS = "flow+jump"


MODELS: dict[str, ModelSpec] = {
    "flow": ModelSpec("flow", ("flow",), "euler", "flow network, Euler"),
    "jump": ModelSpec("jump", ("jump",), "euler", "jump network, Euler jumps"),
    "superposition": ModelSpec("flow_jump", ("flow", "jump"), "euler",
                               "two-head network, alpha flow + (1 - alpha) jump, Euler"),
    "mixed": ModelSpec("flow_jump", ("flow", "jump"), "heun",
                       "two-head network, superposition with Heun flow steps + Euler jump steps"),
    "superposition-2net": ModelSpec(TWO_NETWORKS, ("flow", "jump"), "euler",
                                    "flow network + jump network trained apart, alpha flow + (1 - alpha) jump, Euler"),
    "mixed-2net": ModelSpec(TWO_NETWORKS, ("flow", "jump"), "heun",
                            "flow network + jump network trained apart, Heun flow steps + Euler jump steps"),
    "flow-heun": ModelSpec("flow", ("flow",), "heun", "flow network, Heun (control)"),
    "flow-head": ModelSpec("flow_jump", ("flow",), "euler", "flow head of the two-head network (control)"),
    "jump-head": ModelSpec("flow_jump", ("jump",), "euler", "jump head of the two-head network (control)"),
}


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}")
    return MODELS[name]


def steps_for_nfe(nfe: int, method: str) -> tuple[int, int]:
    """``(steps, evaluations)`` for an NFE budget: Euler ``(n, n)``; Heun ``(k, 2k - 1)``."""
    if nfe < 1:
        raise ValueError(f"NFE must be >= 1; got {nfe}")
    if method == "euler":
        return nfe, nfe
    if method == "heun":
        steps = (nfe + 1) // 2
        return steps, 2 * steps - 1
    raise ValueError(f"unknown method {method!r}")


def linear_alpha(alpha0: float, alpha1: float) -> float | Callable[[float], float]:
    """The flow's superposition weight: constant, or linear from ``alpha0`` at t=0 to ``alpha1`` at t=1."""
    check_weight(alpha0, "alpha at t=0")
    check_weight(alpha1, "alpha at t=1")
    if alpha0 == alpha1:
        return float(alpha0)
    return lambda t: alpha0 + (alpha1 - alpha0) * float(t)


def component_for(kinds: tuple[str, ...], alpha=0.5) -> Component:
    """The core component simulating ``kinds``; a superposition needs the flow weight ``alpha``
    (a number or a function of t); the weights are validated by the core to sum to one."""
    if kinds == ("flow",):
        return Component({"flow": FlowStep()})
    if kinds == ("jump",):
        return Component({"jump": JumpStep()})
    if set(kinds) == {"flow", "jump"}:
        jump_weight = (lambda t: 1.0 - alpha(t)) if callable(alpha) else 1.0 - float(alpha)
        return Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": alpha, "jump": jump_weight})
    raise ValueError(f"kinds must be ('flow',), ('jump',) or ('flow', 'jump'); got {kinds}")


class CountingGenerator:
    """Wraps one network per generator kind as the core's ``generator_fn`` and counts its
    evaluations (one per call, whatever the number of networks) and network calls."""

    def __init__(self, nets: ImageGeneratorNet | dict[str, ImageGeneratorNet], kinds: tuple[str, ...]):
        nets = nets if isinstance(nets, dict) else {kind: nets for kind in kinds}
        for kind in kinds:
            if kind not in nets or kind not in nets[kind].kinds:
                heads = nets[kind].kinds if kind in nets else ()
                raise ValueError(f"the network for {kind!r} has heads {heads}; cannot simulate {kind!r}")
        self.nets, self.kinds, self.evaluations, self.network_calls = nets, kinds, 0, 0

    def __call__(self, x: dict, t: dict) -> dict:
        image = x[STATE]
        time = t[STATE].to(image.dtype).expand(image.shape[0])
        outputs = {}
        for net in dict.fromkeys(self.nets[kind] for kind in self.kinds):  # each network once
            outputs[id(net)] = net(image, time)
            self.network_calls += 1
        self.evaluations += 1
        params = {}
        if "flow" in self.kinds:
            params["flow"] = outputs[id(self.nets["flow"])].velocity
        if "jump" in self.kinds:
            net = self.nets["jump"]
            out = outputs[id(net)]
            params["jump"] = JumpParams(out.intensity, BinnedLanding(net.edges, out.log_probs.exp()))
        return {STATE: params}


@dataclass
class SampleResult:
    images: torch.Tensor          # [N, C, H, W], clamped to [-1, 1]
    evaluations: int              # generator evaluations per image batch (the NFE)
    steps: int
    seconds: float
    network_calls: int = 0        # network forward passes per image batch (2 per evaluation with two networks)


@torch.no_grad()
def sample_images(net: ImageGeneratorNet | dict[str, ImageGeneratorNet], spec: ModelSpec, num_images: int,
                  nfe: int, alpha=0.5, batch_size: int = 250, seed: int = 0,
                  progress: Callable | None = None) -> SampleResult:
    """Draw ``num_images`` from N(0, I) to t = 1 with the model's sampler at an NFE budget.

    ``net``: one network, or ``{kind: network}`` for a model over two networks (``spec.sources``).
    Runs on the networks' device (its random stream is seeded there); returns images on it.
    """
    import time as _time

    nets = net if isinstance(net, dict) else {kind: net for kind in spec.kinds}
    distinct = list(dict.fromkeys(nets.values()))
    steps, expected = steps_for_nfe(nfe, spec.method)
    component = component_for(spec.kinds, alpha)
    grid = time_grid(steps)
    device = distinct[0].edges.device
    generator = seeded_generator(seed, device=device)
    was_training = [n.training for n in distinct]
    for n in distinct:
        n.eval()
    start = _time.perf_counter()
    chunks, evaluations, calls = [], 0, 0
    try:
        for first in range(0, num_images, batch_size):
            count = min(batch_size, num_images - first)
            fn = CountingGenerator(nets, spec.kinds)
            x0 = torch.randn(count, *distinct[0].image_shape, generator=generator, device=device)
            result = simulate(fn, {STATE: x0}, {STATE: component}, grid, method=spec.method,
                              generator=generator, progress=progress)
            chunks.append(result.state[STATE].clamp(-1.0, 1.0))
            evaluations, calls = fn.evaluations, fn.network_calls
    finally:
        for n, mode in zip(distinct, was_training):
            n.train(mode)
    if evaluations != expected:
        raise RuntimeError(f"{spec.method} with {steps} steps evaluated the generator {evaluations} times; "
                           f"expected {expected}")
    return SampleResult(torch.cat(chunks), evaluations, steps, _time.perf_counter() - start, calls)
