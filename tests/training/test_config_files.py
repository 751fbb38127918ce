"""Every file of configs/protein reads as the same effective training config as recorded.

``data/effective_configs.json`` holds, flattened to dotted keys, the defaults and each file's
differences from them, recorded before ``sampling.min_t`` was retired and
``sampling.self_condition`` stopped being AND-ed with ``self_condition`` (the recorded value is
the AND). Study files (``arms:``) are checked arm by arm: base config, common overrides, the
arm's overrides, as ``scripts/recipe_study.py`` trains them.
"""

import json
from pathlib import Path

import pytest
import yaml

from multiflow_gm.config import load_config, to_dict
from multiflow_gm.training.protein.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
RECORD = json.loads((Path(__file__).parent / "data" / "effective_configs.json").read_text())


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cases():
    for path in sorted((REPO / "configs" / "protein").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if "arms" not in data:
            yield path.name, path, []
            continue
        for arm, spec in data["arms"].items():
            yield f"{path.name}:{arm}", REPO / data["base_config"], [*data["common"], *spec.get("overrides", [])]


CASES = list(_cases())


def test_every_file_is_recorded():
    assert sorted(name for name, _, _ in CASES) == sorted(RECORD["configs"])


@pytest.mark.parametrize("name,path,overrides", CASES, ids=[c[0] for c in CASES])
def test_effective_config_unchanged(name, path, overrides):
    effective = _flat(to_dict(load_config(TrainConfig, path, overrides)))
    assert effective == {**RECORD["defaults"], **RECORD["configs"][name]}
