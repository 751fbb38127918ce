"""Each run-config setting has one key; files written before keys were retired load as before."""

import pytest
import torch

from multiflow_gm.config import from_dict, load_config, to_dict, with_overrides
from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.model.network import CoDesignNetwork, ModelConfig
from multiflow_gm.protein.model_file import InferenceConfig, export_weights, load_codesign, with_sampling_defaults
from multiflow_gm.protein.run_config import migrate_run_config, resolve_self_condition
from multiflow_gm.protein.sampling import SamplingConfig
from multiflow_gm.cli.commands.sample import DEFAULT_MODEL
from multiflow_gm.cli.main import main
from multiflow_gm.training.protein.config import TrainConfig

TINY_MODEL = dict(c_s=16, c_z=8, c_hidden=8, num_heads=2, num_qk_points=2, num_v_points=2, seq_heads=2,
                  seq_layers=1, num_blocks=1, edge_hidden=8)


def _old_run_config(self_condition: bool, sampling_min_t: float = 0.01) -> dict:
    """A run config as written before the retirements: every sampling key, the SO(3) grid key."""
    config = to_dict(TrainConfig(model=ModelConfig(**TINY_MODEL), self_condition=self_condition))
    config["model"]["so3_jump_grid"] = 64
    config["sampling"].update(min_t=sampling_min_t, self_condition=True)
    return config


def test_self_condition_is_resolved_against_training():
    assert resolve_self_condition(True, None) is True and resolve_self_condition(False, None) is False
    assert resolve_self_condition(True, False) is False          # sampling without it: an ablation
    with pytest.raises(ConfigError, match="sampling.self_condition"):
        resolve_self_condition(False, True)
    assert SamplingConfig().self_condition is None and not hasattr(SamplingConfig(), "min_t")


def test_train_config_checks_instead_of_and():
    assert TrainConfig(self_condition=False).sampling.self_condition is False
    assert TrainConfig().sampling.self_condition is True
    with pytest.raises(ConfigError, match="sampling.self_condition"):
        from_dict(TrainConfig, {"self_condition": False, "sampling": {"self_condition": True}})


@pytest.mark.parametrize("trained", [True, False])
def test_old_run_configs_keep_their_effective_settings(trained):
    old = _old_run_config(trained)
    new = migrate_run_config(old)
    assert "so3_jump_grid" not in new["model"] and "min_t" not in new["sampling"]
    assert old["sampling"]["min_t"] == 0.01                        # the input is left as it was
    # Before, the two flags were AND-ed; migrated, the same value comes out.
    assert from_dict(TrainConfig, new).sampling.self_condition is trained
    assert InferenceConfig.from_run_config(old).sampling.self_condition is trained
    assert InferenceConfig.from_run_config(old).process.min_t == 0.01


def test_retired_sampling_min_t_that_differs():
    old = _old_run_config(True, sampling_min_t=0.05)
    # Sampling only: the grid start moves to the process, so sampling is unchanged.
    assert InferenceConfig.from_run_config(old).process.min_t == 0.05
    # Training would change: refused, naming both keys.
    with pytest.raises(ConfigError, match="sampling.min_t.*process.min_t"):
        migrate_run_config(old)


def test_old_yaml_files_load(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("self_condition: false\nsampling: {self_condition: true, min_t: 0.01, num_steps: 7}\n")
    cfg = load_config(TrainConfig, path)
    assert (cfg.sampling.self_condition, cfg.sampling.num_steps, cfg.process.min_t) == (False, 7, 0.01)
    # An explicit request, not an old default, is checked.
    with pytest.raises(ConfigError, match="sampling.self_condition"):
        load_config(TrainConfig, path, ["sampling.self_condition=true"])
    with pytest.raises(ConfigError, match="unknown config key 'sampling.min_t'"):
        load_config(TrainConfig, None, ["sampling.min_t=0.02"])


def _export(tmp_path, config: dict):
    network = CoDesignNetwork(ModelConfig(**TINY_MODEL))
    return export_weights(network.state_dict(), config, tmp_path / "old.safetensors")


def test_old_export_without_self_conditioning(tmp_path, capsys):
    path = _export(tmp_path, _old_run_config(False))
    _, _, cfg, _ = load_codesign(path)
    assert cfg.sampling.self_condition is False and cfg.self_condition is False
    with pytest.raises(ConfigError, match="sampling.self_condition"):
        with_overrides(cfg, ["sampling.self_condition=true"])
    rc = main(["sample", "--ckpt", str(path), "--out", str(tmp_path / "o"), "--set", "sampling.self_condition=true",
               "--threads", "1"])
    assert rc == 2 and "trained without self-conditioning" in capsys.readouterr().err
    copy = with_sampling_defaults(path, tmp_path / "copy.safetensors", ["temperature=0.5"])
    _, _, cfg_copy, _ = load_codesign(copy)
    assert cfg_copy.sampling.temperature == 0.5 and cfg_copy.sampling.self_condition is False


# Effective sampling settings of the shipped models as loaded before the retirements (the
# grid start was sampling.min_t = 0.01; it is process.min_t now).
SHIPPED = {"codesign_small.safetensors": dict(num_steps=200, temperature=0.40, inverse_fold_temperature=0.1,
                                               eta=0.0, purity=True),
           "codesign_small_v1.safetensors": dict(num_steps=200, temperature=1.0, inverse_fold_temperature=None,
                                                 eta=0.0, purity=False)}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_settings_unchanged(name):
    path = DEFAULT_MODEL.parent / name
    if not path.is_file():
        pytest.skip(f"the shipped model is missing at {path}")
    _, _, cfg, _ = load_codesign(path)
    expected = {**SHIPPED[name], "self_condition": True, "so3_jump_weight": 0.0, "so3_jump_source": "head"}
    assert to_dict(cfg.sampling) == expected and cfg.process.min_t == 0.01


def test_sampling_grid_starts_at_process_min_t(monkeypatch):
    import multiflow_gm.protein.sampling as sampling
    from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig

    starts = []
    real = sampling.time_grid
    monkeypatch.setattr(sampling, "time_grid", lambda n, t0, t1: starts.append(t0) or real(n, t0, t1))
    network = CoDesignNetwork(ModelConfig(**TINY_MODEL)).eval()
    process = CoDesignProcess(ProcessConfig(min_t=0.2))
    sampling.sample_batch(network, process, SamplingConfig(num_steps=2), 1, 8, generator=torch.Generator())
    assert starts == [0.2]
