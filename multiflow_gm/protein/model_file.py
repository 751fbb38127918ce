"""Co-design model files: exported EMA weights (``.safetensors``) and training checkpoints.

An export holds float32 weights plus the run's config as JSON metadata (``format``
``multiflow-gm/codesign-v1``); a training checkpoint (``.ckpt``) holds only tensors and
plain values and loads with ``torch.load(..., weights_only=True)``. Loading needs the
model, process and sampling sections of the config only, so sampling a model never
imports the training framework.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from multiflow_gm.atomic_files import atomic_path
from multiflow_gm.config import from_dict
from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.protein.model.network import CoDesignNetwork, ModelConfig
from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig
from multiflow_gm.protein.sampling import SamplingConfig

FORMAT = "multiflow-gm/codesign-v1"
# Keys that exported models may still carry but that no longer mean anything: the SO(3)
# jump head once landed on a grid of this many relative rotations.
RETIRED_MODEL_KEYS = ("so3_jump_grid",)


def without_retired_keys(config: dict) -> dict:
    """``config`` (a plain dict) without the retired model keys, so old exports still load."""
    model = {k: v for k, v in config.get("model", {}).items() if k not in RETIRED_MODEL_KEYS}
    return {**config, "model": model}


@dataclass
class InferenceConfig:
    """The parts of a run's config that sampling needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @classmethod
    def from_run_config(cls, config: dict) -> "InferenceConfig":
        config = without_retired_keys(config)
        cfg = cls(model=from_dict(ModelConfig, config.get("model"), "model."),
                  process=from_dict(ProcessConfig, config.get("process"), "process."),
                  sampling=from_dict(SamplingConfig, config.get("sampling"), "sampling."))
        # A network never trained with self-conditioning inputs must not be fed them when sampling.
        cfg.sampling.self_condition = cfg.sampling.self_condition and bool(config.get("self_condition", True))
        return cfg


def export_weights(shadow: dict[str, torch.Tensor], config: dict, path: str | Path,
                   extra: dict | None = None) -> Path:
    """Save EMA weights and their run config to ``path`` (safetensors), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in shadow.items()}
    metadata = {"format": FORMAT, "config": json.dumps(config), "extra": json.dumps(extra or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def export_from_checkpoint(ckpt_path: str | Path, out_path: str | Path) -> Path:
    """Export the EMA weights and config of a training checkpoint to safetensors."""
    weights, config, info = read_model_file(ckpt_path)
    return export_weights(weights, config, out_path, extra=info)


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """``(weights, run config, info)`` of an export or a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"model file not found: {path}")
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise UserError(f"{path} is not a multiflow-gm co-design model (format {meta.get('format')!r})")
            weights = {name: f.get_tensor(name) for name in f.keys()}
        return weights, json.loads(meta["config"]), json.loads(meta.get("extra", "{}"))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"cannot read checkpoint {path}: {err}") from None
    state = ckpt["multiflow_gm"]
    return (state["ema"]["shadow"], ckpt["hyper_parameters"]["config"],
            {"global_step": ckpt.get("global_step"), "batches_consumed": state["batches_consumed"]})


def load_codesign(path: str | Path, device="cpu"):
    """``(network, process, config, info)`` from an exported ``.safetensors`` or a training ``.ckpt``.

    The network carries the EMA weights and is in eval mode; ``config`` is an
    :class:`InferenceConfig`.
    """
    weights, config, info = read_model_file(path)
    cfg = InferenceConfig.from_run_config(config)
    network = CoDesignNetwork(cfg.model)
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the config (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    network.to(device).eval()
    return network, CoDesignProcess(cfg.process), cfg, info


def with_sampling_defaults(source: str | Path, target: str | Path, overrides: list[str]) -> Path:
    """Copy an export to ``target`` with its sampling section changed by ``key=value`` overrides.

    The weights are untouched; ``multiflow-gm sample`` without flags then uses the new
    defaults. Keys are those of :class:`SamplingConfig` and are validated.
    """
    from multiflow_gm.config import apply_overrides, to_dict

    weights, config, info = read_model_file(source)
    # Validated here, naming a wrong key, rather than at sampling time.
    sampling = from_dict(SamplingConfig, apply_overrides(dict(config.get("sampling", {})), overrides), "sampling.")
    info = {**info, "sampling_defaults_from": [str(o) for o in overrides]}
    return export_weights(weights, {**config, "sampling": to_dict(sampling)}, target, extra=info)

