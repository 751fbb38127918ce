"""Head shapes, the binned jump loss's minimiser, and the flow/jump targets."""

import pytest
import torch

from multiflow_gm.core import CondOTPath
from multiflow_gm.images.heads import NETWORK_KINDS, ImageGeneratorNet, bin_edges
from multiflow_gm.images.objective import jump_loss, jump_targets, training_losses
from multiflow_gm.images.unet import UNetConfig

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), attention_resolutions=(4,), attention_heads=2, groups=4)


@pytest.mark.parametrize("network", list(NETWORK_KINDS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8)])
def test_head_shapes_and_ranges(network, shape):
    bins = 16
    net = ImageGeneratorNet(TINY, shape, NETWORK_KINDS[network], bins)
    # Output channels: C for the flow, C (1 + bins) for the jump.
    expected = shape[0] * (("flow" in net.kinds) + ("jump" in net.kinds) * (1 + bins))
    assert net.unet.out_conv.out_channels == expected
    x, t = torch.randn(5, *shape), torch.rand(5)
    out = net(x, t)
    if "flow" in net.kinds:
        assert out.velocity.shape == (5, *shape)
    else:
        assert out.velocity is None
    if "jump" in net.kinds:
        assert out.intensity.shape == (5, *shape) and (out.intensity >= 0).all()
        assert out.log_probs.shape == (5, *shape, bins)
        torch.testing.assert_close(out.log_probs.exp().sum(-1), torch.ones(5, *shape))
    else:
        assert out.intensity is None and out.log_probs is None


def test_jump_intensity_carries_the_one_over_one_minus_t_scale():
    net = ImageGeneratorNet(TINY, (1, 8, 8), ("jump",), 8)
    x = torch.randn(2, 1, 8, 8)
    # Same trunk output (time embedding zeroed), times 0.5 and 0.9: intensities differ by 5x.
    with torch.no_grad():
        for p in net.unet.time_mlp.parameters():
            p.zero_()
        a = net(x, torch.full((2,), 0.5)).intensity
        b = net(x, torch.full((2,), 0.9)).intensity
    torch.testing.assert_close(b, 5.0 * a)


def test_networks_reject_bad_kinds_and_shapes():
    with pytest.raises(ValueError, match="kinds"):
        ImageGeneratorNet(TINY, (1, 8, 8), ("diffusion",))
    with pytest.raises(ValueError, match="square"):
        ImageGeneratorNet(TINY, (1, 8, 6), ("flow",))
    with pytest.raises(ValueError, match="divisible"):
        ImageGeneratorNet(TINY, (1, 7, 7), ("flow",))


