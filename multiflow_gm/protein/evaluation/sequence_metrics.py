"""Sequence-only metrics: composition against the reference set and low complexity."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from multiflow_gm.protein.alphabet import AA_ORDER, NUM_AMINO_ACIDS

# A sequence whose most frequent residue type exceeds this fraction is called
# low-complexity (e.g. poly-Ala or poly-Glu collapse of a sequence model).
LOW_COMPLEXITY_MAX_FRACTION = 0.30


def composition(sequences: Iterable[str]) -> np.ndarray:
    """Pooled frequencies ``[20]`` of the standard residue types (AA_ORDER); unknowns ignored."""
    counts = np.zeros(NUM_AMINO_ACIDS, dtype=np.float64)
    for sequence in sequences:
        for letter in sequence.upper():
            index = AA_ORDER.find(letter)
            if 0 <= index < NUM_AMINO_ACIDS:
                counts[index] += 1
    total = counts.sum()
    return counts / total if total > 0 else np.full(NUM_AMINO_ACIDS, np.nan)


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-9) -> float:
    """KL(p || q) in nats of two distributions on the same support (q smoothed by eps)."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64) + eps
    q = q / q.sum()
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) of two distributions."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        return float("nan")
    middle = (p + q) / 2.0
    return 0.5 * kl_divergence(p, middle, eps=0.0) + 0.5 * kl_divergence(q, middle, eps=0.0)


def sequence_metrics(sequence: str) -> dict[str, float]:
    """Per-sequence statistics: most frequent type fraction, Shannon entropy (nats), unknown fraction."""
    sequence = sequence.upper()
    length = len(sequence)
    if length == 0:
        return {"aa_max_fraction": float("nan"), "aa_entropy": float("nan"),
                "unknown_fraction": float("nan"), "low_complexity": float("nan")}
    letters, counts = np.unique(np.frombuffer(sequence.encode(), dtype="S1"), return_counts=True)
    standard = np.array([letter.decode() in AA_ORDER for letter in letters])
    frequencies = counts / length
    max_fraction = float(frequencies[standard].max()) if standard.any() else 0.0
    p = frequencies[standard]
    return {
        "aa_max_fraction": max_fraction,
        "aa_entropy": float(-np.sum(p * np.log(p))) if p.size else 0.0,
        "unknown_fraction": float(frequencies[~standard].sum()),
        "low_complexity": float(max_fraction > LOW_COMPLEXITY_MAX_FRACTION),
    }


def composition_divergence(sequences: list[str], reference_composition: np.ndarray | None) -> dict[str, float]:
    """JS and KL divergence of the pooled composition of ``sequences`` from the reference's."""
    pooled = composition(sequences)
    if reference_composition is None or not np.all(np.isfinite(pooled)):
        return {"aa_composition_js": float("nan"), "aa_composition_kl": float("nan")}
    return {
        "aa_composition_js": jensen_shannon(pooled, reference_composition),
        "aa_composition_kl": kl_divergence(pooled, reference_composition),
    }
