"""The benchmark's networks by name, and their EMA snapshots on disk.

``flow``, ``jump`` and ``flow_jump`` name a network by its heads. A snapshot is the EMA
weights of one network at one training step (``snapshots/<network>_<step>.pt``, loaded
with ``weights_only=True``); the training curve scores them.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from multiflow_gm.atomic_files import atomic_torch_save
from multiflow_gm.images.config import ImageBenchConfig, network_fingerprint
from multiflow_gm.images.files import load_torch_file
from multiflow_gm.images.heads import NETWORK_KINDS, ImageGeneratorNet

NETWORK_ORDER = ("flow", "jump", "flow_jump")
SNAPSHOT_FORMAT = "multiflow-gm/images-ema-snapshot-v1"
_SNAPSHOT_NAME = re.compile(r"^(flow|jump|flow_jump)_(\d+)\.pt$")


def build_network(config: ImageBenchConfig, network: str, image_shape) -> ImageGeneratorNet:
    if network not in NETWORK_KINDS:
        raise ValueError(f"unknown network {network!r}; expected one of {list(NETWORK_KINDS)}")
    return ImageGeneratorNet(config.model, tuple(image_shape), NETWORK_KINDS[network], config.jump.bins,
                             min_one_minus_t=1.0 - config.train.t_max)


def fingerprint(config: ImageBenchConfig, network: str) -> dict:
    """What a trained network depends on: its heads and the settings of its training."""
    return {"network": network, **network_fingerprint(config)}


def snapshot_path(folder: Path, network: str, step: int) -> Path:
    return Path(folder) / f"{network}_{step:07d}.pt"


def save_snapshot(folder: Path, network: str, step: int, fingerprint_: dict, weights: dict) -> Path:
    """Atomically write ``weights`` (parameter name -> tensor) as the snapshot at ``step``."""
    path = snapshot_path(folder, network, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": SNAPSHOT_FORMAT, "fingerprint": fingerprint_, "step": step,
                       "ema": dict(weights)}, path)
    return path


def snapshot_files(folder: Path, network: str) -> list[tuple[int, Path]]:
    """``(step, path)`` of every snapshot of ``network`` in ``folder``, by step."""
    found = []
    for path in Path(folder).glob(f"{network}_*.pt"):
        match = _SNAPSHOT_NAME.match(path.name)
        if match and match.group(1) == network:
            found.append((int(match.group(2)), path))
    return sorted(found)


def load_snapshot(config: ImageBenchConfig, network: str, image_shape, path: Path) -> tuple[ImageGeneratorNet, int]:
    """The network of ``config`` holding the snapshot's weights, and its step; a snapshot of
    other settings or another format is a ``ValueError`` naming the file."""
    state = load_torch_file(path)
    if state.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path} is not an EMA snapshot")
    if state["fingerprint"] != fingerprint(config, network):
        raise ValueError(f"{path} was trained with other settings than the config")
    net = build_network(config, network, image_shape)
    names = dict(net.named_parameters())
    missing = [name for name in names if name not in state["ema"]]
    if missing:
        raise ValueError(f"{path} lacks parameters {missing[:3]}")
    with torch.no_grad():
        for name, p in names.items():
            p.copy_(state["ema"][name])
    return net, int(state["step"])
