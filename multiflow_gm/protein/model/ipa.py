"""Invariant point attention (AlphaFold 2, Jumper et al. 2021), dense or on neighbour lists.

The point-distance term ``-(gamma_h / 2) sum_p ||T_i q_p - T_j k_p||^2`` is expanded as
``gamma_h q.k - gamma_h |k|^2 / 2`` (the ``|q|^2`` part is constant over j and
cancels in the softmax), so scalar and point terms become one matrix product of
augmented queries and keys plus a per-key bias. Attention weights are also
needed for the pair output ``sum_j a_ij z_ij``, so they are formed explicitly.

Shapes: s ``[B, L, c_s]``; z ``[B, L, K, c_z]`` (K = L dense); frames ``[B, L, 3, 3]``,
``[B, L, 3]`` (nm); mask ``[B, L]``; neighbours ``[B, L, K]`` or None.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from multiflow_gm.protein.model import frames as fr
from multiflow_gm.protein.model.embeddings import gather_neighbours

_NEG = -1e9


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
        # Augmented queries/keys: [scalar / sqrt(3c) | gamma * points] . [k | points].
        q_aug = torch.cat([q * math.sqrt(1.0 / (3 * c)), (gamma[:, None, None] * q_pts).flatten(-2)], -1)
        k_aug = torch.cat([k, k_pts.flatten(-2)], -1)
        k_bias = -0.5 * gamma * (k_pts ** 2).sum((-1, -2))                      # [B, L, H]
        v_aug = torch.cat([v, v_pts.flatten(-2)], -1)                            # [B, L, H, c + 3 pv]
        bias = self.pair_bias(z) * math.sqrt(1.0 / 3)                            # [B, L, K, H]
        if neighbours is None:
            o_aug, o_pair = self._dense(q_aug, k_aug, k_bias, v_aug, bias, z, mask)
        else:
            o_aug, o_pair = self._sparse(q_aug, k_aug, k_bias, v_aug, bias, z, mask, neighbours)
        o, o_pts = o_aug.split([c, 3 * pv], dim=-1)
        o_pts = o_pts.reshape(b, l, h * pv, 3)
        o_pts = fr.invert_apply(rotations, translations, o_pts)                  # back to local frames
        norms = torch.sqrt((o_pts ** 2).sum(-1) + 1e-8)
        feats = torch.cat([o.reshape(b, l, h * c), o_pts.reshape(b, l, -1), norms,
                           o_pair.reshape(b, l, h * self.c_z)], dim=-1)
        return self.out(feats) * mask[..., None]

    def _dense(self, q_aug, k_aug, k_bias, v_aug, bias, z, mask):
        logits = torch.einsum("bihd,bjhd->bhij", q_aug, k_aug)
        logits = logits + bias.permute(0, 3, 1, 2) + k_bias.permute(0, 2, 1)[:, :, None, :]
        pair_mask = mask[:, None, :, None] & mask[:, None, None, :]
        attn = torch.softmax(logits.masked_fill(~pair_mask, _NEG), dim=-1)
        o_aug = torch.einsum("bhij,bjhd->bihd", attn, v_aug)
        o_pair = torch.einsum("bhij,bijc->bihc", attn, z)
        return o_aug, o_pair

    def _sparse(self, q_aug, k_aug, k_bias, v_aug, bias, z, mask, neighbours):
        k_n = gather_neighbours(k_aug, neighbours)                               # [B, L, K, H, d]
        logits = torch.einsum("bihd,bikhd->bikh", q_aug, k_n)
        logits = logits + bias + gather_neighbours(k_bias, neighbours)
        valid = mask[:, :, None] & gather_neighbours(mask, neighbours)
        attn = torch.softmax(logits.masked_fill(~valid[..., None], _NEG), dim=2)
        o_aug = torch.einsum("bikh,bikhd->bihd", attn, gather_neighbours(v_aug, neighbours))
        o_pair = torch.einsum("bikh,bikc->bihc", attn, z)
        return o_aug, o_pair
