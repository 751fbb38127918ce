"""Novelty: each sample's highest TM-score to the reference (training) set.

TM-aligning every sample against ~2,000 references is hours of CPU, so the
search is pruned in two steps:

1. a length window: with the TM-score normalised by the sample length L, a
   reference of length L_r can score at most min(L_r, L) / L, so references
   shorter than ``min_length_ratio * L`` cannot reach a fold-level match; very
   long references are cut too (``max_length_ratio``);
2. a cheap shape descriptor (histogram of pairwise CA distances plus helix and
   strand fractions): only the ``top_k`` closest references by descriptor are
   TM-aligned.

The result is therefore a lower bound on the exact maximum over the whole
reference set; a sample identical to a reference has descriptor distance 0 and
always gets its exact match (TM-score 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from multiflow_gm.protein.evaluation.alignment import align_pairs

# Above this TM-score a sample is considered a copy of a training chain.
MEMORISATION_TM = 0.9
DISTANCE_BIN_EDGES = np.arange(0.0, 62.0, 2.0)  # Angstrom, plus an overflow bin


def shape_descriptor(ca: np.ndarray, helix_fraction: float, strand_fraction: float) -> np.ndarray:
    """Descriptor ``[31 + 2]``: pairwise CA distance histogram (sums to 1) and helix/strand fractions."""
    ca = np.asarray(ca, dtype=np.float64)
    i, j = np.triu_indices(len(ca), k=1)
    distances = np.linalg.norm(ca[i] - ca[j], axis=-1)
    counts = np.histogram(np.minimum(distances, DISTANCE_BIN_EDGES[-1] - 1e-6), bins=DISTANCE_BIN_EDGES)[0]
    histogram = counts / max(1, len(distances))
    return np.concatenate([histogram, [helix_fraction, strand_fraction]])


def descriptor_distance(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """L1 distance between a descriptor ``[D]`` and candidate descriptors ``[M, D]``.

    Secondary structure fractions weigh twice, as they separate folds more than
    the distance histogram does.
    """
    weights = np.ones(query.shape[-1])
    weights[-2:] = 2.0
    return np.sum(np.abs(candidates - query) * weights, axis=-1)


@dataclass
class NoveltySettings:
    top_k: int = 32
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.5


def select_candidates(
    sample_length: int,
    sample_descriptor: np.ndarray,
    reference_lengths: np.ndarray,
    reference_descriptors: np.ndarray,
    settings: NoveltySettings,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the references to TM-align for one sample, closest descriptor first."""
    lengths = np.asarray(reference_lengths)
    window = (lengths >= settings.min_length_ratio * sample_length) & (
        lengths <= settings.max_length_ratio * sample_length
    )
    if excluded is not None:
        window &= ~excluded
    indices = np.nonzero(window)[0]
    if len(indices) == 0:
        return indices
    distances = descriptor_distance(sample_descriptor, reference_descriptors[indices])
    order = np.argsort(distances, kind="stable")[: settings.top_k]
    return indices[order]


def novelty_search(
    sample_cas: Sequence[np.ndarray],
    sample_descriptors: np.ndarray,
    reference_cas: Sequence[np.ndarray],
    reference_lengths: np.ndarray,
    reference_descriptors: np.ndarray,
    settings: NoveltySettings | None = None,
    exclusions: Sequence[np.ndarray | None] | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Per sample: ``max_tm_to_reference`` (normalised by the sample length), the index of
    the nearest reference (``nearest_reference_index``, -1 if none) and the number of
    candidates aligned. ``exclusions[s]`` is a boolean mask of references sample s must
    not be compared with (e.g. itself, for the native baseline)."""
    settings = settings or NoveltySettings()
    candidate_lists = [
        select_candidates(
            len(ca), sample_descriptors[s], reference_lengths, reference_descriptors, settings,
            None if exclusions is None else exclusions[s],
        )
        for s, ca in enumerate(sample_cas)
    ]
    pairs = np.array(
        [(s, r) for s, candidates in enumerate(candidate_lists) for r in candidates], dtype=np.int64
    ).reshape(-1, 2)
    scores = align_pairs(sample_cas, reference_cas, pairs, workers=workers, progress=progress)
    results = []
    for s, candidates in enumerate(candidate_lists):
        rows = np.nonzero(pairs[:, 0] == s)[0] if len(pairs) else np.array([], dtype=np.int64)
        if len(rows) == 0:
            results.append({"max_tm_to_reference": float("nan"), "nearest_reference_index": -1,
                            "novelty_candidates": 0})
            continue
        best = rows[np.argmax(scores[rows, 0])]
        results.append({
            "max_tm_to_reference": float(scores[best, 0]),
            "nearest_reference_index": int(pairs[best, 1]),
            "novelty_candidates": int(len(rows)),
        })
    return results


def novelty_summary(max_tms: np.ndarray) -> dict[str, float]:
    """Mean / median of the per-sample maxima and the fraction above :data:`MEMORISATION_TM`."""
    values = np.asarray(max_tms, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"max_tm_mean": float("nan"), "max_tm_median": float("nan"),
                "memorised_fraction": float("nan")}
    return {
        "max_tm_mean": float(values.mean()),
        "max_tm_median": float(np.median(values)),
        "memorised_fraction": float(np.mean(values > MEMORISATION_TM)),
    }
