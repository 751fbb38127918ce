"""Checkpoint files: Lightning checkpoints written atomically, and exported EMA weights.

A training checkpoint (``.ckpt``) holds only tensors and plain Python values, so
it loads with ``torch.load(..., weights_only=True)``. An exported model
(``.safetensors``) holds the EMA weights and the training config as metadata:
that is what ``multiflow-gm sample`` and the shipped default model use.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from safetensors import safe_open
from safetensors.torch import save_file

from multiflow_gm.atomic_files import atomic_path, atomic_torch_save
from multiflow_gm.config import from_dict, to_dict
from multiflow_gm.errors import MissingResourceError, UserError

FORMAT = "multiflow-gm/codesign-v1"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary name, then rename: a killed run never leaves half a checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def export_weights(shadow: dict[str, torch.Tensor], config: dict, path: str | Path,
                   extra: dict | None = None) -> Path:
    """Save EMA weights and their config to ``path`` (safetensors), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in shadow.items()}
    metadata = {"format": FORMAT, "config": json.dumps(config), "extra": json.dumps(extra or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def export_from_checkpoint(ckpt_path: str | Path, out_path: str | Path) -> Path:
    """Export the EMA weights and config of a training checkpoint to safetensors."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = ckpt["multiflow_gm"]
    return export_weights(state["ema"]["shadow"], ckpt["hyper_parameters"]["config"], out_path,
                          extra={"global_step": ckpt.get("global_step"),
                                 "batches_consumed": state["batches_consumed"]})


def load_codesign(path: str | Path, device="cpu"):
    """``(network, process, config, info)`` from an exported ``.safetensors`` or a training ``.ckpt``.

    The network carries the EMA weights and is in eval mode.
    """
    from multiflow_gm.protein.model.network import CoDesignNetwork
    from multiflow_gm.protein.process import CoDesignProcess
    from multiflow_gm.training.protein_config import TrainConfig, without_retired_keys

    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"model file not found: {path}")
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise UserError(f"{path} is not a multiflow-gm co-design model (format {meta.get('format')!r})")
            weights = {name: f.get_tensor(name) for name in f.keys()}
        config = json.loads(meta["config"])
        info = json.loads(meta.get("extra", "{}"))
    else:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError(f"cannot read checkpoint {path}: {err}") from None
        config = ckpt["hyper_parameters"]["config"]
        weights = ckpt["multiflow_gm"]["ema"]["shadow"]
        info = {"global_step": ckpt.get("global_step")}
    cfg = from_dict(TrainConfig, without_retired_keys(config))
    network = CoDesignNetwork(cfg.model)
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the config (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    network.to(device).eval()
    return network, CoDesignProcess(cfg.process), cfg, info


def config_of(module) -> dict:
    return to_dict(module.cfg)
