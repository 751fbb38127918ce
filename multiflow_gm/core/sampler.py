"""One simulation loop for any (superposed, product) generator (Euler or Heun steps).

A *component* is one factor of a product state space (e.g. translations,
rotations, residue types) with the generator kinds that move it and their
superposition weights. Each component has its own time grid, so products can
run with separate times (a constant grid freezes a component: fixing the
sequence time at 1 is folding). All grids have the same number of steps, and
the last step lands exactly on the grid's end for every component.

``generator_fn(x, t)`` receives the joint state ``{name: tensor}`` and times
``{name: 0-dim tensor}`` and returns ``{name: {kind: parameter}}``, each parameter being
what that kind's step takes (its ``takes``): for ``flow`` a velocity (:class:`FlowStep`) or a
clean-sample prediction (the steps a conditional path's ``prediction_step`` hands out), a
drift for ``diffusion``, :class:`JumpParams` for ``jump``, and for ``ctmc`` rates or the
posterior over clean tokens. Each component's parameters may depend on the whole state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from multiflow_gm.core.checks import check_weights_sum_to_one
from multiflow_gm.core.spaces.euclidean import EuclideanSpace

Weight = float | Callable[[float], float]
METHODS = ("euler", "heun")


@dataclass
class Component:
    """The generators that move one factor of the state.

    ``dynamics`` maps a kind to its step (``FlowStep``, ``JumpStep``, ...);
    ``weights`` maps the same kinds to constants or functions of t in [0, 1] that
    must sum to one (Markov superposition); with one kind it defaults to 1.
    """

    dynamics: Mapping[str, object]
    weights: Mapping[str, Weight] | None = None

    def __post_init__(self):
        if not self.dynamics:
            raise ValueError("a component needs at least one generator kind")
        if self.weights is None:
            if len(self.dynamics) > 1:
                raise ValueError(f"kinds {sorted(self.dynamics)} are superposed: give their weights")
            self.weights = {kind: 1.0 for kind in self.dynamics}
        if set(self.weights) != set(self.dynamics):
            raise ValueError(f"weights are for {sorted(self.weights)} but the generator kinds "
                             f"are {sorted(self.dynamics)}")
        self.weights_at(0.0)
        self.weights_at(1.0)

    def weights_at(self, t: float) -> dict[str, float]:
        values = {k: float(w(t)) if callable(w) else float(w) for k, w in self.weights.items()}
        check_weights_sum_to_one(values, name=f"superposition weights at t={t:.4g}")
        return values


@dataclass
class SimulationResult:
    state: dict[str, torch.Tensor]
    times: dict[str, torch.Tensor]
    trajectory: list[dict[str, torch.Tensor]] = field(default_factory=list)


def _check_grids(grids: Mapping[str, torch.Tensor], names) -> int:
    if set(grids) != set(names):
        raise ValueError(f"time_grids are for {sorted(grids)} but the components are {sorted(names)}")
    lengths = {name: g.numel() for name, g in grids.items()}
    if len(set(lengths.values())) != 1 or min(lengths.values()) < 2:
        raise ValueError(f"every time grid needs the same number (>= 2) of points; got {lengths}")
    for name, g in grids.items():
        if g.dim() != 1 or (g[1:] < g[:-1]).any() or g.min() < 0 or g.max() > 1:
            raise ValueError(f"time_grids[{name!r}] must be a non-decreasing 1-D grid in [0, 1]")
    return next(iter(lengths.values())) - 1


def simulate(generator_fn: Callable, x_init: Mapping[str, torch.Tensor],
             components: Mapping[str, Component], time_grids, method: str = "euler",
             generator: torch.Generator | None = None, record_every: int = 0,
             progress: Callable | None = None) -> SimulationResult:
    """Simulate from ``x_init`` along the time grids.

    ``time_grids``: one 1-D tensor for every component, or a dict of them.
    ``method``: ``euler``, or ``heun`` (second order for Euclidean flow parts; other
    kinds take Euler steps with the first evaluation; the last step is Euler,
    since the generator may be singular at t = 1).
    ``record_every``: keep a copy of the state every that many steps (0: none).
    ``progress``: optional callable wrapping the step range (e.g. tqdm).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if set(x_init) != set(components):
        raise ValueError(f"x_init has {sorted(x_init)} but the components are {sorted(components)}")
    if isinstance(time_grids, torch.Tensor):
        time_grids = {name: time_grids for name in components}
    grids = {name: g.detach().to("cpu", torch.float64) for name, g in time_grids.items()}
    num_steps = _check_grids(grids, components)
    x = dict(x_init)
    trajectory = [_snapshot(x)] if record_every else []
    steps = range(num_steps)
    for i in (progress(steps) if progress else steps):
        t = {name: g[i] for name, g in grids.items()}
        h = {name: float(g[i + 1] - g[i]) for name, g in grids.items()}
        is_last = i == num_steps - 1
        params = generator_fn(x, t)
        if method == "heun" and not is_last:
            params = _heun_corrected(generator_fn, x, t, h, params, components, grids, i)
        x = _euler_step(x, t, h, params, components, generator, is_last)
        if record_every and ((i + 1) % record_every == 0 or is_last):
            trajectory.append(_snapshot(x))
    final_t = {name: g[-1] for name, g in grids.items()}
    return SimulationResult(state=x, times=final_t, trajectory=trajectory)


