"""Every preset loads and validates; superposition weights are validated."""

import pytest
import yaml

from multiflow_gm.config import load_config, to_dict
from multiflow_gm.core import Component, FlowStep, JumpStep
from multiflow_gm.errors import ConfigError
from multiflow_gm.images.config import DATASETS, PRESET_DIR, ImageBenchConfig, preset
from multiflow_gm.images.sampling import component_for, linear_alpha, steps_for_nfe


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_preset_loads_and_validates(dataset):
    config = preset(dataset)
    assert isinstance(config, ImageBenchConfig) and config.data.dataset == dataset
    # The file lists every setting (unknown keys fail to load), so whoever edits it sees them all.
    assert yaml.safe_load((PRESET_DIR / f"{dataset}.yaml").read_text()) == to_dict(config)


def test_there_is_one_preset_per_dataset():
    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == sorted(DATASETS)
    with pytest.raises(ValueError, match="unknown dataset"):
        preset("svhn")


def test_unknown_and_bad_keys_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"sampling": {"alpha": [0.5]}}))
    with pytest.raises(ConfigError, match="alpha must be"):
        load_config(ImageBenchConfig, path)
    with pytest.raises(ConfigError, match="unknown config key 'train.stpes'"):
        load_config(ImageBenchConfig, None, ["train.stpes=3"])
    with pytest.raises(ConfigError, match="t_max"):
        load_config(ImageBenchConfig, None, ["train.t_max=1.0"])
    assert to_dict(load_config(ImageBenchConfig, None, ["sampling.alpha=[1, 0]"]))["sampling"]["alpha"] == [1.0, 0.0]


def test_superposition_weights_are_validated():
    with pytest.raises(ValueError, match=r"alpha at t=0 must lie in \[0, 1\]"):
        linear_alpha(1.2, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        component_for(("flow", "jump"), alpha=-0.1)
    # A time-dependent alpha: the flow and jump weights sum to one at every t.
    alpha = linear_alpha(0.9, 0.2)
    comp = component_for(("flow", "jump"), alpha)
    for t in (0.0, 0.25, 0.5, 1.0):
        w = comp.weights_at(t)
        assert w["flow"] == pytest.approx(0.9 - 0.7 * t) and w["flow"] + w["jump"] == pytest.approx(1.0)
    assert linear_alpha(0.3, 0.3) == 0.3
    # The core refuses weights that do not sum to one or leave [0, 1] at some time.
    with pytest.raises(ValueError, match="sum to 1"):
        Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": 0.5, "jump": 0.6})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Component({"flow": FlowStep(), "jump": JumpStep()}, {"flow": lambda t: 2 * t, "jump": lambda t: 1 - 2 * t})


def test_nfe_budgets():
    assert steps_for_nfe(20, "euler") == (20, 20)
    assert steps_for_nfe(20, "heun") == (10, 19) and steps_for_nfe(21, "heun") == (11, 21)
    assert steps_for_nfe(1, "heun") == (1, 1)
    with pytest.raises(ValueError):
        steps_for_nfe(0, "euler")
