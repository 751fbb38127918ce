"""Decoder distillation from teacher profiles: the loss's limits, its gradient, and a run that uses profiles."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.teacher_profiles import ProfileSettings, profile_path, save_profile
from multiflow_gm.training.protein.decoder_pretraining import (DecoderPretraining, decoder_weights,
                                                               distillation_loss, pretrain_decoder, teacher_batch)

SMALL = dict(hidden=16, layers=1, knn=6, context_width=8, squared_residue_budget=900, min_length=10, max_length=400,
             val_chains=4, warmup_steps=2)


def _batch(seed=0, b=3, l=12):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, l, 21, generator=g, requires_grad=True)
    target = torch.randint(0, 20, (b, l), generator=g)
    teacher = torch.log_softmax(torch.randn(b, l, 20, generator=g), -1)
    return logits, target, teacher


def test_weight_zero_is_the_native_cross_entropy_of_masked_residues():
    logits, target, teacher = _batch()
    mask = torch.rand(3, 12, generator=torch.Generator().manual_seed(1)) < 0.6
    loss = distillation_loss(logits, target, mask, torch.ones_like(mask), teacher, torch.ones_like(mask), 0.1, 0.0)
    expected = F.cross_entropy(logits[..., :20][mask], target[mask], label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_weight_one_on_a_fully_masked_chain_is_the_kl_and_vanishes_at_the_teacher():
    logits, target, teacher = _batch()
    mask, has = torch.ones(3, 12, dtype=torch.bool), torch.ones(3, 12, dtype=torch.bool)
    loss = distillation_loss(logits, target, mask, has, teacher, has, 0.1, 1.0)
    student = torch.log_softmax(logits[..., :20], -1)
    kl = (teacher.exp() * (teacher - student)).sum(-1).mean()
    assert loss.item() == pytest.approx(kl.item(), rel=1e-5)
    at_teacher = torch.cat([teacher, torch.zeros(3, 12, 1)], -1).requires_grad_(True)
    loss = distillation_loss(at_teacher, target, mask, has, teacher, has, 0.1, 1.0)
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert at_teacher.grad[..., :20].abs().max() < 1e-6  # the KL's minimum: zero gradient


def test_teacher_counts_in_proportion_to_the_masked_share_and_only_where_a_profile_exists():
    logits, target, teacher = _batch(b=1, l=10)
    half = torch.zeros(1, 10, dtype=torch.bool)
    half[0, :5] = True
    ce = F.cross_entropy(logits[0, :5, :20], target[0, :5], label_smoothing=0.0, reduction="none")
    kl = (teacher[0, :5].exp() * (teacher[0, :5] - torch.log_softmax(logits[0, :5, :20], -1))).sum(-1)
    everywhere = torch.ones_like(half)
    loss = distillation_loss(logits, target, half, everywhere, teacher, everywhere, 0.0, 0.8)
    assert loss.item() == pytest.approx((0.6 * ce + 0.4 * kl).mean().item(), rel=1e-5)  # w f = 0.8 * 0.5
    padded = torch.cat([half, torch.zeros(1, 5, dtype=torch.bool)], -1)  # padding does not dilute f
    wide = torch.cat([logits, torch.zeros(1, 5, 21)], 1), torch.cat([target, torch.zeros(1, 5, dtype=torch.long)], 1)
    loss_padded = distillation_loss(wide[0], wide[1], padded, torch.cat([everywhere, padded[:, 10:]], -1),
                                    torch.cat([teacher, torch.zeros(1, 5, 20)], 1), torch.ones_like(padded), 0.0, 0.8)
    assert loss_padded.item() == pytest.approx(loss.item(), rel=1e-5)
    none = distillation_loss(logits, target, half, everywhere, teacher, torch.zeros_like(half), 0.0, 0.8)
    assert none.item() == pytest.approx(ce.mean().item(), rel=1e-5)


def test_teacher_batch_pads_and_marks_chains_without_a_profile():
    profiles = {"a": np.log(np.full((3, 20), 0.05, dtype=np.float32))}
    log_probs, has = teacher_batch(["a", "b"], 5, profiles)
    assert has.tolist() == [[True] * 3 + [False] * 2, [False] * 5]
    assert torch.allclose(log_probs[0, :3].exp().sum(-1), torch.ones(3))


def test_a_run_with_profiles_trains_and_init_from_takes_an_export(split_cache, tmp_path, single_thread):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(split_cache, cache)
    with pytest.raises(ConfigError, match="multiflow-gm profiles"):
        pretrain_decoder(cache, tmp_path / "none", DecoderPretraining(steps=2, teacher_weight=0.5, **SMALL),
                         progress=False)
    rng = np.random.default_rng(0)
    for record in ChainCache(cache).records:  # a sharp teacher on a fixed residue type per chain
        favourite = np.full((record.length, 20), -9.0, dtype=np.float32)
        favourite[:, int(rng.integers(20))] = 0.0
        save_profile(profile_path(cache, record.name), favourite - np.logaddexp.reduce(favourite, -1, keepdims=True),
                     ProfileSettings(), record.sequence)
    first = tmp_path / "first"
    pretrain_decoder(cache, first, DecoderPretraining(steps=2, eval_every=2, **SMALL), progress=False)
    weights = load_file(str(first / "decoder.safetensors"))
    export = tmp_path / "export.safetensors"  # a co-design export carries the decoder under sequence_decoder.
    save_file({**{f"sequence_decoder.{k}": v for k, v in weights.items()}, "trunk.weight": torch.zeros(2)}, str(export))
    assert all(torch.equal(decoder_weights(export)[k], v) for k, v in weights.items())
    row = pretrain_decoder(cache, tmp_path / "second", DecoderPretraining(steps=4, eval_every=4, teacher_weight=0.5,
                                                                          init_from=str(export), **SMALL),
                           progress=False)
    assert row["step"] == 4 and np.isfinite(row["val_ce"])
    with open(tmp_path / "second" / "curve.csv") as handle:  # the starting decoder's row comes first
        steps = [int(line.split(",")[0]) for line in handle.readlines()[1:]]
    assert steps == [0, 4]
    with pytest.raises(ConfigError, match="init_from"):
        DecoderPretraining(init_from=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="teacher_weight"):
        DecoderPretraining(teacher_weight=1.5)


def test_with_decoder_replaces_only_the_decoder_of_an_export(tmp_path):
    from pathlib import Path

    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.model_file import read_model_file, with_decoder

    shipped = Path(__file__).resolve().parents[2] / "multiflow_gm/assets/codesign_small.safetensors"
    weights, config, _ = read_model_file(shipped)
    decoder = {k[len("sequence_decoder."):]: torch.randn_like(v) for k, v in weights.items()
               if k.startswith("sequence_decoder.")}
    save_file(decoder, str(tmp_path / "decoder.safetensors"))
    with_decoder(shipped, tmp_path / "decoder.safetensors", tmp_path / "out.safetensors")
    new, new_config, info = read_model_file(tmp_path / "out.safetensors")
    assert new_config == config and info["sequence_decoder_from"].endswith("decoder.safetensors")
    for key, value in weights.items():
        expected = decoder[key[len("sequence_decoder."):]] if key.startswith("sequence_decoder.") else value
        assert torch.equal(new[key], expected), key
    save_file({"out.weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UserError, match="does not fit"):
        with_decoder(shipped, tmp_path / "other.safetensors", tmp_path / "bad.safetensors")


def test_a_grown_decoder_joins_an_export_with_its_run_settings(tmp_path):
    """A decoder with more layers and the O distances replaces the export's once its size is given
    (as its run's settings.json records it); without the size it is refused."""
    import json
    from pathlib import Path

    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder, load_grown
    from multiflow_gm.protein.model_file import decoder_shape_beside, load_codesign, read_model_file, with_decoder

    shipped = Path(__file__).resolve().parents[2] / "multiflow_gm/assets/codesign_small.safetensors"
    _, config, _ = read_model_file(shipped)
    grown = SequenceDecoder(config["model"]["c_s"], 128, 4, 30, oxygen=True)
    load_grown(grown, decoder_weights(shipped))
    run = tmp_path / "run"
    run.mkdir()
    save_file({k: v.contiguous() for k, v in grown.state_dict().items()}, str(run / "decoder.safetensors"))
    with pytest.raises(UserError, match="does not fit"):
        with_decoder(shipped, run / "decoder.safetensors", tmp_path / "bad.safetensors")
    assert decoder_shape_beside(run / "decoder.safetensors") is None
    (run / "settings.json").write_text(json.dumps({"hidden": 128, "layers": 4, "knn": 30, "oxygen": True}))
    with_decoder(shipped, run / "decoder.safetensors", tmp_path / "out.safetensors",
                 decoder_shape_beside(run / "decoder.safetensors"))
    network, _, cfg, _ = load_codesign(tmp_path / "out.safetensors")
    assert cfg.model.decoder_layers == 4 and cfg.model.decoder_oxygen and len(network.sequence_decoder.layers) == 4
    assert torch.equal(network.sequence_decoder.edge_in.weight, grown.edge_in.weight)
    with pytest.raises(UserError, match="unknown keys"):
        with_decoder(shipped, run / "decoder.safetensors", tmp_path / "x.safetensors", {"c_s": 3})


def test_pretrain_decoder_flags_take_booleans():
    import argparse

    from multiflow_gm.cli.commands.pretrain_decoder import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["cache", "--out", "o", "--oxygen"]).oxygen is True
    assert parser.parse_args(["cache", "--out", "o", "--no-oxygen"]).oxygen is False
    assert parser.parse_args(["cache", "--out", "o"]).oxygen is False
