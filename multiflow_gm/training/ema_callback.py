"""The weight average of :class:`~multiflow_gm.training.ema.EMA` as a Lightning callback.

The callback owns the average; the LightningModule knows nothing of it. It averages the
submodule ``getattr(pl_module, attribute)`` (for proteins the network, not the module with
its process), updates after every training batch that took an optimiser step, and saves
itself in the checkpoint as ``checkpoint[checkpoint_key]["ema"]`` (the
:meth:`EMA.state_dict` layout: ``decay``, ``warmup``, ``num_updates``, ``shadow``), the
place the protein module wrote it before the callback existed, so older checkpoints load.
"""

from __future__ import annotations

import lightning as L
import torch

from multiflow_gm.training.ema import EMA


class EMACallback(L.Callback):
    """``EMA(decay, warmup)`` of ``pl_module.<attribute>``, created when fitting is set up.

    The shadow is taken from the weights the module has at ``setup`` (so a module initialised
    from exported weights starts its average there) and replaced by the checkpoint's on resume.
    Shadow tensors stay where the parameters were at ``setup`` (before the strategy moves the
    model to its device), as plain tensors outside the module.
    """

    def __init__(self, decay: float, warmup: bool = True, attribute: str = "network",
                 checkpoint_key: str = "multiflow_gm"):
        self.decay, self.warmup = decay, warmup
        self.attribute, self.checkpoint_key = attribute, checkpoint_key
        self.ema: EMA | None = None
        self._last_step = 0

    def _target(self, pl_module) -> torch.nn.Module:
        return getattr(pl_module, self.attribute)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.ema is None:
            self.ema = EMA(self._target(pl_module), self.decay, warmup=self.warmup)

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # global_step counts optimiser steps: a batch skipped for a non-finite loss leaves it
        # unchanged and must not move the average.
        if trainer.global_step > self._last_step:
            self.ema.update(self._target(pl_module))
            self._last_step = trainer.global_step

    @property
    def shadow(self) -> dict[str, torch.Tensor]:
        """Averaged parameters by name (the names of ``pl_module.<attribute>``)."""
        return self.ema.shadow

    def swapped_into(self, module: torch.nn.Module):
        """Context manager: ``module`` holds the averaged weights inside the ``with`` block."""
        return self.ema.swapped_into(module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint.setdefault(self.checkpoint_key, {})["ema"] = self.ema.state_dict()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.ema.load_state_dict(checkpoint[self.checkpoint_key]["ema"])
