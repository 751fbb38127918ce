"""The simulation loop: time bookkeeping, last step, CTMC options, Heun order."""

import math

import pytest
import torch

from multiflow_gm.core import (BinnedLanding, Component, CTMCStep, FlowStep, JumpParams,
                               JumpStep, simulate, time_grid)

F64 = torch.float64


def test_last_step_lands_exactly_at_one_for_every_component():
    seen = []

    def fn(x, t):
        seen.append({k: float(v) for k, v in t.items()})
        return {"a": {"flow": torch.ones_like(x["a"])}, "b": {"flow": torch.ones_like(x["b"])}}

    comps = {"a": Component({"flow": FlowStep()}), "b": Component({"flow": FlowStep()})}
    grid_a = time_grid(10)
    grid_b = time_grid(10, 0.3, 1.0) ** 2
    out = simulate(fn, {"a": torch.zeros(3, dtype=F64), "b": torch.zeros(3, dtype=F64)}, comps,
                   {"a": grid_a, "b": grid_b})
    assert out.times == {"a": 1.0, "b": 1.0}
    # Integrating a unit velocity advances each state by exactly its time span.
    assert torch.allclose(out.state["a"], torch.full((3,), 1.0, dtype=F64))
    assert torch.allclose(out.state["b"], torch.full((3,), 1.0 - 0.09, dtype=F64))
    assert len(seen) == 10 and seen[-1]["a"] == pytest.approx(0.9)


def test_constant_grid_freezes_a_component():
    comps = {"x": Component({"flow": FlowStep()}), "s": Component({"ctmc": CTMCStep()})}
    s0 = torch.randint(0, 4, (50, 7))

    def fn(x, t):
        assert float(t["s"]) == 1.0
        return {"x": {"flow": torch.ones_like(x["x"])}, "s": {"ctmc": torch.ones(50, 7, 4)}}

    out = simulate(fn, {"x": torch.zeros(50), "s": s0}, comps,
                   {"x": time_grid(5), "s": torch.ones(6, dtype=F64)})
    assert torch.equal(out.state["s"], s0)


@pytest.mark.parametrize("method", ["euler", "tau_leaping"])
def test_no_mask_token_left_even_with_remasking_and_small_rates(method):
    mask = 4
    comps = {"s": Component({"ctmc": CTMCStep(method=method, mask_index=mask)})}

    def fn(x, t):
        # Tiny rates everywhere, plus a large re-masking rate: only the last-step rule saves us.
        rates = torch.full((*x["s"].shape, 5), 1e-3, dtype=F64)
        rates[..., mask] = 50.0
        rates = rates * (1 - torch.nn.functional.one_hot(x["s"], 5))
        return {"s": {"ctmc": rates}}

    out = simulate(fn, {"s": torch.full((200, 30), mask)}, comps, time_grid(8))
    assert not (out.state["s"] == mask).any()


def test_purity_unmasks_the_most_confident_positions():
    torch.manual_seed(0)
    step = CTMCStep(mask_index=3, purity=True)
    x = torch.full((1, 6), 3)
    confidence = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.3, 0.7], dtype=F64)
    rates = torch.zeros(1, 6, 4, dtype=F64)
    rates[0, :, 0] = confidence
    # h * out-rate = 0.5 * confidence; whatever the count drawn, the chosen are the top ones.
    for _ in range(20):
        new = step.step(x, rates, torch.tensor(0.5), 0.5, 1.0)
        moved = (new[0] != 3).nonzero().flatten().tolist()
        k = len(moved)
        top = confidence.argsort(descending=True)[:k].tolist()
        assert sorted(moved) == sorted(top)


def test_jump_probability_is_one_minus_exp():
    step = JumpStep()
    n = 200000
    x = torch.zeros(n, dtype=F64)
    landing = BinnedLanding(torch.tensor([1.0, 2.0], dtype=F64), torch.ones(n, 1, dtype=F64))
    new = step.step(x, JumpParams(torch.full((n,), 3.0, dtype=F64), landing), torch.tensor(0.0), 0.2, 0.5)
    frac = (new != 0).double().mean().item()
    assert abs(frac - (1 - math.exp(-0.2 * 0.5 * 3.0))) < 0.005
    assert ((new == 0) | ((new >= 1) & (new < 2))).all()


