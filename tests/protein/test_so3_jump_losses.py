"""Losses of the isotropic rotation path and its jump head: zero at the truth, fields taken at t."""

import torch

from multiflow_gm.core import so3
from multiflow_gm.protein.alphabet import NUM_MODEL_TOKENS
from multiflow_gm.protein.coordinates import frame_batch_from_collated
from multiflow_gm.protein.losses import LossConfig, codesign_losses
from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig


def _noisy(t, seed=0, b=3, l=10):
    g = torch.Generator().manual_seed(seed)
    batch = {"translations": torch.randn(b, l, 3, generator=g) * 8.0,
             "rotations": so3.uniform((b, l), generator=g, dtype=torch.float64).float(),
             "aatype": torch.randint(0, 20, (b, l), generator=g), "residue_mask": torch.ones(b, l, dtype=torch.bool),
             "residue_index": torch.arange(l).expand(b, l)}
    process = CoDesignProcess(ProcessConfig(rotation_path="isotropic", so3_jump=True))
    return process, process.corrupt(frame_batch_from_collated(batch), t, t, g)


def _pred(process, noisy, rotations=None, intensity=None):
    rot = noisy["rot_1"] if rotations is None else rotations
    lam = process.rotations.jump_intensity(noisy["rot_t"], noisy["rot_1"], noisy["t_struct"])
    return {"rotations": rot, "translations": noisy["trans_1"],
            "logits": torch.nn.functional.one_hot(noisy["aatype_1"], NUM_MODEL_TOKENS).float() * 60.0,
            "jump_intensity": lam if intensity is None else intensity}


def test_isotropic_and_jump_losses_vanish_at_the_truth_and_not_elsewhere():
    process, noisy = _noisy(torch.tensor([0.2, 0.6, 0.97]))
    losses = codesign_losses(process, noisy, _pred(process, noisy), LossConfig())
    assert losses["rotation"].abs().max() < 1e-8 and losses["so3_jump"].abs().max() < 1e-6
    assert torch.isfinite(losses["total"]).all()
    off = _pred(process, noisy, intensity=_pred(process, noisy)["jump_intensity"] * 1.5 + 0.1)
    assert (codesign_losses(process, noisy, off, LossConfig())["so3_jump"] > 0).all()


def test_isotropic_velocities_are_taken_at_the_drawn_time_not_the_clipped_one():
    t = torch.tensor([0.95, 0.95, 0.95])  # above t_clip = 0.9
    process, noisy = _noisy(t, seed=3)
    turn = so3.exp(torch.tensor([0.2, -0.1, 0.3])).expand_as(noisy["rot_1"])
    pred = _pred(process, noisy, rotations=noisy["rot_1"] @ turn)
    got = codesign_losses(process, noisy, pred, LossConfig(t_clip=0.9))["rotation"]
    path = process.rotations

    def expected(time):
        diff = path.velocity(noisy["rot_t"], noisy["rot_1"], time) - path.velocity(noisy["rot_t"], pred["rotations"], time)
        return (diff ** 2).sum(-1).mean(-1) / 3

    assert torch.allclose(got, expected(t), rtol=1e-5)
    assert not torch.allclose(got, expected(torch.full_like(t, 0.9)), rtol=1e-3)  # control: the clipped time
