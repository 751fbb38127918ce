"""A compact time-conditioned U-Net for generator matching on images.

Residual blocks (GroupNorm, SiLU, 3x3 convolutions) with the time embedding
applied as a per-channel scale and shift, strided-convolution downsampling,
nearest-neighbour upsampling, skip connections by concatenation, and multi-head
self-attention only at the resolutions listed in ``attention_resolutions``
(full-resolution attention dominates the cost on a CPU, so by default it is
used only at the lowest resolution, e.g. 7x7 for 28x28 MNIST).

Shapes: images ``[B, C, H, W]``, times ``[B]`` in [0, 1]; the output has
``out_channels`` channels at the input resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:
    """Architecture of :class:`UNet` (the input/output channels come from the data and heads)."""

    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 5)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (7,)
    attention_heads: int = 4
    groups: int = 8
    dropout: float = 0.0
    time_embed_mult: int = 4

    def __post_init__(self):
        if self.base_channels < 1 or not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError("base_channels and channel_mults must be positive")
        for mult in self.channel_mults:
            if (self.base_channels * mult) % self.groups:
                raise ValueError(f"channels {self.base_channels * mult} are not divisible by "
                                 f"groups={self.groups}")
        if self.num_res_blocks < 1:
            raise ValueError("num_res_blocks must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must lie in [0, 1)")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of ``1000 t`` ``[B] -> [B, dim]`` (the usual diffusion scale)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        # Zero-initialised last convolution: each block starts as the identity.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a (low-resolution) feature map."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} are not divisible by attention_heads={heads}")
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))        # [B, heads, HW, d]
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """Residual blocks of one resolution, each optionally followed by attention."""

    def __init__(self, blocks: list[ResBlock], attentions: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)


class UNet(nn.Module):
    """Time-conditioned U-Net ``(x [B, C_in, H, W], t [B]) -> [B, out_channels, H, W]``."""

    def __init__(self, config: UNetConfig, in_channels: int, out_channels: int, image_size: int):
        super().__init__()
        self.config = config
        num_levels = len(config.channel_mults)
        if image_size % (2 ** (num_levels - 1)):
            raise ValueError(f"image size {image_size} is not divisible by 2^{num_levels - 1} "
                             f"(channel_mults has {num_levels} levels)")
        ch = [config.base_channels * m for m in config.channel_mults]
        res = [image_size // 2 ** i for i in range(num_levels)]
        emb_dim = config.base_channels * config.time_embed_mult
        self.time_mlp = nn.Sequential(nn.Linear(config.base_channels, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(in_channels, ch[0], 3, padding=1)

        def attention(c, r):
            if r in config.attention_resolutions:
                return SelfAttention(c, config.attention_heads, config.groups)
            return nn.Identity()

        g, p = config.groups, config.dropout
        self.down, self.downsamplers = nn.ModuleList(), nn.ModuleList()
        skip_channels, c_prev = [ch[0]], ch[0]
        for i, (c, r) in enumerate(zip(ch, res)):
            blocks, attns = [], []
            for _ in range(config.num_res_blocks):
                blocks.append(ResBlock(c_prev, c, emb_dim, g, p))
                attns.append(attention(c, r))
                c_prev = c
                skip_channels.append(c)
            self.down.append(_Level(blocks, attns))
            if i < num_levels - 1:
                self.downsamplers.append(Downsample(c))
                skip_channels.append(c)
        self.mid1 = ResBlock(c_prev, c_prev, emb_dim, g, p)
        self.mid_attn = attention(c_prev, res[-1])
        self.mid2 = ResBlock(c_prev, c_prev, emb_dim, g, p)
        self.up, self.upsamplers = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(num_levels)):
            blocks, attns = [], []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResBlock(c_prev + skip_channels.pop(), ch[i], emb_dim, g, p))
                attns.append(attention(ch[i], res[i]))
                c_prev = ch[i]
            self.up.append(_Level(blocks, attns))
            if i > 0:
                self.upsamplers.append(Upsample(c_prev))
        self.out_norm = nn.GroupNorm(g, c_prev)
        self.out_conv = nn.Conv2d(c_prev, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels).to(x.dtype))
        h = self.stem(x)
        skips = [h]
        for i, level in enumerate(self.down):
            for block, attn in zip(level.blocks, level.attentions):
                h = attn(block(h, emb))
                skips.append(h)
            if i < len(self.downsamplers):
                h = self.downsamplers[i](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, level in enumerate(self.up):
            for block, attn in zip(level.blocks, level.attentions):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            if i < len(self.upsamplers):
                h = self.upsamplers[i](h)
        return self.out_conv(F.silu(self.out_norm(h)))
