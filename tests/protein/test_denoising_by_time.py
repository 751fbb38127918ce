"""scripts/denoising_by_time.py: every model sees the same corrupted chains, and bad input stops at start."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from multiflow_gm.config import load_config, to_dict
from multiflow_gm.protein.model.network import CoDesignNetwork
from multiflow_gm.protein.model_file import export_weights
from multiflow_gm.training.protein.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "protein" / "tiny.yaml"


def _script():
    spec = importlib.util.spec_from_file_location("denoising_by_time", REPO / "scripts" / "denoising_by_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export(path: Path, perturbed: bool = False) -> Path:
    """A tiny network (its structure updates start at zero); ``perturbed`` moves every weight."""
    torch.manual_seed(0)
    cfg = load_config(TrainConfig, TINY, ["trainer.threads=1"])
    weights = CoDesignNetwork(cfg.model).eval().state_dict()
    if perturbed:
        weights = {name: w + 0.05 * torch.randn_like(w) if w.is_floating_point() else w for name, w in weights.items()}
    return export_weights(weights, to_dict(cfg), path)


def test_same_weights_give_the_same_row_and_other_weights_another(split_cache, tmp_path):
    first = _export(tmp_path / "a.safetensors")
    copy = _export(tmp_path / "b.safetensors")
    other = _export(tmp_path / "c.safetensors", perturbed=True)
    out = tmp_path / "table"
    assert _script().main([str(first), str(copy), str(other), "--out", str(out), "--times", "0.5", "0.9",
                           "--chains", "2", "--cache", str(split_cache)]) == 0
    table = json.loads((out / "table.json").read_text())
    rows = list(table["rows"].values())
    assert table["times"] == [0.5, 0.9] and len(rows) == 3
    for key in ("pred_clash_t0.5", "pred_clash_t0.9", "ca_rmse_A_t0.5", "ca_rmse_A_t0.9"):
        assert 0.0 <= rows[0][key] < 1e3
    assert rows[0] == rows[1]                       # same weights, same noise: same figures
    assert rows[0]["ca_rmse_A_t0.5"] != rows[2]["ca_rmse_A_t0.5"]
    assert "| t = 0.5 | t = 0.9 |" in (out / "table.md").read_text()


def test_missing_model_or_cache_stops_at_start(split_cache, tmp_path):
    with pytest.raises(SystemExit) as missing_model:
        _script().main([str(tmp_path / "absent.safetensors"), "--out", str(tmp_path / "o"),
                        "--cache", str(split_cache)])
    assert missing_model.value.code == 2
    model = _export(tmp_path / "a.safetensors")
    with pytest.raises(SystemExit) as missing_cache:
        _script().main([str(model), "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "no_cache")])
    assert missing_cache.value.code == 2
    with pytest.raises(SystemExit):
        _script().main([str(model), "--out", str(tmp_path / "o"), "--cache", str(split_cache), "--times", "1.0"])
