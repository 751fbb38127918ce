"""The one protein alphabet: file residues vs model tokens, and the mapping between them."""

from __future__ import annotations

import numpy as np
import torch

from multiflow_gm.protein import alphabet
from multiflow_gm.protein.model.network import CoDesignNetwork, ModelConfig


def test_twenty_amino_acids_and_two_distinct_extra_symbols():
    assert alphabet.NUM_AMINO_ACIDS == 20 == len(set(alphabet.AA_ORDER))
    # Same index, different vocabularies: "unknown residue in a file" vs "masked token".
    assert alphabet.FILE_ALPHABET[alphabet.UNKNOWN] == alphabet.UNKNOWN_LETTER == "X"
    assert alphabet.MODEL_VOCABULARY[alphabet.MASK] == alphabet.MASK_SYMBOL
    assert alphabet.MASK_SYMBOL != alphabet.UNKNOWN_LETTER
    assert alphabet.FILE_ALPHABET[:20] == "".join(alphabet.MODEL_VOCABULARY[:20]) == alphabet.AA_ORDER
    assert alphabet.NUM_MODEL_TOKENS == 21


def test_unknown_is_mapped_to_mask_only_at_the_boundary():
    parsed = np.array([alphabet.residue_index(n) for n in ("ALA", "MSE", "UNK", "HOH", "VAL")])
    assert parsed.tolist() == [0, alphabet.AA_ORDER.index("M"), alphabet.UNKNOWN, alphabet.UNKNOWN, 19]
    assert alphabet.sequence_to_indices("AXV") == [0, alphabet.UNKNOWN, 19]
    tokens = alphabet.model_tokens(torch.as_tensor(parsed))
    assert tokens.tolist() == [0, parsed[1], alphabet.MASK, alphabet.MASK, 19]
    assert tokens.dtype == torch.int64
    as_numpy = alphabet.model_tokens(parsed)
    assert as_numpy.tolist() == tokens.tolist() and as_numpy.dtype == parsed.dtype
    standard = torch.arange(alphabet.NUM_AMINO_ACIDS)
    assert torch.equal(alphabet.model_tokens(standard), standard)


def test_is_amino_acid_and_sequence_round_trip():
    assert alphabet.is_amino_acid(np.arange(-1, 22)).tolist() == [False] + [True] * 20 + [False, False]
    assert alphabet.indices_to_sequence(alphabet.sequence_to_indices("ACDXW")) == "ACDXW"
    assert alphabet.indices_to_sequence([alphabet.MASK]) == "X"


def test_network_vocabulary_matches_the_model_tokens():
    net = CoDesignNetwork(ModelConfig(c_s=16, c_z=8, c_hidden=8, num_heads=2, num_blocks=1, seq_heads=2,
                                      seq_layers=1))
    assert net.nodes.aatype.num_embeddings == alphabet.NUM_MODEL_TOKENS
