"""Structural diversity of a sample set: pairwise TM-scores and clusters at a TM-score threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from multiflow_gm.protein.evaluation.alignment import align_pairs

# Two chains with TM-score above 0.5 share a fold (Xu & Zhang 2010).
CLUSTER_TM_THRESHOLD = 0.5


def pairwise_tm_matrix(
    cas: Sequence[np.ndarray], workers: int = 1, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Symmetric ``[N, N]`` TM-score matrix of CA traces, diagonal 1.

    Entry (i, j) is the mean of the two length normalisations of one TM-align run,
    so the matrix is symmetric for chains of different lengths too.
    """
    count = len(cas)
    matrix = np.eye(count)
    if count < 2:
        return matrix
    i, j = np.triu_indices(count, k=1)
    scores = align_pairs(cas, cas, np.stack([i, j], axis=-1), workers=workers, progress=progress)
    symmetric = scores[:, :2].mean(axis=1)
    matrix[i, j] = symmetric
    matrix[j, i] = symmetric
    return matrix


def cluster_labels(tm_matrix: np.ndarray, threshold: float = CLUSTER_TM_THRESHOLD) -> np.ndarray:
    """Average-linkage clusters of a TM-score matrix cut at ``threshold`` -> labels ``[N]``.

    Two clusters merge while their average pairwise TM-score is at least ``threshold``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    count = len(tm_matrix)
    if count < 2:
        return np.ones(count, dtype=np.int64)
    distance = np.clip(1.0 - tm_matrix, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return fcluster(tree, t=1.0 - threshold, criterion="distance").astype(np.int64)


def diversity_summary(tm_matrix: np.ndarray, threshold: float = CLUSTER_TM_THRESHOLD) -> dict[str, float]:
    """Mean pairwise TM-score, cluster count and clusters per sample of a ``[N, N]`` matrix."""
    count = len(tm_matrix)
    if count < 2:
        return {"pairwise_tm_mean": float("nan"), "pairwise_tm_max": float("nan"),
                "num_clusters": float(count), "cluster_fraction": float("nan")}
    off_diagonal = tm_matrix[~np.eye(count, dtype=bool)]
    clusters = len(np.unique(cluster_labels(tm_matrix, threshold)))
    return {
        "pairwise_tm_mean": float(off_diagonal.mean()),
        "pairwise_tm_max": float(off_diagonal.max()),
        "num_clusters": float(clusters),
        "cluster_fraction": clusters / count,
    }


def mean_tm_to_others(tm_matrix: np.ndarray) -> np.ndarray:
    """Per-sample mean TM-score to the other samples ``[N]`` (NaN for a single sample)."""
    count = len(tm_matrix)
    if count < 2:
        return np.full(count, np.nan)
    return (tm_matrix.sum(axis=1) - np.diag(tm_matrix)) / (count - 1)