def _euler_step(x, t, h, params, components, generator, is_last):
    new = {}
    for name, comp in components.items():
        state = x[name]
        weights = comp.weights_at(float(t[name]))
        comp_params = params.get(name, {})
        for kind, dyn in comp.dynamics.items():
            if weights[kind] == 0.0 or h[name] == 0.0:
                continue
            if kind not in comp_params:
                raise KeyError(f"generator_fn returned no {kind!r} parameter for component {name!r}")
            state = dyn.step(state, comp_params[kind], t[name], h[name], weights[kind],
                             generator=generator, is_last=is_last)
        new[name] = state
    return new


def _is_euclidean_flow(comp: Component) -> bool:
    flow = comp.dynamics.get("flow")
    return flow is not None and isinstance(getattr(flow, "space", None), EuclideanSpace)


def _heun_corrected(generator_fn, x, t, h, params, components, grids, i):
    """Replace Euclidean flow parameters by the average of the two Heun velocity evaluations.

    A flow step's parameter may be a velocity (``FlowStep``) or a clean-sample prediction
    (``X1FlowStep``); the average is taken over the velocities they imply and turned back
    into the step's own parameter at the left end.
    """
    heun_names = [n for n, c in components.items() if _is_euclidean_flow(c)]
    if not heun_names:
        return params
    t_next = {name: g[i + 1] for name, g in grids.items()}
    predicted, velocity = dict(x), {}
    for name in heun_names:
        flow = components[name].dynamics["flow"]
        w = components[name].weights_at(float(t[name]))["flow"]
        velocity[name] = flow.velocity(x[name], params[name]["flow"], t[name])
        predicted[name] = x[name] + (h[name] * w) * velocity[name]
    params2 = generator_fn(predicted, t_next)
    corrected = {name: dict(p) for name, p in params.items()}
    for name in heun_names:
        flow = components[name].dynamics["flow"]
        w_now = components[name].weights_at(float(t[name]))["flow"]
        w_next = components[name].weights_at(float(t_next[name]))["flow"]
        # The flow step multiplies by w(t); rescale so the step uses (w u)(t) and (w u)(t+h).
        ratio = w_next / w_now if w_now > 0 else 1.0
        velocity_next = flow.velocity(predicted[name], params2[name]["flow"], t_next[name])
        average = 0.5 * (velocity[name] + ratio * velocity_next)
        corrected[name]["flow"] = flow.parameter(x[name], average, t[name])
    return corrected


def _snapshot(x):
    return {k: v.detach().clone() for k, v in x.items()}
