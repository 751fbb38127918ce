"""Mixture paths on token sequences: masking and uniform noise (discrete flow matching).

``x_t = z`` with probability ``kappa_t`` (the scheduler's alpha), else a noise token:
the mask token M (``noise="mask"``) or a uniform token (``noise="uniform"``),
independently per position. The conditional CTMC jumps to ``z`` at rate
``kappa' / (1 - kappa)``; the marginal rate to token ``j`` is that rate times the
posterior ``p(x_1 = j | x_t)`` (a network's softmax).

Stochasticity ``eta >= 0``: the extra conditional rate ``c_t p_t(y | z)`` with
``c_t = eta / (1 - kappa_t)`` (re-draw the position from its own conditional
marginal) leaves every ``p_t(. | z)`` invariant, so the marginals are kept. For
masking it is MultiFlow's detailed-balance term: re-mask at rate eta, extra
un-mask rate ``eta kappa / (1 - kappa)`` (``eta t / (1 - t)`` for kappa = t).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from multiflow_gm.core.dynamics import CTMCStep, PosteriorCTMCStep
from multiflow_gm.core.paths.common import PathSample, as_time, clipped_time, expand_time
from multiflow_gm.core.schedulers import LinearScheduler, Scheduler
from multiflow_gm.core.spaces.tokens import TokenSpace

NOISE_KINDS = ("mask", "uniform")


@dataclass
class MixtureTokenPath:
    """Masking or uniform mixture path over ``num_tokens`` tokens.

    States are integer tensors ``[..., n]``; rates ``[..., n, space.size]``; ``t`` is a
    scalar or per-example ``[B]``.
    """

    num_tokens: int
    noise: str = "mask"
    scheduler: Scheduler = field(default_factory=LinearScheduler)
    event_dims = 0
    couples_endpoints = True  # x_t keeps x1 or shows the prior draw x0, position by position
    supports_jump = False     # a CTMC on a finite space: its generator is the rate matrix

    def __post_init__(self):
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}; got {self.noise!r}")
        self.space = TokenSpace(self.num_tokens, has_mask=self.noise == "mask")

    @property
    def mask_index(self) -> int | None:
        return self.space.mask_index

    def _kappa(self, t, x):
        t = as_time(t, torch.zeros((), dtype=torch.float64, device=x.device))
        return self.scheduler(expand_time(t, x))

    def prior(self, shape, generator=None, dtype=None, device=None) -> torch.Tensor:
        """Noise tokens ``[*shape]`` (long): all mask, or uniform over the data tokens."""
        if self.noise == "mask":
            return torch.full(shape, self.mask_index, dtype=torch.long, device=device)
        return torch.randint(self.num_tokens, shape, device=device, generator=generator)

    def draw(self, x1: torch.Tensor, t, generator=None, x0: torch.Tensor | None = None) -> PathSample:
        """Per position keep ``x1`` with probability kappa_t, else show ``x0`` (given, or drawn)."""
        self.space.check(x1, "x1")
        kappa = self._kappa(t, x1).alpha
        keep = torch.rand(x1.shape, dtype=torch.float64, device=x1.device, generator=generator) < kappa
        if x0 is None:
            x0 = self.prior(x1.shape, generator, device=x1.device)
        return PathSample(torch.where(keep, x1, x0), x1, x0)

    def sample(self, x1: torch.Tensor, t, generator=None) -> torch.Tensor:
        """Draw ``x_t ~ p_t(. | x1)`` per position ``[..., n]``."""
        return self.draw(x1, t, generator).x_t

    def target(self, record: PathSample, t) -> torch.Tensor:
        """Conditional rates at ``record.x_t`` ``[..., n, size]`` (float64, per unit time)."""
        return self.estimate(record.x_t, record.x1, t)

    def estimate(self, x: torch.Tensor, x1_hat: torch.Tensor, t) -> torch.Tensor:
        """:meth:`target`'s formula at state ``x`` with the prediction ``x1_hat`` in place of ``x1``."""
        return self.conditional_rates(x, x1_hat, t)

    def regression_time(self, t: torch.Tensor, t_clip: float) -> torch.Tensor:
        """Clipped: without eta the rates are ``kappa'/(1 - kappa)`` times a time-free one-hot (or
        posterior), and the generalised KL scales with a common positive factor."""
        return clipped_time(t, t_clip)

    def prediction_step(self, eta: float = 0.0, method: str = "euler", purity: bool = False):
        """CTMC step from the posterior ``p(x1 | x_t)``; the last step leaves no mask token."""
        return PosteriorCTMCStep(self, CTMCStep(method, self.mask_index, purity), eta)

    def conditional_probs(self, x1: torch.Tensor, t) -> torch.Tensor:
        """``p_t(y | x1)`` over all states ``[..., n, size]``."""
        kappa = self._kappa(t, x1).alpha[..., None]
        return kappa * F.one_hot(x1, self.space.size).double() + (1 - kappa) * self._noise_law(x1)

    def _noise_law(self, x):
        law = torch.zeros(self.space.size, dtype=torch.float64, device=x.device)
        if self.noise == "mask":
            law[self.mask_index] = 1.0
        else:
            law[: self.num_tokens] = 1.0 / self.num_tokens
        return law

    def rates(self, x: torch.Tensor, x1_probs: torch.Tensor, t, eta: float = 0.0) -> torch.Tensor:
        """Marginal CTMC rates ``R(y | x)`` ``[..., n, size]`` from posterior ``p(x1 | x_t)``.

        ``x1_probs`` ``[..., n, num_tokens]``; pass ``one_hot(z)`` for the conditional
        rates. The entry at the current state is set to 0 (it is not a jump).
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0; got {eta}")
        if x1_probs.shape != (*x.shape, self.num_tokens):
            raise ValueError(f"x1_probs must have shape {(*x.shape, self.num_tokens)}; "
                             f"got {tuple(x1_probs.shape)}")
        s = self._kappa(t, x)
        kappa, d_kappa = s.alpha[..., None], s.d_alpha[..., None]
        one_minus = (1 - kappa).clamp_min(1e-12)
        p1 = x1_probs.to(torch.float64)
        if self.noise == "mask":
            # An unmasked position already shows its data token: the posterior there is exact.
            p1 = torch.cat([p1, torch.zeros_like(p1[..., :1])], dim=-1)
            p1 = torch.where((x == self.mask_index)[..., None], p1,
                             F.one_hot(x, self.space.size).double())
        rates = p1 * (d_kappa / one_minus)
        if eta > 0:
            cond_marginal = kappa * p1 + (1 - kappa) * self._noise_law(x)
            rates = rates + (eta / one_minus) * cond_marginal
        return rates * (1 - F.one_hot(x, self.space.size).double())

    def conditional_rates(self, x: torch.Tensor, x1: torch.Tensor, t, eta: float = 0.0):
        """Rates of the conditional generator given the data point ``x1``."""
        return self.rates(x, F.one_hot(x1, self.num_tokens).double(), t, eta)

    def atom_log_likelihood(self, x: torch.Tensor, atoms: torch.Tensor, t) -> torch.Tensor:
        """``log p_t(x_n | z_k)`` summed over positions, ``[N, K]`` for ``x [N, n]``, ``atoms [K, n]``.

        ``t`` is a scalar or one time per row of ``x`` (``[N]``).
        """
        if isinstance(t, torch.Tensor) and t.dim() == 1:
            out = torch.empty(x.shape[0], atoms.shape[0], dtype=torch.float64, device=x.device)
            for value in t.unique():  # one table per distinct time
                rows = t == value
                out[rows] = self.atom_log_likelihood(x[rows], atoms, value)
            return out
        log_probs = torch.log(self.conditional_probs(atoms, t).clamp_min(1e-300))   # [K, n, S]
        # Picking log p(x_i | z_k,i) and summing over i is one product with the one-hot state.
        onehot = F.one_hot(x, self.space.size).to(torch.float64).flatten(1)      # [N, n*S]
        return onehot @ log_probs.flatten(1).T

    def probs_from_logits(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Softmax over the ``num_tokens`` data tokens (a mask logit, if present, is dropped)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        return torch.softmax(logits[..., : self.num_tokens] / temperature, dim=-1)
