"""How much the jump sampler's landing bins alone move the benchmark's distance.

A jump lands uniformly inside one of ``bins`` equal bins of [-1, 1]. A pixel whose last
event was a jump therefore ends at a uniform point of its bin, even when the network
puts all its mass on the right bin: a dither of standard deviation
``(2 / bins) / sqrt(12)`` (0.009 for 64 bins). Redrawing every pixel of held-out real
images uniformly inside its bin is the worst case of that effect; its distance next to
the plain held-out floor says how much of a jump model's score is the bins, not the model.
"""

from __future__ import annotations

import math

import torch

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.images.datasets import ImageData, to_unit_range
from multiflow_gm.images.heads import bin_edges
from multiflow_gm.images.intervals import difference_interval, distance_interval
from multiflow_gm.images.metric import ImageMetric, floor_images


def dither_to_bins(images: torch.Tensor, bins: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each value of ``images`` (in [-1, 1]) redrawn uniformly inside its bin of ``bins`` equal
    bins of [-1, 1] (the last bin holds 1). Same shape and dtype."""
    edges = bin_edges(bins, dtype=images.dtype, device=images.device)
    width = 2.0 / bins
    index = torch.clamp(((images + 1.0) / width).floor().long(), 0, bins - 1)
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype, device=images.device)
    return edges[index] + u * width


def dither_std(bins: int) -> float:
    """Standard deviation of a uniform draw inside one of ``bins`` bins of [-1, 1]."""
    return (2.0 / bins) / math.sqrt(12.0)


def dither_check(metric: ImageMetric, data: ImageData, num_samples: int, bins: list[int],
                 seed: int = 0, level: float = 0.95) -> dict:
    """Distance of the held-out floor images, plain and dithered to each bin count, with
    intervals and the paired difference (dithered minus plain: the same images)."""
    real = floor_images(data, num_samples, seed)
    real = to_unit_range(real) if real.dtype == torch.uint8 else real.float()
    plain = metric.features(real).numpy()
    out = {"num_samples": num_samples,
           "plain": distance_interval(plain, metric.reference, level).to_dict(), "dithered": {}}
    generator = seeded_generator(seed + 1)
    for n in bins:
        feats = metric.features(dither_to_bins(real, n, generator)).numpy()
        out["dithered"][str(n)] = {
            "bins": n, "dither_std": dither_std(n),
            "distance": distance_interval(feats, metric.reference, level).to_dict(),
            "minus_plain": difference_interval(feats, plain, metric.reference, level).to_dict(),
        }
    return out
