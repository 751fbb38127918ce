"""Residue alphabets and ideal backbone geometry shared by data, model and evaluation.

Coordinates are in Angstrom. The local residue frame is the one built by
Gram-Schmidt from (N, CA, C): origin at CA, x axis along CA->C, the N atom in the
xy plane with positive y (AlphaFold 2 convention).
"""

from __future__ import annotations

# The 20 standard amino acids in AlphaFold 2 order; index 20 is "unknown" (X).
AA_ORDER = "ARNDCQEGHILKMFPSTWYV"
NUM_STANDARD = 20
UNKNOWN_INDEX = 20
UNKNOWN_LETTER = "X"

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

BACKBONE_ATOMS = ("N", "CA", "C", "O")
OUTPUT_ATOMS = ("N", "CA", "C", "O", "CB")

# Ideal backbone atom positions in the local frame (Angstrom), AlphaFold 2 values
# (averaged over residue types for N and C; CB from alanine).
IDEAL_N = (-0.5272, 1.3593, 0.0)
IDEAL_CA = (0.0, 0.0, 0.0)
IDEAL_C = (1.5233, 0.0, 0.0)
IDEAL_CB = (-0.5297, -0.7742, -1.2016)
# Bond length C=O and the angle CA-C-O used to place O from the next residue's N.
IDEAL_C_O_BOND = 1.231
IDEAL_CA_C_O_ANGLE_DEG = 120.5

CA_CA_DISTANCE = 3.80  # trans peptide, Angstrom


def residue_index(three_letter: str) -> int:
    """Index in :data:`AA_ORDER` of a residue name; modified residues map to their parent."""
    name = MODIFIED_TO_PARENT.get(three_letter.upper(), three_letter.upper())
    one = THREE_TO_ONE.get(name)
    return AA_ORDER.index(one) if one is not None else UNKNOWN_INDEX


def sequence_to_indices(sequence: str) -> list[int]:
    """One-letter sequence to indices; letters outside the 20 standard become unknown."""
    return [AA_ORDER.index(c) if c in AA_ORDER else UNKNOWN_INDEX for c in sequence.upper()]


def indices_to_sequence(indices) -> str:
    """Indices to a one-letter sequence; anything outside 0..19 becomes 'X'."""
    return "".join(AA_ORDER[i] if 0 <= int(i) < NUM_STANDARD else UNKNOWN_LETTER for i in indices)
