"""Euclidean space R^d: the trivial manifold, so flows step by addition."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EuclideanSpace:
    """R^d with tangent vectors of the same shape as points."""

    def exp_map(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return x + v

    def log_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y - x

    def squared_norm(self, v: torch.Tensor) -> torch.Tensor:
        return v * v
