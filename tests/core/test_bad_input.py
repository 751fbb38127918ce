"""Bad input raises a clear error naming the argument and what was expected."""

import pytest
import torch

from multiflow_gm.core import (Component, CondOTPath, CTMCStep, FlowStep, GeodesicSO3Path,
                               JumpStep, MixtureTokenPath, simulate, so3, time_grid)


def test_times_outside_unit_interval():
    path = CondOTPath()
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        path.draw(x, 1.5, x0=x)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        path.velocity(x, x, torch.tensor([0.1, -0.2, 0.3]))


def test_wrong_shapes():
    path = CondOTPath()
    with pytest.raises(ValueError, match="x0 and x1 must have the same shape"):
        path.draw(torch.zeros(3, 4), 0.5, x0=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="t of shape"):
        path.velocity(torch.zeros(3, 2), torch.zeros(3, 2), torch.full((5,), 0.5))
    tokens = MixtureTokenPath(4, "mask")
    with pytest.raises(ValueError, match="x1_probs must have shape"):
        tokens.rates(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, 5) / 5, 0.5)


def test_not_rotations():
    path = GeodesicSO3Path()
    good = so3.uniform((4,))
    with pytest.raises(ValueError, match="r0 must hold rotation matrices"):
        path.draw(good, 0.5, x0=2 * good)
    reflection = good.clone()
    reflection[:, :, 0] *= -1
    with pytest.raises(ValueError, match="r1 must hold rotation matrices"):
        path.draw(reflection, 0.5, x0=good)
    with pytest.raises(ValueError, match=r"r0 must have shape \(\.\.\., 3, 3\)"):
        path.draw(good, 0.5, x0=torch.zeros(4, 3))


def test_superposition_weights():
    with pytest.raises(ValueError, match="must sum to 1"):
        Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": 0.5, "jump": 0.6})
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": 1.5, "jump": -0.5})
    with pytest.raises(ValueError, match="give their weights"):
        Component({"flow": FlowStep(), "jump": JumpStep()})
    with pytest.raises(ValueError, match="must sum to 1"):
        # Time-dependent weights are checked along the way too.
        Component({"flow": FlowStep(), "jump": JumpStep()},
                  {"flow": lambda t: t, "jump": lambda t: 0.5})


def test_simulate_rejects_inconsistent_grids_and_names():
    comp = {"x": Component({"flow": FlowStep()})}
    fn = lambda x, t: {"x": {"flow": torch.zeros_like(x["x"])}}  # noqa: E731
    with pytest.raises(ValueError, match="x_init has"):
        simulate(fn, {"y": torch.zeros(2)}, comp, time_grid(4))
    with pytest.raises(ValueError, match="non-decreasing"):
        simulate(fn, {"x": torch.zeros(2)}, comp, torch.tensor([0.0, 0.5, 0.2, 1.0]))
    with pytest.raises(ValueError, match="method must be one of"):
        simulate(fn, {"x": torch.zeros(2)}, comp, time_grid(4), method="rk4")


def test_ctmc_options():
    with pytest.raises(ValueError, match="method must be one of"):
        CTMCStep(method="gillespie")
    with pytest.raises(ValueError, match="purity sampling needs a mask_index"):
        CTMCStep(purity=True)
    with pytest.raises(ValueError, match="noise must be one of"):
        MixtureTokenPath(4, "blank")
    with pytest.raises(ValueError, match="eta must be >= 0"):
        MixtureTokenPath(4).rates(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, 4) / 4, 0.5, eta=-1)