def test_heun_is_second_order_and_euler_first_order():
    # dx/dt = x t on [0, 1]: x(1) = x0 exp(1/2).
    comps = {"x": Component({"flow": FlowStep()})}
    fn = lambda x, t: {"x": {"flow": x["x"] * t["x"]}}  # noqa: E731
    exact = math.exp(0.5)

    def error(steps, method):
        # Heun takes an Euler last step; use a grid ending just short of 1 to see pure order.
        out = simulate(fn, {"x": torch.ones(1, dtype=F64)}, comps,
                       torch.linspace(0, 1, steps + 1, dtype=F64), method=method)
        return abs(out.state["x"].item() - exact)

    euler_ratio = error(40, "euler") / error(80, "euler")
    heun_ratio = error(40, "heun") / error(80, "heun")
    assert 1.8 < euler_ratio < 2.2
    assert heun_ratio > 2.5 and error(80, "heun") < error(80, "euler") / 10


def test_zero_weight_kind_is_skipped_and_trajectory_recorded():
    calls = []

    def fn(x, t):
        calls.append(1)
        return {"x": {"flow": torch.ones_like(x["x"])}}  # no jump parameter at all

    comp = Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": 1.0, "jump": 0.0})
    out = simulate(fn, {"x": torch.zeros(4, dtype=F64)}, {"x": comp}, time_grid(6), record_every=2)
    assert len(out.trajectory) == 4  # initial state + steps 2, 4, 6
    assert torch.allclose(out.state["x"], torch.ones(4, dtype=F64))


@pytest.mark.parametrize("rate", [1.0, 10.0])
def test_x1_flow_step_integrates_the_schedule_exactly(rate):
    from multiflow_gm.core import ExponentialRateScheduler, LinearScheduler, SO3Space, X1FlowStep, so3

    scheduler = LinearScheduler() if rate == 1.0 else ExponentialRateScheduler(rate)
    r0, r1 = so3.uniform((50,), dtype=F64), so3.uniform((50,), dtype=F64)
    comps = {"r": Component({"flow": X1FlowStep(SO3Space(), scheduler)})}
    grid = time_grid(7)
    # With a constant prediction the path is the geodesic at alpha(t): check midway and at the end.
    out = simulate(lambda x, t: {"r": {"flow": r1}}, {"r": r0}, comps, grid[:4])
    expected = so3.geodesic(r0, r1, torch.full((50,), float(scheduler(grid[3]).alpha), dtype=F64))
    assert torch.allclose(out.state["r"], expected, atol=1e-10)
    end = simulate(lambda x, t: {"r": {"flow": r1}}, {"r": r0}, comps, grid)
    assert torch.allclose(end.state["r"], r1, atol=1e-10)


def test_heun_with_a_clean_sample_prediction_integrates_the_implied_velocity():
    """CondOT from N(0, 1) to N(mu, s^2) in 1-D: the marginal flow map is
    x_t = t mu + sqrt((1 - t)^2 + t^2 s^2) x0.

    The posterior mean E[x1 | x_t] drives an X1FlowStep; its Heun steps must match Heun on
    the velocity it implies, and be far more accurate than Euler. The old treatment of the
    prediction as a velocity is the wrong control.
    """
    from multiflow_gm.core import LinearScheduler, X1FlowStep

    mu, s = 2.0, 0.5

    def x1_mean(x, t):
        var = (1 - t) ** 2 + (t * s) ** 2
        return mu + (t * s ** 2) * (x - t * mu) / var

    def velocity(x, t):
        return (x1_mean(x, t) - x) / (1 - t)

    x0 = torch.linspace(-2, 2, 9, dtype=F64)
    end = 0.99
    exact = end * mu + ((1 - end) ** 2 + (end * s) ** 2) ** 0.5 * x0  # the marginal flow map at `end`
    as_x1 = {"x": Component({"flow": X1FlowStep(FlowStep().space, LinearScheduler())})}
    as_velocity = {"x": Component({"flow": FlowStep()})}

    def run(comps, fn, method, steps=20):
        return simulate(lambda x, t: {"x": {"flow": fn(x["x"], float(t["x"]))}}, {"x": x0}, comps,
                        time_grid(steps, 0.0, end), method=method).state["x"]

    def error(method, steps):
        return float((run(as_x1, x1_mean, method, steps) - exact).abs().max())

    assert torch.allclose(run(as_x1, x1_mean, "heun"), run(as_velocity, velocity, "heun"), atol=1e-10)
    # Second order: doubling the steps divides Heun's error by about 4 and Euler's by about 2.
    assert error("heun", 20) / error("heun", 40) > 3.5
    assert error("euler", 20) / error("euler", 40) < 2.5
    assert error("heun", 20) < 0.1 * error("euler", 20)

    # Control: averaging a clean-sample prediction as if it were a velocity lands elsewhere.
    def wrong_fn(x, t):
        return x1_mean(x, t)
    wrong = run(as_velocity, wrong_fn, "heun")
    assert (wrong - exact).abs().max() > 0.1
