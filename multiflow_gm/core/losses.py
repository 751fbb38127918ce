"""Bregman divergences of Generator Matching (the GM loss of Holderrieth et al. 2024).

Each function returns a per-entry loss (no reduction) so workloads can mask,
weight by time and average as they need. Every divergence here is zero at the
truth and positive elsewhere; its gradient in the prediction is linear in the
target, which is why the conditional loss has the marginal loss's gradient.
"""

from __future__ import annotations

import torch


def squared_error(target: torch.Tensor, pred: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """``||a - b||^2`` summed over the last ``event_dims`` dims (flow / drift parameters).

    For SO(3) body-frame velocities use ``event_dims=1``: the Euclidean norm of the
    rotation vector is the tangent-space norm of the bi-invariant metric.
    """
    sq = (target - pred) ** 2
    return sq.sum(dim=tuple(range(-event_dims, 0))) if event_dims else sq


def _xlogy_over(a, log_a, log_b):
    """``a (log a - log b)`` with the convention 0 log 0 = 0."""
    return torch.where(a > 0, a * (log_a - log_b), torch.zeros_like(a))


def generalized_kl(target: torch.Tensor, pred: torch.Tensor, dim: int | None = -1,
                   eps: float = 1e-30) -> torch.Tensor:
    """``sum_y [a(y) log(a(y)/b(y)) - a(y) + b(y)]`` for non-negative measures ``a`` (target), ``b``.

    ``dim=None`` returns the per-entry terms (a measure on a single point).
    """
    log_a = torch.log(target.clamp_min(eps))
    log_b = torch.log(pred.clamp_min(eps))
    terms = _xlogy_over(target, log_a, log_b) - target + pred
    return terms if dim is None else terms.sum(dim)


def jump_generalized_kl(target_intensity, target_probs, pred_intensity, pred_log_probs,
                        eps: float = 1e-30) -> torch.Tensor:
    """Generalised KL between jump measures ``Q = lambda J`` on a common set of bins.

    ``= lambda* log(lambda*/lambda) - lambda* + lambda + lambda* KL(J* || J)`` per entry.
    ``*_intensity`` ``[...]``; ``target_probs`` ``[..., B]``; ``pred_log_probs`` ``[..., B]``
    (log-softmax of the landing head).
    """
    rate_term = generalized_kl(target_intensity, pred_intensity, dim=None, eps=eps)
    log_target = torch.log(target_probs.clamp_min(eps))
    kl = _xlogy_over(target_probs, log_target, pred_log_probs).sum(-1)
    return rate_term + target_intensity * kl


def jump_generalized_kl_sampled(target_intensity, pred_intensity, pred_log_prob_at_landing,
                                eps: float = 1e-30) -> torch.Tensor:
    """Unbiased estimate, up to terms free of the prediction, of :func:`jump_generalized_kl`
    from one draw ``y ~ J*``: ``lambda - lambda* log lambda - lambda* log J(y)``.

    The divergence is linear in the target measure, so one draw gives an unbiased
    gradient; use it where the target landing law is easy to sample but hard to bin.
    """
    return pred_intensity - target_intensity * (torch.log(pred_intensity.clamp_min(eps))
                                                + pred_log_prob_at_landing)


def ctmc_generalized_kl(target_rates: torch.Tensor, pred_rates: torch.Tensor,
                        state: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    """Generalised KL between CTMC rate vectors ``[..., n, S]`` over ``y != x`` -> ``[..., n]``."""
    off = 1 - torch.nn.functional.one_hot(state, target_rates.shape[-1]).to(target_rates.dtype)
    return generalized_kl(target_rates * off, pred_rates * off, dim=-1, eps=eps)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``[..., n]`` on positions where ``mask`` is true, 0 elsewhere.

    For the masking path with a clean-sample head the CTMC generalised KL equals
    ``kappa'/(1-kappa)`` times this on masked positions (``sum_j p_j = 1``), so it is
    the GM loss up to a time weighting.
    """
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                           reduction="none").reshape(target.shape)
    return ce * mask.to(ce.dtype)