def test_binned_jump_loss_is_minimised_by_the_true_binned_kernel():
    """At a fixed (x_t, t) with a posterior over atoms, the expected conditional loss over the
    atoms is minimised by the marginal: lambda = E[lambda^z], J = E[lambda^z J^z] / lambda."""
    path, edges, t = CondOTPath(), bin_edges(32, dtype=torch.float64), 0.55
    atoms = torch.tensor([-0.8, -0.1, 0.3, 0.9], dtype=torch.float64)
    counts = torch.tensor([1, 3, 2, 2])                        # posterior weights as repetitions
    x_t = torch.tensor([-0.9, 0.05, 0.6], dtype=torch.float64)  # three entries (pixels)
    z = torch.repeat_interleave(atoms, counts)                 # [8]
    x1 = z[:, None].expand(-1, len(x_t))                       # [8, 3]
    tt = torch.full((len(z),), t, dtype=torch.float64)
    targets = jump_targets(path, x_t.expand_as(x1), x1, tt, edges)
    w = counts.double() / counts.sum()
    lam_k = path.jump_intensity(x_t[None].expand(len(atoms), -1), atoms[:, None].expand(-1, len(x_t)), t)
    mass_k = path.jump_kernel(atoms, t).bin_masses(edges)                          # [K, B]
    true_lam = (w[:, None] * lam_k).sum(0)                                          # [3]
    true_probs = torch.einsum("k,kn,kb->nb", w, lam_k, mass_k) / true_lam[:, None]  # [3, B]
    assert (true_lam > 0).all()

    log_lam = torch.zeros(len(x_t), dtype=torch.float64, requires_grad=True)
    logits = torch.zeros(len(x_t), 32, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_lam, logits], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = jump_loss(targets, log_lam.exp().expand_as(x1), torch.log_softmax(logits, -1).expand(
            len(z), -1, -1), tt)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    torch.testing.assert_close(log_lam.exp(), true_lam, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(torch.softmax(logits, -1), true_probs, rtol=1e-4, atol=1e-6)
    # The truth scores lower than a perturbed kernel or intensity (bins of zero mass get a
    # finite log so that atoms with zero intensity contribute 0, not 0 * inf).
    def loss_at(lam, probs):
        log_probs = probs.clamp_min(1e-300).log().expand(len(z), -1, -1)
        return float(jump_loss(targets, lam.expand_as(x1), log_probs, tt))
    best = loss_at(true_lam, true_probs)
    shifted = torch.roll(true_probs, 1, dims=-1) * 0.1 + true_probs * 0.9
    assert best < loss_at(true_lam, shifted) and best < loss_at(1.2 * true_lam, true_probs)


def test_targets_match_the_closed_form():
    """Flow target x1 - x0 and the closed-form CondOT jump intensity [k_t]_+ / (1-t)^3; bin masses sum to one."""
    path = CondOTPath()
    g = torch.Generator().manual_seed(0)
    f64 = torch.float64
    x1 = torch.rand(4, 1, 3, 3, generator=g, dtype=f64) * 2 - 1
    x0 = torch.randn(4, 1, 3, 3, generator=g, dtype=f64)
    t = torch.tensor([0.0, 0.3, 0.7, 0.95], dtype=f64)
    x_t = path.draw(x1, t, x0=x0).x_t
    torch.testing.assert_close(path.velocity(x_t, x1, t), x1 - x0)
    targets = jump_targets(path, x_t, x1, t, bin_edges(16, dtype=f64))
    tt = t[:, None, None, None]
    k = x_t ** 2 - (tt + 1) * x_t * x1 - (1 - tt) ** 2 + tt * x1 ** 2
    torch.testing.assert_close(targets.intensity, k.clamp_min(0) / (1 - tt) ** 3)
    torch.testing.assert_close(targets.probs.sum(-1), torch.ones_like(x1))


def test_training_losses_sum_the_heads_and_backpropagate():
    net = ImageGeneratorNet(TINY, (1, 8, 8), ("flow", "jump"), 8)
    x1 = torch.rand(6, 1, 8, 8) * 2 - 1
    losses = training_losses(net, CondOTPath(), x1, torch.Generator().manual_seed(0), jump_weight=2.0)
    torch.testing.assert_close(losses["total"], losses["flow"] + 2.0 * losses["jump"])
    losses["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


def test_per_level_bin_masses_equal_the_direct_computation():
    from multiflow_gm.images.datasets import to_unit_range

    path, edges = CondOTPath(), bin_edges(32)
    g = torch.Generator().manual_seed(1)
    x1 = to_unit_range(torch.randint(0, 256, (3, 2, 20, 20), generator=g, dtype=torch.uint8))
    t = torch.tensor([0.1, 0.5, 0.97])
    x_t = path.draw(x1, t, x0=torch.randn(x1.shape, generator=g)).x_t
    fast, direct = jump_targets(path, x_t, x1, t, edges), jump_targets(path, x_t, x1, t, edges, levels=None)
    assert torch.equal(fast.probs, direct.probs) and torch.equal(fast.intensity, direct.intensity)
    # Off-grid data takes the direct route.
    off = jump_targets(path, x_t, x1 * 0.999, t, edges)
    torch.testing.assert_close(off.probs, path.jump_kernel(x1 * 0.999, t).bin_masses(edges))
