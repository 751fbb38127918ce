"""Invariant point attention (AlphaFold 2, Jumper et al. 2021), dense or on neighbour lists.

The point-distance term ``-(gamma_h / 2) sum_p ||T_i q_p - T_j k_p||^2`` is expanded as
``gamma_h q.k - gamma_h |k|^2 / 2`` (the ``|q|^2`` part is constant over j and
cancels in the softmax). The per-key bias (that norm term, and -1e9 for padding
keys) enters through a column of ones in the queries, so scalar, point and bias
terms are one matrix product of augmented queries and keys, accumulated onto the
pair bias. Attention weights are also needed for the pair output
``sum_j a_ij z_ij``, so they are formed explicitly.

Shapes: s ``[B, L, c_s]``; z ``[B, L, K, c_z]`` (K = L dense); frames ``[B, L, 3, 3]``,
``[B, L, 3]`` (nm); mask ``[B, L]``; neighbours ``[B, L, K]`` or None.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from multiflow_gm.protein.model import frames as fr

_NEG = -1e9
# Sparse attention forms query-row blocks of the dense q.k product of at most this many
# entries: one matrix product plus a gather costs less than gathering K key vectors per
# residue (measured at 1,000 residues), and the block bound keeps memory linear in L.
_SPARSE_BLOCK_ENTRIES = 1 << 23


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class InvariantPointAttention(nn.Module):
    def __init__(self, c_s: int, c_z: int, c_hidden: int, num_heads: int, num_qk_points: int,
                 num_v_points: int):
        super().__init__()
        self.h, self.c, self.pq, self.pv, self.c_z = num_heads, c_hidden, num_qk_points, num_v_points, c_z
        self.q = nn.Linear(c_s, num_heads * c_hidden)
        self.kv = nn.Linear(c_s, 2 * num_heads * c_hidden)
        self.q_pts = nn.Linear(c_s, num_heads * num_qk_points * 3)
        self.kv_pts = nn.Linear(c_s, num_heads * (num_qk_points + num_v_points) * 3)
        self.pair_bias = nn.Linear(c_z, num_heads)
        self.head_weights = nn.Parameter(torch.full((num_heads,), math.log(math.e - 1)))  # softplus -> 1
        out_dim = num_heads * (c_hidden + num_v_points * 4 + c_z)
        self.out = nn.Linear(out_dim, c_s)

    def _points(self, linear, s, rotations, translations, count):
        b, l, _ = s.shape
        local = linear(s).reshape(b, l, self.h * count, 3)
        return fr.apply(rotations, translations, local).reshape(b, l, self.h, count, 3)

    def forward(self, s, z, rotations, translations, mask, neighbours=None):
        # Point coordinates need float32 precision (bf16 keeps ~3 digits): no autocast here.
        with torch.autocast(device_type=s.device.type, enabled=False):
            return self._attend(_at_least_float32(s), _at_least_float32(z), _at_least_float32(rotations),
                                _at_least_float32(translations), mask, neighbours)

    def _attend(self, s, z, rotations, translations, mask, neighbours):
        b, l, _ = s.shape
        h, c, pq, pv = self.h, self.c, self.pq, self.pv
        q = self.q(s).reshape(b, l, h, c)
        k, v = self.kv(s).reshape(b, l, h, 2 * c).split(c, dim=-1)
        q_pts = self._points(self.q_pts, s, rotations, translations, pq)
        kv_pts = self._points(self.kv_pts, s, rotations, translations, pq + pv)
        k_pts, v_pts = kv_pts.split([pq, pv], dim=3)
        gamma = F.softplus(self.head_weights) * math.sqrt(1.0 / (3 * (pq * 9.0 / 2)))
        k_bias = -0.5 * gamma * (k_pts ** 2).sum((-1, -2)) + (~mask)[..., None] * _NEG   # [B, L, H]
        # Augmented queries/keys, heads first: [scalar / sqrt(3c) | gamma * points | 1] . [k | points | bias].
        q_aug = torch.cat([q * math.sqrt(1.0 / (3 * c)), (gamma[:, None, None] * q_pts).flatten(-2),
                           torch.ones_like(q[..., :1])], -1).transpose(1, 2)               # [B, H, L, d]
        k_aug = torch.cat([k, k_pts.flatten(-2), k_bias[..., None]], -1).transpose(1, 2)  # [B, H, L, d]
        v_aug = torch.cat([v, v_pts.flatten(-2)], -1).transpose(1, 2)                     # [B, H, L, c + 3 pv]
        bias = self._pair_bias_heads_first(z)                                             # [B, H, L, K]
        if neighbours is None:
            logits = torch.matmul(q_aug, k_aug.transpose(-1, -2)).add_(bias)
            attn = torch.softmax(logits, dim=-1)
            o_aug = torch.matmul(attn, v_aug)
        else:
            attn, o_aug = self._sparse(q_aug, k_aug, v_aug, bias, neighbours)
        o_pair = torch.matmul(attn.transpose(1, 2), z)                                   # [B, L, H, c_z]
        o, o_pts = o_aug.transpose(1, 2).split([c, 3 * pv], dim=-1)
        o_pts = fr.invert_apply(rotations, translations, o_pts.reshape(b, l, h * pv, 3))  # back to local frames
        norms = torch.sqrt((o_pts ** 2).sum(-1) + 1e-8)
        feats = torch.cat([o.reshape(b, l, h * c), o_pts.reshape(b, l, -1), norms,
                           o_pair.reshape(b, l, h * self.c_z)], dim=-1)
        return self.out(feats) * mask[..., None]

    def _pair_bias_heads_first(self, z):
        """``pair_bias(z) / sqrt(3)`` as a ``[B, H, L, K]`` view (it is only ever added to logits)."""
        scale = math.sqrt(1.0 / 3)
        return F.linear(z, self.pair_bias.weight * scale, self.pair_bias.bias * scale).permute(0, 3, 1, 2)

    @staticmethod
    def _sparse(q_aug, k_aug, v_aug, bias, neighbours):
        """Attention restricted to ``neighbours``: weights ``[B, H, L, K]`` and outputs ``[B, H, L, dv]``."""
        b, h, l, _ = q_aug.shape
        index = neighbours[:, None].expand(b, h, l, neighbours.shape[-1])
        rows = max(1, _SPARSE_BLOCK_ENTRIES // (b * h * l))
        logits = torch.cat([torch.matmul(q_aug[:, :, i:i + rows], k_aug.transpose(-1, -2))
                            .gather(-1, index[:, :, i:i + rows]) for i in range(0, l, rows)], dim=2)
        attn = torch.softmax(logits + bias, dim=-1)
        outputs = []
        for i in range(0, l, rows):
            block = attn[:, :, i:i + rows]
            dense = torch.zeros(*block.shape[:-1], l, dtype=block.dtype, device=block.device)
            outputs.append(torch.matmul(dense.scatter(-1, index[:, :, i:i + rows], block), v_aug))
        return attn, torch.cat(outputs, dim=2)
