"""Structure-conditioned sequence decoder: residue-type logits from a backbone and a partly revealed sequence.

A message-passing network over each residue's k nearest neighbours (by CA distance),
whose edge features are radial bases of the 16 distances between the two residues'
N, CA, C and virtual CB atoms plus their relative sequence position: the features with
which ProteinMPNN reaches about 50% recovery, where the co-design trunk's pair
representation reaches about 20%. The co-design network runs it on its own predicted
clean backbone, so the sequence it proposes is read off explicit geometry.

Every input is invariant (distances, sequence offsets, residue types, times), so the
logits are invariant to rotations and translations of the backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from multiflow_gm.protein.alphabet import NUM_MODEL_TOKENS
from multiflow_gm.protein.model.embeddings import (backbone_pair_distances, backbone_pair_distances_with_oxygen,
                                                   gather_neighbours, rbf, select_neighbours, sinusoidal)


class MessageLayer(nn.Module):
    """One round of neighbour messages, a node feed-forward, and an edge update (all residual, normalised)."""

    def __init__(self, hidden: int, scale: float):
        super().__init__()
        self.scale = scale
        self.message = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                     nn.Linear(hidden, hidden))
        self.node_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))
        self.ff_norm = nn.LayerNorm(hidden)
        self.edge_update = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.edge_norm = nn.LayerNorm(hidden)

    @staticmethod
    def _pair_input(layer: nn.Linear, h, e, neighbours):
        """``layer(cat([h_i, e_ij, h_j]))`` for every edge, without building the concatenation.

        The weight splits into the blocks that read h_i, e_ij and h_j; the two node blocks are
        applied once per residue ``[B, L, H]`` and broadcast or gathered onto the K edges, which
        saves two thirds of the edge-level product (same function, same parameters).
        """
        w_i, w_e, w_j = layer.weight.split(h.shape[-1], dim=1)
        own = torch.nn.functional.linear(h, w_i, layer.bias)
        out = torch.matmul(e, w_e.t())
        return out.add_(own[:, :, None]).add_(gather_neighbours(h @ w_j.t(), neighbours))

    def _edge_mlp(self, mlp: nn.Sequential, h, e, neighbours):
        return mlp[1:](self._pair_input(mlp[0], h, e, neighbours))

    def forward(self, h, e, neighbours, edge_mask, node_mask, update_edges: bool = True):
        """``h [B, L, H]``, ``e [B, L, K, H]``, ``neighbours [B, L, K]``, masks ``[B, L, K]`` / ``[B, L]``.
        ``update_edges=False`` returns ``e`` unchanged (the last layer's edges are never read)."""
        messages = self._edge_mlp(self.message, h, e, neighbours) * edge_mask[..., None]
        h = self.node_norm(h + messages.sum(dim=2) / self.scale)
        h = self.ff_norm(h + self.feed_forward(h)) * node_mask[..., None]
        if not update_edges:
            return h, e
        e = self.edge_norm(e + self._edge_mlp(self.edge_update, h, e, neighbours))
        return h, e


class SequenceDecoder(nn.Module):
    """Logits ``[B, L, NUM_MODEL_TOKENS]`` from a backbone's frames and the current residue types.

    ``c_s`` is the width of an optional per-residue context (the co-design trunk's node
    features); its projection starts at zero, so a decoder trained without context
    computes the same function when a context is first attached. ``oxygen`` adds the nine
    distances to each residue's carbonyl O (placed from its successor's N) to the 16.
    """

    def __init__(self, c_s: int, hidden: int = 128, num_layers: int = 3, knn: int = 30, num_rbf: int = 16,
                 max_distance_nm: float = 2.2, max_relpos: int = 32, time_dim: int = 32, oxygen: bool = False):
        super().__init__()
        self.oxygen = oxygen
        self.knn, self.num_rbf, self.max_distance = knn, num_rbf, max_distance_nm
        self.max_relpos, self.time_dim = max_relpos, time_dim
        self.aatype = nn.Embedding(NUM_MODEL_TOKENS, hidden)
        self.time = nn.Linear(time_dim, hidden)
        self.context = nn.Linear(c_s, hidden, bias=False)
        nn.init.zeros_(self.context.weight)
        self.node_norm = nn.LayerNorm(hidden)
        self.relpos = nn.Embedding(2 * max_relpos + 1, hidden)
        self.edge_in = nn.Linear((25 if oxygen else 16) * num_rbf, hidden)
        self.edge_norm = nn.LayerNorm(hidden)
        self.layers = nn.ModuleList([MessageLayer(hidden, scale=float(knn)) for _ in range(num_layers)])
        self.out = nn.Linear(hidden, NUM_MODEL_TOKENS)
        # Zero logits at first: added to a trained network's, the decoder changes nothing until trained.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, aatype, rotations, translations_nm, t_struct, residue_index, residue_mask, context=None):
        """``aatype [B, L]`` model tokens; frames ``[B, L, 3, 3]``, ``[B, L, 3]`` (nm);
        ``t_struct [B]`` (how far the backbone is from noise); ``context [B, L, c_s]`` or None."""
        mask = residue_mask.bool()
        # Atom placement and distances stay in the frames' precision under autocast: bf16 would
        # blur coordinates of a few nm by about 0.02 nm, as much as the training noise.
        with torch.autocast(device_type=translations_nm.device.type, enabled=False):
            neighbours = select_neighbours(translations_nm, mask, self.knn, sequence_window=0)
            if self.oxygen:
                distances = backbone_pair_distances_with_oxygen(rotations, translations_nm, neighbours, residue_index,
                                                                mask)
            else:
                distances = backbone_pair_distances(rotations, translations_nm, neighbours)
        edge_mask = gather_neighbours(mask[..., None].float(), neighbours)[..., 0] * mask[..., None]
        offset = gather_neighbours(residue_index[..., None], neighbours)[..., 0] - residue_index[..., None]
        relpos = offset.clamp(-self.max_relpos, self.max_relpos) + self.max_relpos
        e = self.edge_in(rbf(distances, self.num_rbf, self.max_distance).flatten(-2)) + self.relpos(relpos)
        e = self.edge_norm(e)
        times = sinusoidal(t_struct * 1000, self.time_dim).to(self.time.weight.dtype)
        h = self.aatype(aatype) + self.time(times)[:, None]
        if context is not None:
            h = h + self.context(context.to(h.dtype))
        h = self.node_norm(h) * mask[..., None]
        for index, layer in enumerate(self.layers):
            h, e = layer(h, e, neighbours, edge_mask, mask, update_edges=index < len(self.layers) - 1)
        return self.out(h)


def load_grown(decoder: SequenceDecoder, weights: dict[str, torch.Tensor]) -> list[str]:
    """Load a decoder's ``weights`` into a ``decoder`` that is as large or larger, nearly preserving its function.

    Tensors of equal shape are copied. A source without the O distances leaves the extra
    edge-input columns at zero, so they start with no effect. Layers beyond the source's
    start with zero message, feed-forward and edge-update outputs, so only their
    LayerNorms act. Returns a line per grown part; raises ``ValueError`` on any other mismatch.
    """
    own = decoder.state_dict()
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ValueError(f"tensors the decoder does not have: {unknown[:3]}")
    source_layers = len({key.split(".")[1] for key in weights if key.startswith("layers.")})
    grown, loaded = [], {}
    for key, value in own.items():
        source = weights.get(key)
        if source is not None and source.shape == value.shape:
            loaded[key] = source
        elif key == "edge_in.weight" and source is not None and source.shape[0] == value.shape[0]:
            loaded[key] = torch.cat([source, torch.zeros(value.shape[0], value.shape[1] - source.shape[1])], dim=1)
            grown.append(f"edge input: {source.shape[1]} -> {value.shape[1]} features (new ones start at zero)")
        elif source is None and key.startswith("layers.") and int(key.split(".")[1]) >= source_layers:
            loaded[key] = value
        else:
            raise ValueError(f"{key}: shape {tuple(value.shape)} cannot grow from "
                             f"{None if source is None else tuple(source.shape)}")
    decoder.load_state_dict(loaded)
    for layer in decoder.layers[source_layers:]:
        for last in (layer.message[-1], layer.feed_forward[-1], layer.edge_update[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
    if len(decoder.layers) > source_layers:
        grown.append(f"layers: {source_layers} -> {len(decoder.layers)} (new ones start with zero outputs)")
    return grown
