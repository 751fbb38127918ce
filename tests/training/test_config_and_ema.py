import dataclasses
from pathlib import Path
from typing import Literal, Optional

import pytest
import torch

from multiflow_gm.config import from_dict, load_config, save_config, to_dict
from multiflow_gm.errors import ConfigError
from multiflow_gm.training.ema import EMA


@dataclasses.dataclass
class Inner:
    width: int = 8
    rate: float = 0.1
    mode: Literal["dense", "sparse"] = "dense"


@dataclasses.dataclass
class Outer:
    name: str = "x"
    inner: Inner = dataclasses.field(default_factory=Inner)
    lengths: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    seed: Optional[int] = None


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'inner.widht'"):
        from_dict(Outer, {"inner": {"widht": 3}})


def test_wrong_types_are_named():
    with pytest.raises(ConfigError, match="'inner.width' must be an integer"):
        from_dict(Outer, {"inner": {"width": "big"}})
    with pytest.raises(ConfigError, match=r"'inner.mode' must be one of \['dense', 'sparse'\]"):
        from_dict(Outer, {"inner": {"mode": "knn"}})
    with pytest.raises(ConfigError, match=r"'lengths\[1\]' must be an integer"):
        from_dict(Outer, {"lengths": [1, 2.5]})


def test_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    save_config(Outer(), path)
    cfg = load_config(Outer, path, ["inner.width=32", "inner.rate=1", "seed=3", "lengths=[5, 6]"])
    assert cfg.inner.width == 32 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.seed == 3 and cfg.lengths == [5, 6]
    assert from_dict(Outer, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'inner.depth'"):
        load_config(Outer, path, ["inner.depth=3"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_ema_tracks_average_and_round_trips():
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.5, warmup=False)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow["weight"], start + 0.5)
    other = EMA(torch.nn.Linear(3, 2), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and torch.allclose(other.shadow["weight"], ema.shadow["weight"])
    with ema.swapped_into(model):
        assert torch.allclose(model.weight, start + 0.5)
    assert torch.allclose(model.weight, start + 1.0)


def test_a_derived_config_is_its_base_plus_what_it_names(tmp_path):
    from multiflow_gm.config import load_config, to_dict
    from multiflow_gm.training.protein.config import TrainConfig

    repo = Path(__file__).resolve().parents[2] / "configs" / "protein"
    paper, ddp = load_config(TrainConfig, repo / "paper.yaml"), load_config(TrainConfig, repo / "paper_ddp.yaml")
    assert ddp.model == paper.model and ddp.sampling.num_steps == paper.sampling.num_steps == 500
    assert ddp.trainer.strategy == "ddp" and ddp.trainer.devices == 8 and paper.trainer.strategy == "auto"
    differ = {section for section, values in to_dict(ddp).items() if values != to_dict(paper)[section]}
    assert differ == {"data", "trainer"}
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="include each other"):
        load_config(TrainConfig, tmp_path / "a.yaml")
