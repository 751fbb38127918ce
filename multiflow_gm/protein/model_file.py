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
from multiflow_gm.protein.run_config import migrate_run_config, resolve_self_condition
from multiflow_gm.protein.sampling import SamplingConfig

FORMAT = "multiflow-gm/codesign-v1"


@dataclass
class InferenceConfig:
    """The parts of a run's config that sampling needs.

    ``self_condition`` is the run's training setting; ``sampling.self_condition`` is
    resolved against it when the config is built (null: as trained).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    self_condition: bool = True

    def __post_init__(self):
        self.sampling.self_condition = resolve_self_condition(self.self_condition, self.sampling.self_condition)

    @staticmethod
    def migrate_retired_keys(config: dict) -> dict:
        return migrate_run_config(config, sampling_only=True)

    @classmethod
    def from_run_config(cls, config: dict) -> "InferenceConfig":
        """From a whole run config (training sections are ignored), its retired keys migrated."""
        config = cls.migrate_retired_keys(config)
        return from_dict(cls, {k: config[k] for k in ("model", "process", "sampling", "self_condition")
                               if k in config})


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
    defaults. Keys are those of :class:`SamplingConfig` (without the ``sampling.`` prefix)
    and are validated, naming a wrong key, here rather than at sampling time.
    """
    from multiflow_gm.config import to_dict, with_overrides

    weights, config, info = read_model_file(source)
    cfg = with_overrides(InferenceConfig.from_run_config(config), [f"sampling.{o}" for o in overrides])
    info = {**info, "sampling_defaults_from": [str(o) for o in overrides]}
    migrated = InferenceConfig.migrate_retired_keys(config)
    return export_weights(weights, {**migrated, "sampling": to_dict(cfg.sampling)}, target, extra=info)


DECODER_SHAPE_KEYS = ("decoder_hidden", "decoder_layers", "decoder_knn", "decoder_oxygen")


def with_decoder(source: str | Path, decoder: str | Path, target: str | Path,
                 decoder_shape: dict | None = None) -> Path:
    """Copy a co-design export to ``target`` with its ``sequence_decoder.*`` tensors replaced by
    those of ``decoder`` (a ``pretrain-decoder`` run's decoder.safetensors).

    ``decoder_shape`` (keys of :data:`DECODER_SHAPE_KEYS`) sets the config's decoder size when the
    new decoder differs from the old (more layers, the O distances); every tensor must then match
    a network built with that config, and the sampling defaults are kept.
    """
    from safetensors.torch import load_file

    weights, config, info = read_model_file(source)
    if not Path(decoder).is_file():
        raise MissingResourceError(f"decoder file not found: {decoder}")
    unknown = sorted(set(decoder_shape or {}) - set(DECODER_SHAPE_KEYS))
    if unknown:
        raise UserError(f"decoder_shape: unknown keys {unknown}; known: {list(DECODER_SHAPE_KEYS)}")
    prefix = "sequence_decoder."
    if not any(k.startswith(prefix) for k in weights):
        raise UserError(f"{source} has no sequence decoder (model.sequence_decoder is off)")
    config = {**config, "model": {**config.get("model", {}), **(decoder_shape or {})}}
    expected = {k[len(prefix):]: v.shape for k, v in
                CoDesignNetwork(InferenceConfig.from_run_config(config).model).state_dict().items()
                if k.startswith(prefix)}
    new = load_file(str(decoder))
    if set(new) != set(expected) or any(new[k].shape != expected[k] for k in expected):
        raise UserError(f"{decoder} does not fit the decoder of {source} with {decoder_shape or 'its own size'} "
                        "(other tensors or shapes)")
    weights = {**{k: v for k, v in weights.items() if not k.startswith(prefix)},
               **{prefix + k: v for k, v in new.items()}}
    return export_weights(weights, config, target, extra={**info, "sequence_decoder_from": str(decoder)})


def decoder_shape_beside(decoder: str | Path) -> dict | None:
    """The ``decoder_shape`` recorded by a ``pretrain-decoder`` run (settings.json beside its
    decoder.safetensors) for :func:`with_decoder`; None where there is no such file."""
    path = Path(decoder).parent / "settings.json"
    if not path.is_file():
        return None
    settings = json.loads(path.read_text())
    return {"decoder_hidden": settings["hidden"], "decoder_layers": settings["layers"],
            "decoder_knn": settings["knn"], "decoder_oxygen": settings.get("oxygen", False)}
