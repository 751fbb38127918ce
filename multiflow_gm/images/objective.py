"""Generator Matching losses for images on the CondOT path (SPEC §1 and §3).

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


def jump_targets(path: AffineGaussianPath, x_t: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                 edges: torch.Tensor) -> JumpTargets:
    """Conditional intensity at ``x_t`` and exact bin masses of the landing law given ``x1``."""
    intensity = path.jump_intensity(x_t, x1, t)
    probs = path.jump_kernel(x1, t).bin_masses(edges, open_ends=True)
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
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
    x_t = path.sample(x0, x1, t)
    out: HeadOutput = net(x_t, t)
    losses = {}
    total = x1.new_zeros(())
    if out.velocity is not None:
        losses["flow"] = flow_loss(path.velocity(x_t, x1, t), out.velocity)
        total = total + losses["flow"]
    if out.intensity is not None:
        with torch.no_grad():
            targets = jump_targets(path, x_t, x1, t, net.edges)
        losses["jump"] = jump_loss(targets, out.intensity, out.log_probs, t)
        total = total + jump_weight * losses["jump"]
    losses["total"] = total
    return losses
