"""A co-design run with the sequence decoder: added to a trained trunk, loaded from its own weights file."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from multiflow_gm.config import load_config
from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder
from multiflow_gm.training.protein.config import TrainConfig
from multiflow_gm.training.protein.module import CoDesignModule
from multiflow_gm.training.protein.trainer import _initialise_decoder_from, train

from tests.protein.test_validation import QUICK, TINY

DECODER = ["model.sequence_decoder=true", "model.decoder_hidden=16", "model.decoder_layers=1", "model.decoder_knn=4"]


def _decoder_file(cfg, path, hidden=16):
    torch.manual_seed(3)
    decoder = SequenceDecoder(cfg.model.c_s, hidden, cfg.model.decoder_layers, cfg.model.decoder_knn)
    torch.nn.init.normal_(decoder.out.weight, std=0.1)
    save_file(decoder.state_dict(), str(path))
    return decoder.state_dict()


def test_decoder_weights_load_exactly_and_mismatches_name_the_problem(tmp_path):
    from multiflow_gm.config import to_dict

    cfg = load_config(TrainConfig, TINY, DECODER)
    module = CoDesignModule(to_dict(cfg))
    saved = _decoder_file(cfg, tmp_path / "decoder.safetensors")
    _initialise_decoder_from(module, str(tmp_path / "decoder.safetensors"))
    for key, value in module.network.sequence_decoder.state_dict().items():
        assert torch.equal(value, saved[key]), key
    _decoder_file(cfg, tmp_path / "wide.safetensors", hidden=24)
    with pytest.raises(ConfigError, match="decoder_init_from"):
        _initialise_decoder_from(module, str(tmp_path / "wide.safetensors"))
    with pytest.raises(ConfigError, match="no such file"):
        _initialise_decoder_from(module, str(tmp_path / "absent.safetensors"))


def test_run_adds_a_pretrained_decoder_to_a_trained_trunk(split_cache, tmp_path):
    base = tmp_path / "base"
    train(load_config(TrainConfig, TINY, [*QUICK, "trainer.max_steps=2", "validation.every_steps=0"]),
          split_cache, base, enable_progress_bar=False)
    cfg = load_config(TrainConfig, TINY, [*QUICK, *DECODER, "trainer.max_steps=2", "validation.every_steps=0",
                                          f"init_from={base / 'model_ema.safetensors'}"])
    _decoder_file(cfg, tmp_path / "decoder.safetensors")
    cfg.decoder_init_from = str(tmp_path / "decoder.safetensors")
    train(cfg, split_cache, tmp_path / "run", enable_progress_bar=False)
    exported = load_file(str(tmp_path / "run" / "model_ema.safetensors"))
    trunk = load_file(str(base / "model_ema.safetensors"))
    assert set(exported) - set(trunk) and all(k.startswith("sequence_decoder.") for k in set(exported) - set(trunk))


def test_frozen_decoder_keeps_its_weights_while_the_trunk_trains(split_cache, tmp_path):
    base = tmp_path / "base"
    train(load_config(TrainConfig, TINY, [*QUICK, *DECODER, "trainer.max_steps=2", "validation.every_steps=0"]),
          split_cache, base, enable_progress_bar=False)
    start = load_file(str(base / "model_ema.safetensors"))
    overrides = [*QUICK, *DECODER, "trainer.max_steps=3", "validation.every_steps=0", "optim.lr=0.01",
                 f"init_from={base / 'model_ema.safetensors'}", "optim.frozen=[sequence_decoder]"]
    train(load_config(TrainConfig, TINY, overrides), split_cache, tmp_path / "run", enable_progress_bar=False)
    exported = load_file(str(tmp_path / "run" / "model_ema.safetensors"))
    assert set(exported) == set(start)
    decoder = [k for k in start if k.startswith("sequence_decoder.")]
    assert decoder and all(torch.equal(exported[k], start[k]) for k in decoder)
    assert any(not torch.equal(exported[k], start[k]) for k in start if not k.startswith("sequence_decoder."))


def test_a_frozen_prefix_that_names_nothing_fails_with_the_key():
    from multiflow_gm.config import to_dict

    cfg = load_config(TrainConfig, TINY, [*DECODER, "optim.frozen=[sequence_decoer]"])
    with pytest.raises(ValueError, match="optim.frozen"):
        CoDesignModule(to_dict(cfg))
