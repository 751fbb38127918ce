"""Chain filters: which raw chains (or chain segments) become training examples.

Each rejected chain gets one reason (the first filter it fails, in this order):
too_short / too_long (whole chain), bad_backbone_geometry, incomplete_backbone,
chain_break, then per segment too_short / too_long, unknown_residues,
too_much_coil, rg_outlier. Distances in Angstrom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data.config import FilterConfig
from multiflow_gm.protein.coordinates import radius_of_gyration
from multiflow_gm.protein.evaluation.secondary_structure import psea_states, state_fractions
from multiflow_gm.protein.structure_io import Problem, ProteinChain, RawChain

# Ideal N-CA, CA-C, C=O bond lengths (Engh & Huber), Angstrom.
_IDEAL_BONDS = np.array([1.458, 1.525, 1.231])


@dataclass
class AcceptedChain:
    """A chain that passed, with the annotations stored in the cache metadata."""

    chain: ProteinChain
    entry: str
    chain_id: str
    segment: int  # 0 for a whole chain, k >= 1 for the k-th segment of a split chain
    helix: float
    strand: float
    coil: float
    radius_of_gyration: float

    def metadata(self) -> dict:
        return {
            "name": self.chain.name, "entry": self.entry, "chain": self.chain_id,
            "segment": self.segment, "length": len(self.chain),
            "helix": round(self.helix, 4), "strand": round(self.strand, 4), "coil": round(self.coil, 4),
            "radius_of_gyration": round(self.radius_of_gyration, 3),
            "sequence": self.chain.sequence, "source": self.chain.source,
        }


def chain_name(entry: str, chain_id: str, segment: int = 0) -> str:
    """'1abc_A' (or '1abc_A-2' for a segment), with characters unsafe in file names replaced."""
    name = f"{entry}_{chain_id}" + (f"-{segment}" if segment else "")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def expected_radius_of_gyration(length) -> np.ndarray:
    """Typical Rg of a compact globular chain of this length: 2.2 L^0.38 Angstrom (Skolnick et al.)."""
    return 2.2 * np.asarray(length, dtype=np.float64) ** 0.38


def filter_chain(raw: RawChain, config: FilterConfig) -> tuple[list[AcceptedChain], list[Problem]]:
    """Apply the filters to one raw chain; returns accepted chains (segments) and rejections."""
    def reject(reason: str, detail: str) -> tuple[list, list]:
        return [], [Problem(raw.source, raw.chain_id, reason, detail)]

    has_ca = np.isfinite(raw.atoms[:, 1]).all(axis=1)
    idx = np.flatnonzero(has_ca)
    n_ca = idx.size
    if n_ca < config.min_length:
        return reject("too_short", f"{n_ca} residues with CA < {config.min_length}")
    if n_ca > config.max_length and config.break_policy == "drop":
        return reject("too_long", f"{n_ca} residues > {config.max_length}")

    complete = raw.complete
    if config.trim_incomplete_termini:
        ends = np.flatnonzero(complete[idx])
        idx = idx[ends[0]: ends[-1] + 1] if ends.size else idx[:0]
    bad_bond = _worst_bond_deviation(raw.atoms[idx])
    if bad_bond[0] > config.max_bond_deviation:
        return reject("bad_backbone_geometry",
                      f"bond {bad_bond[1]} off ideal by {bad_bond[0]:.2f} A at residue {raw.res_id[idx[bad_bond[2]]]}")

    incomplete = ~complete[idx]
    ca = raw.atoms[idx, 1].astype(np.float64)
    gaps = np.linalg.norm(np.diff(ca, axis=0), axis=1) > config.max_ca_ca_distance
    if config.break_policy == "drop":
        if incomplete.any():
            first = raw.res_id[idx[np.argmax(incomplete)]]
            return reject("incomplete_backbone", f"{int(incomplete.sum())} residues miss N, C or O (first {first})")
        if gaps.any():
            k = int(np.argmax(gaps))
            dist = float(np.linalg.norm(ca[k + 1] - ca[k]))
            return reject("chain_break", f"{int(gaps.sum())} breaks; CA-CA {dist:.1f} A after residue {raw.res_id[idx[k]]}")
        segments = [idx]
    else:
        segments = _split_segments(idx, incomplete, gaps)

    accepted, problems = [], []
    for number, seg in enumerate(segments, start=1):
        segment_id = 0 if len(segments) == 1 and seg.size == len(idx) else number
        result = _check_segment(raw, seg, segment_id, config)
        if isinstance(result, Problem):
            problems.append(result)
        else:
            accepted.append(result)
    return accepted, problems


def _worst_bond_deviation(atoms: np.ndarray) -> tuple[float, str, int]:
    """Largest |bond - ideal| over N-CA, CA-C, C=O (missing atoms ignored): (value, bond, residue)."""
    if len(atoms) == 0:
        return 0.0, "", 0
    bonds = np.stack([
        np.linalg.norm(atoms[:, 0] - atoms[:, 1], axis=-1),
        np.linalg.norm(atoms[:, 1] - atoms[:, 2], axis=-1),
        np.linalg.norm(atoms[:, 2] - atoms[:, 3], axis=-1),
    ], axis=1)
    dev = np.nan_to_num(np.abs(bonds - _IDEAL_BONDS), nan=0.0)
    flat = int(np.argmax(dev))
    residue, which = divmod(flat, 3)
    return float(dev.flat[flat]), ("N-CA", "CA-C", "C-O")[which], residue


def _split_segments(idx: np.ndarray, incomplete: np.ndarray, gaps: np.ndarray) -> list[np.ndarray]:
    """Runs of complete residues with no CA-CA gap between neighbours."""
    cut_after = gaps.copy()
    cut_after |= incomplete[:-1] | incomplete[1:]
    segments = np.split(np.arange(idx.size), np.flatnonzero(cut_after) + 1)
    return [idx[s[~incomplete[s]]] for s in segments if (~incomplete[s]).any()]


def _check_segment(raw: RawChain, seg: np.ndarray, segment_id: int, config: FilterConfig):
    where = f"residues {raw.res_id[seg[0]]}-{raw.res_id[seg[-1]]}" if seg.size else "empty"
    label = f"segment {segment_id} ({where}): " if segment_id else ""

    def problem(reason: str, detail: str) -> Problem:
        chain = f"{raw.chain_id}" if not segment_id else f"{raw.chain_id}-{segment_id}"
        return Problem(raw.source, chain, reason, label + detail)

    length = seg.size
    if length < config.min_length:
        return problem("too_short", f"{length} residues < {config.min_length}")
    if length > config.max_length:
        return problem("too_long", f"{length} residues > {config.max_length}")
    aatype = raw.aatype[seg]
    unknown = float((aatype == alphabet.UNKNOWN).mean())
    if unknown > config.max_unknown_fraction:
        return problem("unknown_residues", f"{unknown:.0%} unknown > {config.max_unknown_fraction:.0%}")
    ca = raw.atoms[seg, 1].astype(np.float64)
    fractions = state_fractions(psea_states(ca))
    helix, strand, coil = fractions["helix"], fractions["strand"], fractions["coil"]
    if coil > config.max_coil_fraction:
        return problem("too_much_coil", f"coil {coil:.0%} > {config.max_coil_fraction:.0%}")
    rg = radius_of_gyration(ca)
    ratio = rg / float(expected_radius_of_gyration(length))
    if ratio > config.max_rg_ratio:
        return problem("rg_outlier", f"Rg {rg:.1f} A is {ratio:.1f}x the compact value for {length} residues")
    name = chain_name(raw.entry, raw.chain_id, segment_id)
    keep = np.zeros(len(raw), dtype=bool)
    keep[seg] = True
    chain = raw.to_protein_chain(keep, name=name)
    return AcceptedChain(chain=chain, entry=raw.entry, chain_id=raw.chain_id, segment=segment_id,
                         helix=helix, strand=strand, coil=coil, radius_of_gyration=rg)
