"""Model files: sampling defaults can be changed without touching the weights; bad keys are named."""

import pytest
import torch

from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.model_file import load_codesign, with_sampling_defaults
from multiflow_gm.cli.commands.sample import DEFAULT_MODEL


def test_sampling_defaults_change_and_weights_stay(tmp_path):
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"the shipped model is missing at {DEFAULT_MODEL}")
    out = with_sampling_defaults(DEFAULT_MODEL, tmp_path / "m.safetensors", ["temperature=0.3", "purity=true"])
    net_a, _, cfg_a, _ = load_codesign(DEFAULT_MODEL)
    net_b, _, cfg_b, info = load_codesign(out)
    assert (cfg_b.sampling.temperature, cfg_b.sampling.purity) == (0.3, True)
    assert cfg_b.sampling.num_steps == cfg_a.sampling.num_steps and cfg_b.model == cfg_a.model
    assert info["sampling_defaults_from"] == ["temperature=0.3", "purity=true"]
    for (name, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ConfigError, match="sampling.temprature"):
        with_sampling_defaults(DEFAULT_MODEL, tmp_path / "bad.safetensors", ["temprature=0.3"])
