"""Lightning checkpoints written atomically and read back with ``weights_only=True``.

A training checkpoint (``.ckpt``) holds only tensors and plain Python values. Exported
models and loading live in :mod:`multiflow_gm.protein.model_file`, free of Lightning.
"""

from __future__ import annotations

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from multiflow_gm.atomic_files import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary name, then rename: a killed run never leaves half a checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
