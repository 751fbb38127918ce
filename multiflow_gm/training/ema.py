"""Exponential moving average of model weights, used for sampling.

Kept as plain tensors (not a module copy) so it saves with the checkpoint and
resumes exactly.
"""

from __future__ import annotations

import contextlib

import torch


class EMA:
    """``shadow <- decay * shadow + (1 - decay) * param`` after every optimiser step.

    ``warmup`` uses ``min(decay, (1 + n) / (10 + n))`` for the first updates so the
    average is not dominated by the random initialisation. Every parameter is averaged,
    frozen ones too (their average is themselves), so an export of the shadow is complete.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1); got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    def _current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = self._current_decay()
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach().to(self.shadow[name].dtype), 1.0 - decay)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name])

    @contextlib.contextmanager
    def swapped_into(self, model: torch.nn.Module):
        """Temporarily load the EMA weights into ``model`` (e.g. for validation sampling)."""
        backup = {name: p.detach().clone() for name, p in model.named_parameters() if name in self.shadow}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in backup:
                        p.copy_(backup[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.warmup = float(state["decay"]), bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        missing = set(self.shadow) - set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state lacks parameters: {sorted(missing)[:5]}")
        for name in self.shadow:
            self.shadow[name].copy_(state["shadow"][name])
