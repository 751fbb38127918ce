"""Trunk block: IPA -> sequence transformer -> node transition -> backbone update -> edge update."""

from __future__ import annotations

import torch
from torch import nn

from multiflow_gm.protein.model import frames as fr
from multiflow_gm.protein.model.embeddings import pair_linear, pairwise
from multiflow_gm.protein.model.ipa import InvariantPointAttention


class NodeTransition(nn.Module):
    def __init__(self, c_s: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c_s, c_s), nn.ReLU(), nn.Linear(c_s, c_s), nn.ReLU(),
                                 nn.Linear(c_s, c_s))
        self.norm = nn.LayerNorm(c_s)

    def forward(self, s):
        return self.norm(s + self.mlp(s))


class EdgeTransition(nn.Module):
    """``z_ij <- LN(z_ij + MLP([z_ij, s_i, s_j]))`` with the first layer split by input,
    so the node terms cost O(L) instead of O(L^2) (same function as the concatenation).

    Edge tensors dominate the cost at every length, so the pair-sized steps run in
    place on the matrix-product outputs: one allocation per layer, no extra passes.
    """

    def __init__(self, c_s: int, c_z: int, hidden: int):
        super().__init__()
        self.from_edge = nn.Linear(c_z, hidden)
        self.from_i = nn.Linear(c_s, hidden, bias=False)
        self.from_j = nn.Linear(c_s, hidden, bias=False)
        # Indexed below rather than called, so saved weights keep their ``mlp.1`` / ``mlp.3`` names.
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, c_z))
        self.norm = nn.LayerNorm(c_z)

    def forward(self, s, z, neighbours):
        _, node_j = pairwise(self.from_j(s), neighbours)
        node_i = self.from_i(s)[:, :, None] + self.from_edge.bias
        h = torch.matmul(z, self.from_edge.weight.t()).add_(node_i).add_(node_j).relu_()
        h = pair_linear(h, self.mlp[1]).relu_()
        update = pair_linear(h, self.mlp[3])
        # Under autocast the update is bf16: add out of place so the residual stream keeps z's precision.
        return self.norm(update.add_(z) if update.dtype == z.dtype else z + update)


class TrunkBlock(nn.Module):
    def __init__(self, c_s, c_z, c_hidden, num_heads, num_qk_points, num_v_points, seq_heads,
                 seq_layers, edge_hidden, update_edges: bool):
        super().__init__()
        self.ipa = InvariantPointAttention(c_s, c_z, c_hidden, num_heads, num_qk_points, num_v_points)
        self.ipa_norm = nn.LayerNorm(c_s)
        layer = nn.TransformerEncoderLayer(c_s, seq_heads, dim_feedforward=c_s, dropout=0.0,
                                           batch_first=True, norm_first=False)
        self.seq = nn.TransformerEncoder(layer, seq_layers, enable_nested_tensor=False) if seq_layers else None
        self.seq_out = nn.Linear(c_s, c_s) if seq_layers else None
        self.transition = NodeTransition(c_s)
        self.backbone_update = nn.Linear(c_s, 6)
        nn.init.zeros_(self.backbone_update.weight)
        nn.init.zeros_(self.backbone_update.bias)
        self.edge = EdgeTransition(c_s, c_z, edge_hidden) if update_edges else None

    def forward(self, s, z, rotations, translations, mask, neighbours, padding=None):
        """``padding`` ``[B, L]`` is True at padding residues, or None when there are none
        (the unmasked attention kernel is several times faster)."""
        s = self.ipa_norm(s + self.ipa(s, z, rotations, translations, mask, neighbours).to(s.dtype))
        if self.seq is not None:
            s = s + self.seq_out(self.seq(s, src_key_padding_mask=padding))
        s = self.transition(s) * mask[..., None]
        update = self.backbone_update(s).to(translations.dtype) * mask[..., None]
        rotations, translations = fr.compose_update(rotations, translations, update)
        if self.edge is not None:
            z = self.edge(s, z, neighbours)
        return s, z, rotations, translations
