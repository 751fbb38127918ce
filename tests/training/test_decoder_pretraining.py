"""Decoder pretraining: the corruption, a short run that learns, and a resume that repeats the run exactly."""

import csv
import math

import pytest
import torch
from safetensors.torch import load_file

from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.alphabet import MASK
from multiflow_gm.protein.frame_batch import FrameBatch
from multiflow_gm.training.protein.decoder_pretraining import DecoderPretraining, corrupt, pretrain_decoder

SMALL = dict(hidden=16, layers=1, knn=6, context_width=8, squared_residue_budget=900, min_length=10, max_length=400,
             val_chains=4, warmup_steps=2)


def test_corruption_masks_a_uniform_share_and_moves_atoms_by_the_stated_noise():
    g = torch.Generator().manual_seed(0)
    b, l = 400, 50
    frames = FrameBatch(rotations=torch.eye(3).expand(b, l, 3, 3), translations=torch.zeros(b, l, 3),
                        aatype=torch.randint(0, 20, (b, l), generator=g), residue_index=torch.arange(l).expand(b, l),
                        residue_mask=torch.ones(b, l, dtype=torch.bool))
    aatype, rotations, translations, loss_mask = corrupt(frames, g, noise_angstrom=0.2, rotation_noise=0.05)
    assert torch.equal(loss_mask, aatype == MASK)
    assert loss_mask.float().mean() == pytest.approx(0.5, abs=0.03)            # E[1 - u], u ~ U(0, 1)
    assert translations.std() == pytest.approx(0.02, rel=0.03)                  # 0.2 Angstrom in nm
    angles = torch.arccos(((rotations.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))
    assert angles.pow(2).mean().sqrt() == pytest.approx(0.05 * 3 ** 0.5, rel=0.05)


def test_short_run_writes_its_files_and_resume_continues_it_exactly(split_cache, tmp_path, single_thread):
    whole = tmp_path / "whole"
    pretrain_decoder(split_cache, whole, DecoderPretraining(steps=6, eval_every=3, **SMALL), progress=False)
    parts = tmp_path / "parts"
    pretrain_decoder(split_cache, parts, DecoderPretraining(steps=3, eval_every=3, **SMALL), progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        pretrain_decoder(split_cache, parts, DecoderPretraining(steps=6, eval_every=3, **SMALL), progress=False)
    row = pretrain_decoder(split_cache, parts, DecoderPretraining(steps=6, eval_every=3, **SMALL), resume=True,
                           progress=False)
    assert row["step"] == 6
    a, b = load_file(str(whole / "decoder.safetensors")), load_file(str(parts / "decoder.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    rows = list(csv.DictReader((parts / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert (parts / "curve.png").stat().st_size > 0


def test_cosine_decay_over_a_resumed_leg_sets_the_optimiser_rate(split_cache, tmp_path, single_thread, monkeypatch):
    import multiflow_gm.training.protein.decoder_pretraining as module

    seen = []
    original = module._training_step

    def recording(decoder, optimiser, batch, generator, s, step, profiles):
        loss = original(decoder, optimiser, batch, generator, s, step, profiles)
        seen.append((step, optimiser.param_groups[0]["lr"]))
        return loss

    monkeypatch.setattr(module, "_training_step", recording)
    pretrain_decoder(split_cache, tmp_path, DecoderPretraining(steps=3, eval_every=3, **SMALL), progress=False)
    leg = DecoderPretraining(steps=7, eval_every=3, schedule="cosine", decay_start=3, final_lr_fraction=0.0, **SMALL)
    pretrain_decoder(split_cache, tmp_path, leg, resume=True, progress=False)
    lr = dict(seen)
    assert lr[2] == lr[3] == pytest.approx(1e-3)
    assert lr[5] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 4)))
    assert lr[6] < lr[5] < lr[4] < lr[3]


def test_a_batch_with_nothing_masked_takes_no_step(split_cache, tmp_path, single_thread, monkeypatch):
    import multiflow_gm.training.protein.decoder_pretraining as module

    calls = []
    original = module.corrupt

    def every_other_masks_nothing(frames, generator, noise_angstrom, rotation_noise):
        aatype, rotations, translations, loss_mask = original(frames, generator, noise_angstrom, rotation_noise)
        calls.append(len(calls) % 2 == 0)
        if calls[-1]:
            loss_mask = torch.zeros_like(loss_mask)
        return aatype, rotations, translations, loss_mask

    monkeypatch.setattr(module, "corrupt", every_other_masks_nothing)
    row = pretrain_decoder(split_cache, tmp_path, DecoderPretraining(steps=3, eval_every=3, **SMALL), progress=False)
    assert row["step"] == 3 and math.isfinite(row["train_ce"])
    assert len(calls) == 6                                   # three empty draws skipped, three steps taken
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert max(s["step"] for s in state["optimiser"]["state"].values()) == 3


def test_bf16_mixed_training_matches_float32_closely(split_cache, tmp_path, single_thread):
    """Under bf16 autocast the logits stay within bf16 rounding of float32 (distances are computed
    in float32), and a bf16-mixed run trains and writes a float32 decoder."""
    from multiflow_gm.core import so3
    from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder

    torch.manual_seed(0)
    decoder = SequenceDecoder(8, hidden=32, num_layers=2, knn=8, oxygen=True)
    torch.nn.init.normal_(decoder.out.weight, std=0.3)
    b, l = 2, 24
    inputs = (torch.randint(0, 21, (b, l)), so3.exp(torch.randn(b, l, 3)), torch.cumsum(torch.randn(b, l, 3) * 0.2, 1),
              torch.ones(b), torch.arange(l).expand(b, l), torch.ones(b, l, dtype=torch.bool))
    with torch.no_grad():
        exact = torch.log_softmax(decoder(*inputs), -1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = torch.log_softmax(decoder(*inputs).float(), -1)
    assert exact.abs().max() > 0.5
    assert (mixed - exact).abs().max() < 0.05
    row = pretrain_decoder(split_cache, tmp_path, DecoderPretraining(steps=4, eval_every=4, precision="bf16-mixed",
                                                                     **SMALL), progress=False)
    assert row["step"] == 4 and math.isfinite(row["val_ce"])
    assert all(v.dtype == torch.float32 for v in load_file(str(tmp_path / "decoder.safetensors")).values())


@pytest.mark.parametrize("settings,key", [(dict(schedule="linear"), "schedule"),
                                          (dict(precision="16-mixed"), "precision"),
                                          (dict(final_lr_fraction=2.0), "final_lr_fraction")])
def test_bad_schedule_settings_name_the_setting(settings, key):
    with pytest.raises(ConfigError, match=key):
        DecoderPretraining(**settings)
