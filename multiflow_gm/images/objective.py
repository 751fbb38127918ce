"""Generator Matching losses for images on the CondOT path.

* flow: squared error between the predicted velocity and the conditional
  velocity ``(z - x_t) / (1 - t)``;
* jump: generalised KL between the predicted jump measure ``lambda J`` and the
  conditional one, whose landing law is integrated exactly onto the head's bins
  (mass beyond [-1, 1] goes to the end bins).

Both are averaged over pixels. The jump loss is weighted by ``1 - t``: the
conditional intensity grows like ``1 / (1 - t)``, and a positive weight per time
keeps the minimiser (the marginal generator) while keeping the loss of order one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from multiflow_gm.core.losses import jump_generalized_kl, squared_error
from multiflow_gm.core.paths.affine import AffineGaussianPath
from multiflow_gm.images.heads import HeadOutput, ImageGeneratorNet


@dataclass
class JumpTargets:
    """Conditional jump parameters on the bins: ``intensity [...]``, ``probs [..., B]``."""

    intensity: torch.Tensor
    probs: torch.Tensor


PIXEL_LEVELS = 256


def _pixel_levels(x1: torch.Tensor, levels: int) -> torch.Tensor | None:
    """Level index of every entry if ``x1`` holds 8-bit pixels scaled to [-1, 1], else None."""
    step = 2.0 / (levels - 1)
    index = torch.round((x1 + 1) / step)
    grid_values = index * step - 1
    if (index.min() < 0) or (index.max() > levels - 1) or (grid_values - x1).abs().max() > 1e-5:
        return None
    return index.long()


def jump_targets(path: AffineGaussianPath, x_t: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                 edges: torch.Tensor, levels: int | None = PIXEL_LEVELS) -> JumpTargets:
    """Conditional intensity at ``x_t`` and exact bin masses of the landing law given ``x1``.

    ``x1 [B, ...]``, ``t [B]``. The landing law depends only on ``(x1, t)``, so when ``x1``
    holds ``levels`` pixel levels (8-bit images in [-1, 1]) the bin masses are computed once
    per level and example and gathered: the same numbers at a fraction of the cost.
    """
    intensity = path.jump_intensity(x_t, x1, t)
    index = _pixel_levels(x1, levels) if levels and x1.numel() > x1.shape[0] * levels else None
    if index is None:
        return JumpTargets(intensity, path.jump_kernel(x1, t).bin_masses(edges, open_ends=True))
    batch = x1.shape[0]
    values = torch.arange(levels, dtype=x1.dtype, device=x1.device).mul_(2.0 / (levels - 1)).sub_(1.0)
    per_level = path.jump_kernel(values.expand(batch, levels), t).bin_masses(edges, open_ends=True)
    flat = index.reshape(batch, -1, 1).expand(-1, -1, per_level.shape[-1])
    probs = torch.gather(per_level, 1, flat).reshape(*x1.shape, per_level.shape[-1])
    return JumpTargets(intensity, probs)


def jump_loss(targets: JumpTargets, pred_intensity: torch.Tensor, pred_log_probs: torch.Tensor,
              t: torch.Tensor) -> torch.Tensor:
    """Time-weighted generalised KL ``(1 - t) D(lambda* J*, lambda J)`` averaged over entries."""
    per_entry = jump_generalized_kl(targets.intensity, targets.probs, pred_intensity, pred_log_probs)
    weight = (1 - t).reshape(-1, *([1] * (per_entry.dim() - 1)))
    return (weight * per_entry).mean()


def flow_loss(target_velocity: torch.Tensor, pred_velocity: torch.Tensor) -> torch.Tensor:
    return squared_error(target_velocity, pred_velocity).mean()


def training_losses(net: ImageGeneratorNet, path: AffineGaussianPath, x1: torch.Tensor,
                    generator: torch.Generator | None = None, t_max: float = 0.999,
                    jump_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """GM losses of one batch ``x1 [B, C, H, W]`` in [-1, 1]: ``{"flow", "jump", "total"}``.

    Times are uniform on [0, t_max]; the losses of a two-head network are summed.
    """
    batch = x1.shape[0]
    t = torch.rand(batch, generator=generator, dtype=x1.dtype, device=x1.device) * t_max
    record = path.draw(x1, t, generator)
    out: HeadOutput = net(record.x_t, t)
    losses = {}
    total = x1.new_zeros(())
    if out.velocity is not None:
        losses["flow"] = flow_loss(path.target(record, t), out.velocity)
        total = total + losses["flow"]
    if out.intensity is not None:
        with torch.no_grad():
            targets = jump_targets(path, record.x_t, x1, t, net.edges)
        losses["jump"] = jump_loss(targets, out.intensity, out.log_probs, t)
        total = total + jump_weight * losses["jump"]
    losses["total"] = total
    return losses
