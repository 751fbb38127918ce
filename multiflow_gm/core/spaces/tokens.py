"""Finite token sets S^n, optionally extended by a mask token."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenSpace:
    """Tokens ``0 .. num_tokens-1``; with ``has_mask`` the extra token ``num_tokens`` is M.

    States are integer tensors ``[..., n]``; CTMC rates are ``[..., n, size]``.
    """

    num_tokens: int
    has_mask: bool = False

    def __post_init__(self):
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1; got {self.num_tokens}")

    @property
    def size(self) -> int:
        """Number of states a position can take (tokens plus the mask, if any)."""
        return self.num_tokens + int(self.has_mask)

    @property
    def mask_index(self) -> int | None:
        return self.num_tokens if self.has_mask else None

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise ValueError(f"{name} must hold integer tokens; got dtype {x.dtype}")
        if x.numel() and (x.min() < 0 or x.max() >= self.size):
            raise ValueError(f"{name} must hold tokens in [0, {self.size - 1}]; "
                             f"got [{int(x.min())}, {int(x.max())}]")
