"""The protein optimiser's learning-rate schedule: warm-up, then constant or a half cosine."""

import math

import pytest

from multiflow_gm.config import from_dict
from multiflow_gm.errors import ConfigError
from multiflow_gm.training.protein.config import OptimConfig, TrainConfig


def test_constant_schedule_is_warmup_then_flat():
    o = OptimConfig(lr=1e-3, warmup_steps=10)
    assert o.lr_at(0, 100) == pytest.approx(1e-4)
    assert o.lr_at(9, 100) == pytest.approx(1e-3)
    assert o.lr_at(99, 100) == pytest.approx(1e-3)


def test_cosine_holds_until_decay_start_and_ends_at_the_floor():
    o = OptimConfig(lr=2e-4, schedule="cosine", decay_start=200, final_lr_fraction=0.1)
    assert o.lr_at(0, 1200) == pytest.approx(2e-4)
    assert o.lr_at(200, 1200) == pytest.approx(2e-4)
    # Halfway through the decay the half cosine is at the midpoint of lr and the floor.
    assert o.lr_at(700, 1200) == pytest.approx(2e-4 * (0.1 + 0.9 * 0.5))
    assert o.lr_at(1200, 1200) == pytest.approx(2e-5)
    assert o.lr_at(5000, 1200) == pytest.approx(2e-5)
    at = [o.lr_at(s, 1200) for s in range(200, 1201, 50)]
    assert all(a >= b for a, b in zip(at, at[1:]))
    quarter = 200 + 250
    assert o.lr_at(quarter, 1200) == pytest.approx(2e-4 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))))


def test_cosine_multiplies_the_warmup():
    o = OptimConfig(lr=1.0, warmup_steps=100, schedule="cosine", final_lr_fraction=0.0)
    assert o.lr_at(0, 100) == pytest.approx(0.01 * 0.5 * (1 + math.cos(0.0)))
    assert o.lr_at(99, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))


@pytest.mark.parametrize("key,value", [("final_lr_fraction", 1.5), ("decay_start", -1),
                                       ("schedule", "linear")])
def test_bad_schedule_settings_name_the_key(key, value):
    with pytest.raises((ConfigError, ValueError), match=key if key != "schedule" else "optim.schedule"):
        from_dict(TrainConfig, {"optim": {key: value}})
