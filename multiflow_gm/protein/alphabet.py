"""The one protein alphabet: residue types in files and caches, and tokens the network sees.

Two vocabularies share the first 20 indices (the amino acids in AlphaFold 2 order):

* the **file alphabet** (parsed structures, chain caches, ``aatype`` arrays of examples):
  index :data:`UNKNOWN` is a residue present in the file whose type is not one of the 20;
* the **model vocabulary** (network input ``aatype``, the masking path): index :data:`MASK`
  is the masked state, "type not yet decided".

Both extra symbols are stored at index 20: the chain cache format stores unknown residues
as 20 and the shipped network's embedding has exactly 21 rows with row 20 the mask, so
neither number can move. They are still different concepts, and the one place a file
residue becomes a network token is :func:`model_tokens`.
"""

from __future__ import annotations

import numpy as np
import torch

# The 20 standard amino acids in AlphaFold 2 order.
AA_ORDER = "ARNDCQEGHILKMFPSTWYV"
NUM_AMINO_ACIDS = len(AA_ORDER)

# File alphabet: a residue in the file that is none of the 20 standard types.
UNKNOWN = NUM_AMINO_ACIDS
UNKNOWN_LETTER = "X"
FILE_ALPHABET = AA_ORDER + UNKNOWN_LETTER

# Model vocabulary: the masked state of the masking path (the network's extra embedding row).
MASK = NUM_AMINO_ACIDS
MASK_SYMBOL = "<mask>"
MODEL_VOCABULARY = tuple(AA_ORDER) + (MASK_SYMBOL,)
NUM_MODEL_TOKENS = len(MODEL_VOCABULARY)

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C",
    "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H", "ILE": "I",
    "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P",
    "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
}
ONE_TO_THREE = {one: three for three, one in THREE_TO_ONE.items()}
ONE_TO_THREE[UNKNOWN_LETTER] = "UNK"

# Common modified residues mapped to their parent standard residue.
MODIFIED_TO_PARENT = {
    "MSE": "MET", "SEP": "SER", "TPO": "THR", "PTR": "TYR", "HYP": "PRO",
    "MLY": "LYS", "M3L": "LYS", "KCX": "LYS", "LLP": "LYS", "ALY": "LYS",
    "CSO": "CYS", "CSD": "CYS", "CME": "CYS", "CSX": "CYS", "OCS": "CYS",
    "CAS": "CYS", "SCH": "CYS", "SMC": "CYS", "PCA": "GLN", "MEN": "ASN",
    "HIC": "HIS", "NEP": "HIS", "TYS": "TYR", "DAL": "ALA", "FME": "MET",
    "SAC": "SER", "CGU": "GLU", "AIB": "ALA", "NLE": "LEU", "MVA": "VAL",
    "HSD": "HIS", "HSE": "HIS", "HSP": "HIS", "HID": "HIS", "HIE": "HIS",
    "HIP": "HIS", "CYX": "CYS", "ASH": "ASP", "GLH": "GLU", "LYN": "LYS",
}


def residue_index(three_letter: str) -> int:
    """File-alphabet index of a residue name; modified residues map to their parent, others to UNKNOWN."""
    name = MODIFIED_TO_PARENT.get(three_letter.upper(), three_letter.upper())
    one = THREE_TO_ONE.get(name)
    return AA_ORDER.index(one) if one is not None else UNKNOWN


def sequence_to_indices(sequence: str) -> list[int]:
    """One-letter sequence to file-alphabet indices; letters outside the 20 become UNKNOWN."""
    return [AA_ORDER.index(c) if c in AA_ORDER else UNKNOWN for c in sequence.upper()]


def indices_to_sequence(indices) -> str:
    """File-alphabet (or model) indices to a one-letter sequence; anything outside 0..19 becomes 'X'."""
    return "".join(AA_ORDER[i] if is_amino_acid(int(i)) else UNKNOWN_LETTER for i in indices)


def is_amino_acid(index):
    """True where ``index`` (int, numpy or torch array, any shape) is one of the 20 standard types."""
    return (index >= 0) & (index < NUM_AMINO_ACIDS)


def model_tokens(aatype):
    """File-alphabet ``aatype`` (torch or numpy, any shape, values 0..20) -> model tokens.

    An unknown residue has no type the model could learn or be told, so the network sees
    it exactly like a not-yet-decided residue: UNKNOWN becomes MASK, and the masking path
    then keeps it masked and scores no sequence loss on it. Standard types pass unchanged.
    """
    if isinstance(aatype, torch.Tensor):
        return torch.where(aatype >= UNKNOWN, torch.full_like(aatype, MASK), aatype)
    aatype = np.asarray(aatype)
    return np.where(aatype >= UNKNOWN, MASK, aatype).astype(aatype.dtype, copy=False)
