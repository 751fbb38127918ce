"""Two-sample statistics used to check that a sampler reproduces a target."""

from __future__ import annotations

import torch


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` between samples ``[N, d]`` and ``[M, d]``.

    Zero iff the distributions agree (for large samples); V-statistic form, so a
    small positive bias of order 1/N remains for equal distributions.
    """
    a = a.reshape(a.shape[0], -1).double()
    b = b.reshape(b.shape[0], -1).double()
    cross = torch.cdist(a, b).mean()
    return float(2 * cross - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def total_variation(counts_a: torch.Tensor, counts_b: torch.Tensor) -> float:
    """Total variation between two histograms (normalised here), ``0.5 sum |p - q|``."""
    p = counts_a.double() / counts_a.sum()
    q = counts_b.double() / counts_b.sum()
    return float(0.5 * (p - q).abs().sum())


def sequence_histogram(tokens: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Counts of whole sequences ``[N, n]`` over all ``num_tokens ** n`` joint states."""
    n = tokens.shape[-1]
    base = num_tokens ** torch.arange(n - 1, -1, -1, device=tokens.device)
    codes = (tokens.long() * base).sum(-1)
    return torch.bincount(codes, minlength=num_tokens ** n)
