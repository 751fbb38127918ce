"""Write backbone models as PDB files (the output format of sampling and the evaluation inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_write_text
from multiflow_gm.protein import alphabet
from multiflow_gm.protein import residue_constants as rc


def write_backbone_pdb(path: str | Path, atoms, sequence: str, chain_id: str = "A",
                       bfactors=None) -> Path:
    """Write backbone atoms as a PDB file, atomically (temporary file + rename).

    atoms: [L, 4 or 5, 3] Angstrom (N, CA, C, O[, CB]); numpy or torch. sequence:
    one-letter codes (length L; 'X' -> UNK). CB is written for every residue but
    glycine when present. bfactors: optional [L]. Returns the path.
    """
    coords = _to_numpy(atoms).astype(np.float64)
    if coords.ndim != 3 or coords.shape[1] not in (4, 5) or coords.shape[2] != 3:
        raise ValueError(f"atoms must have shape [L, 4 or 5, 3], got {tuple(coords.shape)}")
    length = coords.shape[0]
    if len(sequence) != length:
        raise ValueError(f"sequence has {len(sequence)} residues but atoms has {length}")
    if not np.isfinite(coords).all():
        raise ValueError("atoms contain non-finite coordinates")
    bf = np.zeros(length) if bfactors is None else _to_numpy(bfactors).astype(np.float64).reshape(length)
    names = rc.OUTPUT_ATOMS[: coords.shape[1]]
    lines, serial = [], 1
    for i, letter in enumerate(sequence.upper()):
        res_name = alphabet.ONE_TO_THREE.get(letter, "UNK")
        for k, atom_name in enumerate(names):
            if atom_name == "CB" and res_name == "GLY":
                continue
            x, y, z = coords[i, k]
            lines.append(
                f"ATOM  {serial:5d} {atom_name:<4s}{'':1s}{res_name:>3s} {chain_id[:1]:1s}{i + 1:4d}{'':1s}   "
                f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{min(bf[i], 999.99):6.2f}          {atom_name[0]:>2s}  "
            )
            serial += 1
    last = alphabet.ONE_TO_THREE.get(sequence[-1].upper(), "UNK") if length else "UNK"
    lines.append(f"TER   {serial:5d}      {last:>3s} {chain_id[:1]:1s}{length:4d}")
    lines.append("END")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)

