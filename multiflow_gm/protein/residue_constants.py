"""Ideal backbone geometry shared by data, model and evaluation (the alphabet is :mod:`alphabet`).

Coordinates are in Angstrom. The local residue frame is the one built by
Gram-Schmidt from (N, CA, C): origin at CA, x axis along CA->C, the N atom in the
xy plane with positive y (AlphaFold 2 convention).
"""

from __future__ import annotations

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

