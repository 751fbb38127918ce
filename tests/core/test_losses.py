"""Bregman losses: zero at the truth, positive elsewhere, and the conditional loss has the
marginal loss's gradient (checked by Monte Carlo on targets whose marginal is exact)."""

import pytest
import torch
import torch.nn.functional as F

from multiflow_gm.core import CondOTPath, MixtureTokenPath
from multiflow_gm.core.losses import (ctmc_generalized_kl, generalized_kl, jump_generalized_kl,
                                      jump_generalized_kl_sampled, masked_cross_entropy, squared_error)

F64 = torch.float64


def test_divergences_are_zero_at_truth_and_positive_elsewhere():
    a = torch.rand(500, 7, dtype=F64) + 0.01
    b = torch.rand(500, 7, dtype=F64) + 0.01
    assert torch.allclose(squared_error(a, a, 1), torch.zeros(500, dtype=F64))
    assert (squared_error(a, b, 1) > 0).all()
    assert torch.allclose(generalized_kl(a, a), torch.zeros(500, dtype=F64), atol=1e-12)
    assert (generalized_kl(a, b) > 0).all()
    # Sparse targets (zero mass on some states) are allowed: 0 log 0 = 0.
    sparse = a * (torch.rand_like(a) < 0.5)
    assert torch.allclose(generalized_kl(sparse, sparse), torch.zeros(500, dtype=F64), atol=1e-12)
    lam, lam2 = torch.rand(500, dtype=F64) + 0.1, torch.rand(500, dtype=F64) + 0.1
    p, q = torch.softmax(torch.randn(500, 9, dtype=F64), -1), torch.softmax(torch.randn(500, 9, dtype=F64), -1)
    assert torch.allclose(jump_generalized_kl(lam, p, lam, p.log()), torch.zeros(500, dtype=F64), atol=1e-12)
    assert (jump_generalized_kl(lam, p, lam2, q.log()) > 0).all()
    # It is the generalised KL of the measures lambda * J.
    assert torch.allclose(jump_generalized_kl(lam, p, lam2, q.log()),
                          generalized_kl(lam[:, None] * p, lam2[:, None] * q), atol=1e-12)
    state = torch.randint(0, 7, (500,))
    assert torch.allclose(ctmc_generalized_kl(a, a, state), torch.zeros(500, dtype=F64), atol=1e-12)
    assert (ctmc_generalized_kl(a, b, state) > 0).all()


def test_sampled_jump_loss_is_unbiased_up_to_a_constant():
    lam_true, probs_true = torch.tensor(2.0, dtype=F64), torch.softmax(torch.randn(6, dtype=F64), -1)
    draws = torch.multinomial(probs_true, 400000, replacement=True)
    gaps = []
    for _ in range(3):
        lam_pred, log_q = torch.rand((), dtype=F64) + 0.5, torch.log_softmax(torch.randn(6, dtype=F64), -1)
        sampled = jump_generalized_kl_sampled(lam_true, lam_pred, log_q[draws]).mean()
        gaps.append(float(jump_generalized_kl(lam_true, probs_true, lam_pred, log_q) - sampled))
    # The difference does not depend on the prediction: same gradients.
    assert max(gaps) - min(gaps) < 0.02


def test_masked_cross_entropy_shapes_and_mask():
    logits = torch.randn(2, 5, 4, 21)
    target = torch.randint(0, 21, (2, 5, 4))
    mask = torch.rand(2, 5, 4) < 0.5
    ce = masked_cross_entropy(logits, target, mask)
    ref = F.cross_entropy(logits.reshape(-1, 21), target.reshape(-1), reduction="none").reshape(2, 5, 4)
    assert torch.allclose(ce, ref * mask)


def _atoms_1d():
    return torch.tensor([[-1.5], [0.4], [2.0]], dtype=F64), torch.tensor([0.3, 0.5, 0.2], dtype=F64)


def _draw_conditional(atoms, probs, n, path, g):
    t = 0.05 + 0.9 * torch.rand(n, dtype=F64, generator=g)
    z = atoms[torch.multinomial(probs, n, replacement=True, generator=g)]
    x = path.draw(z, t, x0=torch.randn(n, 1, dtype=F64, generator=g)).x_t
    return t, z, x


def _grad(loss, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])


def _assert_same_direction(g_cond, g_marg, rtol):
    err = (g_cond - g_marg).norm() / g_marg.norm()
    assert err < rtol, f"relative gradient difference {err:.3f}"


