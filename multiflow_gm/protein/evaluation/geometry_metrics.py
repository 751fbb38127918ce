"""Backbone geometry checks that need no reference: bond distances, angles, clashes.

All coordinates are in Angstrom; ``atoms`` arrays are ``[L, >=3, 3]`` with atom
order N, CA, C (O and CB may follow and are ignored here).
"""

from __future__ import annotations

import numpy as np

from multiflow_gm.protein.residue_constants import CA_CA_DISTANCE

# A trans peptide puts consecutive CA atoms 3.80 A apart; outside this window the
# bond is distorted (cis peptides, about 2.9 A, are rare enough to count as outliers).
CA_CA_WINDOW = (3.6, 4.0)
# Consecutive CA atoms further apart than this cannot be bonded (the data filters'
# chain-break threshold).
CHAIN_BREAK_DISTANCE = 4.2
# Non-adjacent CA atoms closer than this overlap sterically.
CLASH_DISTANCE = 3.0


def consecutive_ca_distances(ca: np.ndarray) -> np.ndarray:
    """Distances between CA atoms i and i+1, ``[L-1]`` Angstrom, from ``ca`` ``[L, 3]``."""
    return np.linalg.norm(np.diff(np.asarray(ca, dtype=np.float64), axis=0), axis=-1)


def bond_angles_deg(first: np.ndarray, centre: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Angle at ``centre`` between the bonds to ``first`` and ``last``, degrees, ``[L]``."""
    u = np.asarray(first, np.float64) - centre
    v = np.asarray(last, np.float64) - centre
    cosine = np.sum(u * v, axis=-1) / np.maximum(
        np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-12
    )
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def ca_clash_pairs(ca: np.ndarray, threshold: float = CLASH_DISTANCE) -> np.ndarray:
    """Index pairs ``[n, 2]`` (i < j, j - i >= 2) of CA atoms closer than ``threshold`` A."""
    ca = np.asarray(ca, dtype=np.float64)
    distances = np.linalg.norm(ca[:, None, :] - ca[None, :, :], axis=-1)
    i, j = np.nonzero(np.triu(distances < threshold, k=2))
    return np.stack([i, j], axis=-1)


def backbone_geometry(atoms: np.ndarray) -> dict[str, float]:
    """Per-chain geometry summary of a backbone ``atoms`` ``[L, >=3, 3]`` (N, CA, C, ...).

    Returns CA-CA statistics (Angstrom), the fraction of CA-CA bonds outside
    :data:`CA_CA_WINDOW`, the number of chain breaks, the N-CA-C angle (degrees)
    the number of clashing non-adjacent CA pairs and the fraction of residues in at
    least one such pair. A chain of length 1 has no bonds; its bond statistics are NaN.
    """
    atoms = np.asarray(atoms, dtype=np.float64)
    n, ca, c = atoms[:, 0], atoms[:, 1], atoms[:, 2]
    bonds = consecutive_ca_distances(ca)
    angles = bond_angles_deg(n, ca, c)
    has_bonds = bonds.size > 0
    outside = (bonds < CA_CA_WINDOW[0]) | (bonds > CA_CA_WINDOW[1])
    clashing = ca_clash_pairs(ca)
    return {
        "ca_ca_mean": float(bonds.mean()) if has_bonds else float("nan"),
        "ca_ca_std": float(bonds.std()) if has_bonds else float("nan"),
        "ca_ca_max_deviation": float(np.abs(bonds - CA_CA_DISTANCE).max()) if has_bonds else float("nan"),
        "ca_ca_outside_fraction": float(outside.mean()) if has_bonds else float("nan"),
        "chain_breaks": int((bonds > CHAIN_BREAK_DISTANCE).sum()),
        "n_ca_c_angle_mean": float(angles.mean()),
        "n_ca_c_angle_std": float(angles.std()),
        "clashes": int(len(clashing)),
        "clash_residue_fraction": float(np.unique(clashing).size / max(len(ca), 1)),
    }
