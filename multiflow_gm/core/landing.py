"""Jump parameters: an intensity and a landing law (the jump measure ``Q_t = lambda_t J_t``).

A landing law draws new states only for the entries that jump (``sample_at``),
so a sampler step costs little when few entries jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch


class LandingLaw(Protocol):
    def sample_at(self, where: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """New states for the entries selected by the boolean mask ``where`` ``[n_selected, *event]``."""


@dataclass
class JumpParams:
    """Jump generator parameter: ``intensity`` (>= 0, shape of the state's entries) and landing law."""

    intensity: torch.Tensor
    landing: LandingLaw


def _categorical(probs: torch.Tensor, generator) -> torch.Tensor:
    """One draw per row of ``probs [n, K]`` (rows need not be normalised)."""
    if probs.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=probs.device)
    # The tiny floor keeps a row of zeros (e.g. a forced last-step move) drawable.
    return torch.multinomial(probs + 1e-30, 1, generator=generator).squeeze(-1)


@dataclass
class BinnedLanding:
    """Categorical over bins ``[edges[i], edges[i+1])``, uniform inside the bin.

    ``probs`` ``[*entries, B]``; ``edges`` ``[B + 1]`` increasing.
    """

    edges: torch.Tensor
    probs: torch.Tensor

    def sample_at(self, where, generator=None):
        idx = _categorical(self.probs[where], generator)
        lo, hi = self.edges[idx], self.edges[idx + 1]
        u = torch.rand(idx.shape, dtype=self.edges.dtype, device=idx.device, generator=generator)
        return lo + u * (hi - lo)


@dataclass
class MixtureLanding:
    """Mixture over K components per entry: ``weights [*entries, K]`` (unnormalised) and
    ``draw(where, component)`` that samples component ``component[i]`` for the i-th selected entry."""

    weights: torch.Tensor
    draw: Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]

    def sample_at(self, where, generator=None):
        component = _categorical(self.weights[where], generator)
        return self.draw(where, component, generator)


@dataclass
class PredictionLanding:
    """A path's conditional landing law around a clean-sample prediction ``x1_hat``.

    Given the clean sample the landing law is exact (``path.sample_landing``), so using it at
    the prediction resolves landings at any t; on a space with symmetries it is equivariant
    when the prediction is (rotating the input rotates the prediction and every landing).
    ``t`` is one time for all entries (the sampler's scalar time).
    """

    path: object
    x1_hat: torch.Tensor
    t: object

    def sample_at(self, where, generator=None):
        return self.path.sample_landing(self.x1_hat[where], self.t, generator=generator)
