"""Co-design process: corruption at the ends of time, task mix, noise pairing, losses at the truth,
and the sampler driven by a network that always predicts the same clean protein."""

import types

import pytest
import torch

from multiflow_gm.core import so3
from multiflow_gm.protein.losses import LossConfig, codesign_losses
from multiflow_gm.protein.noise_pairing import kabsch_rotation, pair_noise
from multiflow_gm.protein.alphabet import MASK, NUM_MODEL_TOKENS
from multiflow_gm.protein.coordinates import ca_angstrom, frame_batch_from_collated
from multiflow_gm.protein.coordinates import center_positions as centre
from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig, TaskMix
from multiflow_gm.protein.sampling import SamplingConfig, sample_batch


def _batch(b=3, l=12, seed=0):
    """A collated batch in Angstrom (the file side of the adapter)."""
    g = torch.Generator().manual_seed(seed)
    trans = torch.randn(b, l, 3, generator=g) * 8.0
    return {"translations": trans, "rotations": so3.uniform((b, l), generator=g),
            "aatype": torch.randint(0, NUM_MODEL_TOKENS, (b, l), generator=g), "residue_mask": torch.ones(b, l, dtype=torch.bool),
            "residue_index": torch.arange(l).expand(b, l)}


def test_corruption_at_t_one_is_the_data_and_unknowns_stay_masked():
    process = CoDesignProcess(ProcessConfig())
    batch = _batch()
    noisy = process.corrupt(frame_batch_from_collated(batch), torch.ones(3), torch.ones(3))
    assert torch.allclose(noisy["trans_t"], noisy["trans_1"], atol=1e-6)
    assert torch.allclose(noisy["rot_t"], batch["rotations"], atol=1e-5)
    known = batch["aatype"] < 20
    assert torch.equal(noisy["aatype_t"][known], batch["aatype"][known])
    assert (noisy["aatype_t"][~known] == MASK).all()
    # Translations are centred and in nm.
    assert torch.allclose(noisy["trans_1"].mean(1), torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(noisy["trans_1"], centre(batch["translations"] * 0.1, batch["residue_mask"]), atol=1e-6)


def test_corruption_at_t_zero_is_the_prior():
    process = CoDesignProcess(ProcessConfig(noise_pairing="none"))
    batch = _batch(b=64, l=50)
    noisy = process.corrupt(frame_batch_from_collated(batch), torch.zeros(64), torch.zeros(64))
    assert (noisy["aatype_t"] == MASK).all()
    assert abs(noisy["trans_t"].std().item() - 1.0) < 0.05
    angles = so3.angle(noisy["rot_t"]).flatten()
    assert abs(angles.mean().item() - (torch.pi / 2 + 2 / torch.pi)) < 0.03  # Haar mean angle


def test_task_mix_sets_the_fixed_times():
    process = CoDesignProcess(ProcessConfig(task_mix=TaskMix(0.5, 0.25, 0.25)))
    t_struct, t_seq, task = process.sample_times(4000, torch.Generator().manual_seed(0))
    assert (t_seq[task == 1] == 1).all() and (t_struct[task == 2] == 1).all()
    assert abs((task == 1).float().mean().item() - 0.25) < 0.03
    with pytest.raises(ValueError, match="sum to 1"):
        TaskMix(0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="rotation_path: isotropic"):
        ProcessConfig(so3_jump=True)


def test_noise_pairing_aligns_without_changing_the_noise_law():
    g = torch.Generator().manual_seed(2)
    mask = torch.ones(6, 30, dtype=torch.bool)
    data = centre(torch.randn(6, 30, 3, generator=g), mask)
    noise = centre(torch.randn(6, 30, 3, generator=g), mask)
    for permute in (False, True):
        paired = pair_noise(noise, data, mask, permute)
        assert ((paired - data) ** 2).sum() < ((noise - data) ** 2).sum()
        # A rotation (and a permutation of whole samples) keeps each sample's norms.
        assert torch.allclose(paired.norm(dim=-1).sort(-1).values.sum(0),
                              noise.norm(dim=-1).sort(-1).values.sum(0), atol=1e-4)
    r = kabsch_rotation(noise, noise @ so3.exp(torch.tensor([0.3, 0.2, -0.1])), mask)
    assert torch.allclose(r, so3.exp(torch.tensor([0.3, 0.2, -0.1])).expand(6, 3, 3), atol=1e-4)


def test_losses_vanish_at_the_truth():
    process = CoDesignProcess(ProcessConfig())
    batch = _batch()
    t = torch.tensor([0.2, 0.5, 0.95])
    noisy = process.corrupt(frame_batch_from_collated(batch), t, t)
    logits = torch.nn.functional.one_hot(noisy["aatype_1"], NUM_MODEL_TOKENS).float() * 60.0
    pred = {"rotations": noisy["rot_1"], "translations": noisy["trans_1"], "logits": logits}
    losses = codesign_losses(process, noisy, pred, LossConfig())
    for name in ("translation", "rotation", "aatype", "auxiliary"):
        assert losses[name].abs().max() < 1e-4, name
    wrong = dict(pred, translations=pred["translations"] + 0.1)
    assert (codesign_losses(process, noisy, wrong, LossConfig())["translation"] > 0).all()


class ConstantNetwork(torch.nn.Module):
    """Predicts the same clean protein whatever the input (a stand-in for a perfect model)."""

    def __init__(self, rotations, translations, aatype):
        super().__init__()
        self.r, self.t, self.a = rotations, translations, aatype
        self.cfg = types.SimpleNamespace(so3_jump_head=False)

    def forward(self, aatype, rotations, translations, **_):
        b = aatype.shape[0]
        logits = torch.nn.functional.one_hot(self.a, NUM_MODEL_TOKENS).float() * 30.0
        return {"rotations": self.r.expand(b, -1, -1, -1), "translations": self.t.expand(b, -1, -1),
                "logits": logits.expand(b, -1, -1)}


@pytest.mark.parametrize("eta,purity", [(0.0, False), (3.0, True)])
def test_sampler_lands_exactly_on_the_prediction(eta, purity):
    l = 16
    g = torch.Generator().manual_seed(4)
    target_r = so3.uniform((l,), generator=g)
    target_t = centre(torch.randn(1, l, 3, generator=g), torch.ones(1, l, dtype=torch.bool))[0]
    target_a = torch.randint(0, 20, (l,), generator=g)
    process = CoDesignProcess(ProcessConfig())
    net = ConstantNetwork(target_r, target_t, target_a)
    cfg = SamplingConfig(num_steps=25, eta=eta, purity=purity)
    out = sample_batch(net, process, cfg, 3, l, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out.rotations, target_r.expand(3, -1, -1, -1), atol=1e-5)
    assert torch.allclose(out.translations, target_t.expand(3, -1, -1), atol=1e-5)
    assert torch.allclose(ca_angstrom(out), (target_t / 0.1).expand(3, -1, -1), atol=1e-4)
    assert torch.equal(out.aatype, target_a.expand(3, -1)) and not (out.aatype == MASK).any()
    assert out.residue_mask.all() and torch.equal(out.residue_index, torch.arange(l).expand(3, l))


def test_fold_and_inverse_fold_keep_their_inputs():
    l = 12
    g = torch.Generator().manual_seed(5)
    process = CoDesignProcess(ProcessConfig())
    net = ConstantNetwork(so3.uniform((l,), generator=g), torch.zeros(l, 3), torch.zeros(l, dtype=torch.long))
    cfg = SamplingConfig(num_steps=10)
    sequence = torch.randint(0, 20, (l,), generator=g)
    folded = sample_batch(net, process, cfg, 2, l, mode="fold", sequence=sequence)
    assert torch.equal(folded.aatype, sequence.expand(2, -1))
    rot, trans = so3.uniform((l,), generator=g), torch.randn(l, 3, generator=g) * 10
    designed = sample_batch(net, process, cfg, 2, l, mode="inverse-fold", backbone=(rot, trans))
    assert torch.allclose(designed.rotations, rot.expand(2, -1, -1, -1))
    assert torch.allclose(ca_angstrom(designed), (trans - trans.mean(0)).expand(2, -1, -1), atol=1e-4)
    assert torch.equal(designed.aatype, torch.zeros(2, l, dtype=torch.long))


class WeakPreferenceNetwork(ConstantNetwork):
    """Logits two nats above the rest for one residue type: about 0.28 of draws at temperature 1."""

    def forward(self, aatype, rotations, translations, **_):
        out = super().forward(aatype, rotations, translations)
        return dict(out, logits=out["logits"] / 15.0)


def test_inverse_fold_temperature_applies_to_inverse_folding_only():
    l, num = 16, 8
    g = torch.Generator().manual_seed(6)
    target = torch.randint(0, 20, (l,), generator=g)
    rot, trans = so3.uniform((l,), generator=g), torch.randn(l, 3, generator=g) * 10
    net = WeakPreferenceNetwork(rot, trans / 10, target)
    process = CoDesignProcess(ProcessConfig())

    def share_of_target(cfg, mode):
        extra = {"backbone": (rot, trans)} if mode == "inverse-fold" else {}
        out = sample_batch(net, process, cfg, num, l, mode=mode, generator=torch.Generator().manual_seed(1), **extra)
        return float((out.aatype == target).float().mean())

    cold_design = SamplingConfig(num_steps=20, temperature=1.0, inverse_fold_temperature=0.01)
    assert share_of_target(cold_design, "inverse-fold") == 1.0
    assert share_of_target(cold_design, "codesign") < 0.6
    assert share_of_target(SamplingConfig(num_steps=20, temperature=1.0), "inverse-fold") < 0.6
    assert cold_design.temperature_for("fold") == 1.0
    with pytest.raises(ValueError, match="inverse_fold_temperature"):
        SamplingConfig(inverse_fold_temperature=0.0)
