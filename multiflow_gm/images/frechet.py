"""Frechet distance between Gaussians fitted to two sets of features (the FID formula).

``d^2 = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})``

The matrix square root goes through symmetric eigendecompositions (``S_a^{1/2} S_b
S_a^{1/2}`` is symmetric positive semi-definite), which is stable for the singular
covariances that ReLU or low-sample features give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multiflow_gm.atomic_files import atomic_path


@dataclass
class FeatureStats:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of ``count`` feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    def save(self, path: Path, **meta) -> None:
        """Atomic npz (no pickle); ``meta`` values must be strings or numbers."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # a handle: numpy would append .npz to the temporary name
                np.savez(handle, mean=self.mean, cov=self.cov, count=np.int64(self.count),
                         **{f"meta_{k}": np.asarray(v) for k, v in meta.items()})

    @staticmethod
    def load(path: Path) -> tuple["FeatureStats", dict]:
        with np.load(path, allow_pickle=False) as npz:
            meta = {k[5:]: npz[k].item() for k in npz.files if k.startswith("meta_")}
            return FeatureStats(npz["mean"], npz["cov"], int(npz["count"])), meta


def feature_stats(features: torch.Tensor | np.ndarray) -> FeatureStats:
    """Fit a Gaussian to ``features [N, D]`` (unbiased covariance)."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features,
                   dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D]; got {f.shape}")
    return FeatureStats(f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1]), f.shape[0])


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (m + m.T))
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """Squared Frechet distance between ``N(a.mean, a.cov)`` and ``N(b.mean, b.cov)``."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature dimensions differ: {a.mean.shape} vs {b.mean.shape}")
    root_a = _psd_sqrt(a.cov)
    middle = root_a @ b.cov @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)).sum()
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * cross)
