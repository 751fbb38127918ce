"""Sparse invariant point attention against a direct neighbour-list reference, values and gradients."""

import pytest
import torch

from multiflow_gm.protein.model import ipa
from multiflow_gm.protein.model.embeddings import gather_neighbours, select_neighbours


def _reference_sparse(q_aug, k_aug, v_aug, bias, neighbours):
    """Attention over each residue's K neighbours, written directly with gathered keys and values."""
    k_n = gather_neighbours(k_aug.transpose(1, 2), neighbours)                 # [B, L, K, H, d]
    v_n = gather_neighbours(v_aug.transpose(1, 2), neighbours)
    logits = torch.einsum("bhid,bikhd->bhik", q_aug, k_n) + bias
    attn = torch.softmax(logits, dim=-1)
    return attn, torch.einsum("bhik,bikhd->bhid", attn, v_n)


@pytest.mark.parametrize("block_entries", [1 << 23, 40])
def test_sparse_attention_matches_direct_neighbour_attention(monkeypatch, block_entries):
    # 40 entries forces one query row per block, so the blocked path is exercised too.
    monkeypatch.setattr(ipa, "_SPARSE_BLOCK_ENTRIES", block_entries)
    g = torch.Generator().manual_seed(0)
    b, h, l, d, dv, k = 2, 3, 11, 5, 4, 6
    tensors = [torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)
               for shape in ((b, h, l, d), (b, h, l, d), (b, h, l, dv), (b, h, l, k))]
    ca = torch.randn(b, l, 3, dtype=torch.float64, generator=g)
    neighbours = select_neighbours(ca, torch.ones(b, l, dtype=torch.bool), num_spatial=3, sequence_window=1)
    assert neighbours.shape == (b, l, k)
    attn, out = ipa.InvariantPointAttention._sparse(*tensors, neighbours)
    ref_attn, ref_out = _reference_sparse(*tensors, neighbours)
    assert torch.allclose(attn, ref_attn, atol=1e-12) and torch.allclose(out, ref_out, atol=1e-12)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad((out * weights).sum() + attn.square().sum(), tensors)
    ref_grads = torch.autograd.grad((ref_out * weights).sum() + ref_attn.square().sum(), tensors)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-12)


def test_gather_neighbours_picks_rows_per_batch_element():
    values = torch.arange(2 * 4 * 3).reshape(2, 4, 3)
    neighbours = torch.tensor([[[1, 0], [3, 2], [0, 0], [2, 1]], [[3, 3], [0, 1], [2, 0], [1, 2]]])
    out = gather_neighbours(values, neighbours)
    for bi in range(2):
        for i in range(4):
            for j in range(2):
                assert torch.equal(out[bi, i, j], values[bi, neighbours[bi, i, j]])


def _textbook_ipa(module, s, z, rot, trans, mask, point_term=True):
    """AlphaFold 2 supplement, Algorithm 22, written out residue pair by residue pair:

    a_ij^h = softmax_j( w_L [ q_i.k_j / sqrt(c) + b_ij^h
                               - gamma^h w_C / 2 sum_p ||T_i q_ip - T_j k_jp||^2 ] ),
    w_L = sqrt(1/3), w_C = sqrt(2 / (9 N_qp)); outputs sum_j a_ij v_j,
    T_i^-1 sum_j a_ij T_j v_jp (with their norms) and sum_j a_ij z_ij.
    """
    b, l, _ = s.shape
    h, c, pq, pv = module.h, module.c, module.pq, module.pv
    q = module.q(s).reshape(b, l, h, c)
    k, v = module.kv(s).reshape(b, l, h, 2 * c).split(c, dim=-1)
    local_q = module.q_pts(s).reshape(b, l, h, pq, 3)
    local_kv = module.kv_pts(s).reshape(b, l, h, pq + pv, 3)
    to_global = lambda p: torch.einsum("blij,blhpj->blhpi", rot, p) + trans[:, :, None, None, :]  # noqa: E731
    gq, gkv = to_global(local_q), to_global(local_kv)
    gk, gv = gkv[..., :pq, :], gkv[..., pq:, :]
    w_l, w_c = (1 / 3) ** 0.5, (2 / (9 * pq)) ** 0.5
    gamma = torch.nn.functional.softplus(module.head_weights)
    bias = module.pair_bias(z)                                                    # [B, L, L, H]
    scalar = torch.einsum("bihc,bjhc->bijh", q, k) / c ** 0.5
    dist2 = ((gq[:, :, None] - gk[:, None, :]) ** 2).sum((-1, -2))               # [B, L, L, H]
    logits = w_l * (scalar + bias - (gamma * w_c / 2 * dist2 if point_term else 0))
    logits = logits.masked_fill(~mask[:, None, :, None], float("-inf"))
    a = torch.softmax(logits, dim=2)                                              # over j
    o = torch.einsum("bijh,bjhc->bihc", a, v)
    o_pts_global = torch.einsum("bijh,bjhpx->bihpx", a, gv)
    o_pts = torch.einsum("blji,blhpj->blhpi", rot, o_pts_global - trans[:, :, None, None, :])
    norms = torch.sqrt((o_pts ** 2).sum(-1) + 1e-8)
    o_pair = torch.einsum("bijh,bijc->bihc", a, z)
    feats = torch.cat([o.reshape(b, l, -1), o_pts.reshape(b, l, -1), norms.reshape(b, l, -1),
                       o_pair.reshape(b, l, -1)], dim=-1)
    return module.out(feats) * mask[..., None]


@pytest.mark.parametrize("sparse", [False, True])
def test_ipa_matches_the_textbook_formula(sparse):
    from multiflow_gm.core import so3

    torch.manual_seed(0)
    b, l = 2, 7
    module = ipa.InvariantPointAttention(c_s=16, c_z=8, c_hidden=4, num_heads=3, num_qk_points=4,
                                         num_v_points=5).double()
    s, z = torch.randn(b, l, 16, dtype=torch.float64), torch.randn(b, l, l, 8, dtype=torch.float64)
    rot = so3.uniform((b, l), dtype=torch.float64)
    trans = torch.randn(b, l, 3, dtype=torch.float64)
    mask = torch.ones(b, l, dtype=torch.bool)
    mask[1, -2:] = False
    neighbours = torch.arange(l).expand(b, l, l) if sparse else None  # every key: the same attention
    with torch.no_grad():
        got = module(s, z, rot, trans, mask, neighbours)
        want = _textbook_ipa(module, s, z, rot, trans, mask)
        without_points = _textbook_ipa(module, s, z, rot, trans, mask, point_term=False)
    valid = mask[..., None].expand_as(got)
    assert torch.allclose(got[valid], want[valid], atol=1e-10)
    assert (got[valid] - without_points[valid]).abs().max() > 1e-3  # control: the point term matters
