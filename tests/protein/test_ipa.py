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
