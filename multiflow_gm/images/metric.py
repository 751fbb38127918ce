"""The benchmark's distance: FID when Inception-v3 weights are given, else a labelled
Frechet distance in the feature space of a classifier trained on the same data.

Generated images are compared with the *training* images' feature statistics.
The floor is the same distance for as many held-out real images as there are
generated ones: what a perfect sampler would score at that sample size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from multiflow_gm.atomic_files import atomic_path
from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.images.classifier import train_or_load_classifier
from multiflow_gm.images.config import ImageBenchConfig
from multiflow_gm.images.datasets import ImageData, to_unit_range
from multiflow_gm.images.frechet import FeatureStats, feature_stats, frechet_distance
from multiflow_gm.images.inception import FEATURE_DIM, load_fid_inception


@dataclass
class ImageMetric:
    """A feature map for images in [-1, 1] and the reference statistics of the training images."""

    kind: str                      # "fid" or "classifier_fd"
    label: str                     # printed with every number
    extractor: torch.nn.Module
    details: dict = field(default_factory=dict)
    reference: FeatureStats | None = None
    batch_size: int = 500

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` in [-1, 1] (float) or uint8 -> ``[N, D]``."""
        fn = getattr(self.extractor, "features", self.extractor)
        self.extractor.eval()
        device = next(self.extractor.parameters()).device
        out = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i: i + self.batch_size].to(device)
            chunk = to_unit_range(chunk) if chunk.dtype == torch.uint8 else chunk.float()
            out.append(fn(chunk).double().cpu())
        return torch.cat(out)

    def distance(self, images: torch.Tensor) -> float:
        """Frechet distance of ``images`` to the training images."""
        if self.reference is None:
            raise RuntimeError("reference statistics are not computed yet")
        return frechet_distance(feature_stats(self.features(images)), self.reference)

    def describe(self) -> dict:
        return {"kind": self.kind, "label": self.label, **self.details}


def split_tag(config: ImageBenchConfig) -> str:
    d = config.data
    return f"seed={d.split_seed},holdout={d.holdout_fraction},max_train={d.max_train}"


def build_metric(data: ImageData, config: ImageBenchConfig, cache_dir: Path,
                 progress: Callable | None = None, log: Callable[[str], None] = print,
                 device: str | torch.device = "cpu") -> ImageMetric:
    """Inception FID if ``config.eval.inception_weights`` is set (the file must exist), else the
    classifier Frechet distance (classifier trained once and cached in ``cache_dir``)."""
    ev = config.eval
    if ev.inception_weights:
        model = load_fid_inception(ev.inception_weights).to(device)
        metric = ImageMetric("fid", "FID (Inception-v3, pytorch-fid weights)", model,
                             {"weights": str(ev.inception_weights), "feature_dim": FEATURE_DIM},
                             batch_size=min(ev.feature_batch_size, 100))
    else:
        log(f"no Inception-v3 weights given (--inception-weights): using the Frechet distance in "
            f"the feature space of a classifier trained on {data.name}")
        trained = train_or_load_classifier(
            data, cache_dir / f"classifier_{data.name}.pt", ev.classifier_feature_dim, ev.classifier_steps,
            ev.classifier_batch_size, config.data.horizontal_flip, seed=config.train.seed,
            split=split_tag(config), progress=progress, device=device)
        acc = 100.0 * trained.test_accuracy
        label = (f"Frechet distance in {data.name}-classifier features (not FID; "
                 f"classifier held-out accuracy {acc:.1f}%)")
        log(f"classifier {'loaded from cache' if trained.from_cache else 'trained'}: "
            f"held-out accuracy {acc:.2f}%")
        metric = ImageMetric("classifier_fd", label, trained.model,
                             {"classifier_test_accuracy": trained.test_accuracy,
                              "classifier_steps": trained.steps,
                              "feature_dim": ev.classifier_feature_dim},
                             batch_size=ev.feature_batch_size)
    metric.reference = _reference_stats(metric, data, cache_dir, split_tag(config))
    return metric


def _reference_stats(metric: ImageMetric, data: ImageData, cache_dir: Path, split: str) -> FeatureStats:
    """Training-image statistics, cached next to the classifier (keyed by metric and split)."""
    path = cache_dir / f"reference_{data.name}_{metric.kind}.npz"
    key = {"split": split, "train_images": len(data.train), "label": metric.label}
    if path.is_file():
        stats, meta = FeatureStats.load(path)
        if meta == key:
            return stats
    stats = feature_stats(metric.features(data.train))
    stats.save(path, **key)
    return stats


def floor_images(data: ImageData, num_samples: int, seed: int = 0) -> torch.Tensor:
    """``num_samples`` held-out real images (a seeded random subset, so every class is represented)."""
    order = torch.randperm(len(data.test), generator=seeded_generator(seed))
    return data.test[order[:num_samples]]


def floor_images_features(metric: ImageMetric, data: ImageData, num_samples: int, seed: int = 0) -> np.ndarray:
    """Features ``[N, D]`` of the floor's held-out real images."""
    return metric.features(floor_images(data, num_samples, seed)).numpy()


def floor_distance(metric: ImageMetric, data: ImageData, num_samples: int, seed: int = 0) -> float:
    """Distance of ``num_samples`` held-out real images to the training images: what a perfect
    sampler would score at that sample size."""
    return metric.distance(floor_images(data, num_samples, seed))


def save_features(path: Path, features: np.ndarray) -> None:
    """Atomic npz of one cell's features ``[N, D]`` (float32, no pickle)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, features=np.asarray(features, dtype=np.float32))


def load_features(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return npz["features"].astype(np.float64)