def test_flow_loss_gradient_matches_marginal_loss():
    atoms, probs = _atoms_1d()
    path = CondOTPath()
    g = torch.Generator().manual_seed(0)
    t, z, x = _draw_conditional(atoms, probs, 200000, path, g)
    theta = torch.tensor([0.1, -0.3, 0.2, 0.05], dtype=F64, requires_grad=True)
    feats = torch.stack([torch.ones_like(t), x[:, 0], t, x[:, 0] * t], 1)
    pred = (feats @ theta)[:, None]
    # Exact marginal velocity: the conditional one at the posterior mean of z.
    w = torch.softmax(path.log_prob(x, atoms.T, t) + torch.log(probs), -1)       # [n, K]
    u_marg = path.velocity(x, w @ atoms, t)
    u_cond = path.velocity(x, z, t)
    _assert_same_direction(_grad(squared_error(u_cond, pred, 1).mean(), [theta]),
                           _grad(squared_error(u_marg, pred, 1).mean(), [theta]), 0.03)
    # The two losses differ by a constant in theta, not a multiple: values differ.
    assert squared_error(u_cond, pred, 1).mean() > squared_error(u_marg, pred, 1).mean()


def test_binned_jump_loss_gradient_matches_marginal_loss():
    atoms, probs = _atoms_1d()
    path = CondOTPath()
    g = torch.Generator().manual_seed(1)
    n, bins = 100000, 24
    t, z, x = _draw_conditional(atoms, probs, n, path, g)
    edges = torch.linspace(-3, 3, bins + 1, dtype=F64)
    theta_rate = torch.tensor([0.2, 0.1, -0.3], dtype=F64, requires_grad=True)
    theta_bins = (0.1 * torch.randn(bins, 3, dtype=F64, generator=g)).requires_grad_(True)
    feats = torch.stack([torch.ones_like(t), x[:, 0], t], 1)
    lam_pred = F.softplus(feats @ theta_rate)
    log_q = torch.log_softmax(feats @ theta_bins.T, -1)
    lam_z = path.jump_intensity(x, z, t)[:, 0]
    j_z = path.jump_kernel(z, t[:, None]).bin_masses(edges)[:, 0]              # [n, B]
    # Exact marginal: lambda = sum_k w_k lambda_k, Q_b = sum_k w_k lambda_k J_k(b).
    w = torch.softmax(path.log_prob(x, atoms.T, t) + torch.log(probs), -1)      # [n, K]
    lam_k = path.jump_intensity(x.expand(-1, 3), atoms.T.expand(n, -1), t)      # [n, K]
    j_k = path.jump_kernel(atoms.T.expand(n, -1), t[:, None]).bin_masses(edges)  # [n, K, B]
    q_marg = torch.einsum("nk,nkb->nb", w * lam_k, j_k)
    lam_marg = q_marg.sum(-1)
    j_marg = q_marg / lam_marg.clamp_min(1e-300)[:, None]
    params = [theta_rate, theta_bins]
    g_cond = _grad(jump_generalized_kl(lam_z, j_z, lam_pred, log_q).mean(), params)
    g_marg = _grad(jump_generalized_kl(lam_marg, j_marg, lam_pred, log_q).mean(), params)
    _assert_same_direction(g_cond, g_marg, 0.05)


@pytest.mark.parametrize("noise", ["mask", "uniform"])
def test_ctmc_loss_gradient_matches_marginal_loss(noise):
    seqs = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    probs = torch.tensor([4, 1, 1, 1, 3, 1, 1, 1, 2], dtype=F64)
    probs = probs / probs.sum()
    path = MixtureTokenPath(3, noise)
    g = torch.Generator().manual_seed(2)
    n = 200000
    t = 0.05 + 0.9 * torch.rand(n, dtype=F64, generator=g)
    z = seqs[torch.multinomial(probs, n, replacement=True, generator=g)]
    x = path.sample(z, t, generator=g)
    size = path.space.size
    # Model: logits of position i from the state of the other position (a lookup table).
    table = (0.1 * torch.randn(2, size, 3, dtype=F64, generator=g)).requires_grad_(True)
    logits = torch.stack([table[0, x[:, 1]], table[1, x[:, 0]]], 1)
    pred_rates = path.rates(x, torch.softmax(logits, -1), t)
    cond_rates = path.conditional_rates(x, z, t)
    # Exact marginal rates, grouped by the (few) distinct states to keep it cheap.
    marg_rates = torch.zeros_like(cond_rates)
    for i in range(n // 2000):
        sl = slice(i * 2000, (i + 1) * 2000)
        post = torch.einsum("nk,kiv->niv", _posterior_per_time(path, x[sl], seqs, probs, t[sl]),
                            F.one_hot(seqs, 3).to(F64))
        marg_rates[sl] = path.rates(x[sl], post, t[sl])
    g_cond = _grad(ctmc_generalized_kl(cond_rates, pred_rates, x).mean(), [table])
    g_marg = _grad(ctmc_generalized_kl(marg_rates, pred_rates, x).mean(), [table])
    _assert_same_direction(g_cond, g_marg, 0.05)


def _posterior_per_time(path, x, atoms, probs, t):
    """Posterior over atoms for a batch with per-example times."""
    cond = path.conditional_probs(atoms[:, None].expand(-1, x.shape[0], -1), t[None])  # [K, N, n, S]
    picked = torch.gather(cond, -1, x[None, :, :, None].expand(atoms.shape[0], -1, -1, 1)).squeeze(-1)
    logits = torch.log(picked.clamp_min(1e-300)).sum(-1).T + torch.log(probs)
    return torch.softmax(logits, -1)
