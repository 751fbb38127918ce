"""One U-Net trunk serving a flow head, a jump head, or both.

* flow head: the velocity ``u_t(x)`` ``[B, C, H, W]``;
* jump head, per pixel channel: an intensity ``lambda_t(x) >= 0`` ``[B, C, H, W]`` and
  log-probabilities of the landing bin over ``bins`` equal bins of [-1, 1]
  ``[B, C, H, W, bins]``.

The conditional intensity of the CondOT path is ``[w^2 - z w - 1]_+ / (1 - t)`` with
``w`` of order one, so the head predicts ``(1 - t) lambda`` through a softplus and
divides by ``1 - t``: the network's output stays of order one at every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from multiflow_gm.images.unet import UNet, UNetConfig

NETWORK_KINDS: dict[str, tuple[str, ...]] = {
    "flow": ("flow",),
    "jump": ("jump",),
    "flow_jump": ("flow", "jump"),
}


@dataclass
class HeadOutput:
    """What a network predicts; a head it lacks is ``None``."""

    velocity: torch.Tensor | None = None
    intensity: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None


def bin_edges(bins: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``bins + 1`` equally spaced edges of [-1, 1]."""
    return torch.linspace(-1.0, 1.0, bins + 1, dtype=dtype, device=device)


class ImageGeneratorNet(nn.Module):
    """``(x [B, C, H, W], t [B] or scalar) -> HeadOutput`` for the kinds in ``kinds``."""

    def __init__(self, unet: UNetConfig, image_shape: tuple[int, int, int], kinds: tuple[str, ...],
                 bins: int = 64, min_one_minus_t: float = 1e-3):
        super().__init__()
        unknown = set(kinds) - {"flow", "jump"}
        if not kinds or unknown:
            raise ValueError(f"kinds must be a non-empty subset of ('flow', 'jump'); got {kinds}")
        if image_shape[1] != image_shape[2]:
            raise ValueError(f"images must be square; got {image_shape}")
        self.kinds = tuple(k for k in ("flow", "jump") if k in kinds)
        self.image_shape = tuple(image_shape)
        self.bins = bins
        self.min_one_minus_t = min_one_minus_t
        channels = image_shape[0]
        self.flow_channels = channels if "flow" in self.kinds else 0
        self.jump_channels = channels * (1 + bins) if "jump" in self.kinds else 0
        self.unet = UNet(unet, channels, self.flow_channels + self.jump_channels, image_shape[1])
        self.register_buffer("edges", bin_edges(bins), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> HeadOutput:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        raw = self.unet(x, t)
        out = HeadOutput()
        if self.flow_channels:
            out.velocity = raw[:, : self.flow_channels]
        if self.jump_channels:
            b, c, h, w = x.shape
            jump = raw[:, self.flow_channels:].reshape(b, c, 1 + self.bins, h, w)
            scale = (1 - t).clamp_min(self.min_one_minus_t)[:, None, None, None]
            out.intensity = F.softplus(jump[:, :, 0]) / scale
            # Bins last and contiguous: the loss and the sampler's gather work along rows.
            out.log_probs = torch.log_softmax(jump[:, :, 1:].movedim(2, -1).contiguous(), dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"kinds={self.kinds}, image_shape={self.image_shape}, bins={self.bins}"
