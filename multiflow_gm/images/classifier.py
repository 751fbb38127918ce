"""A small CNN classifier whose penultimate layer is the metric's feature space
when no Inception-v3 weights are given.

It is trained once on the dataset's training split, cached with its held-out
accuracy, and reloaded while its settings match. Features are the pre-activation
outputs of the ``feature_dim`` layer (closer to Gaussian than ReLU outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.images.datasets import ImageData, to_unit_range
from multiflow_gm.atomic_files import atomic_torch_save
from multiflow_gm.images.files import load_torch_file


class SmallClassifier(nn.Module):
    """Two conv blocks (conv-BN-ReLU x2, max-pool) and two linear layers -> ``feature_dim`` -> logits."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, feature_dim: int = 64,
                 width: int = 32):
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                    nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.conv = nn.Sequential(*block(in_channels, width), *block(width, 2 * width))
        flat = 2 * width * (image_size // 4) ** 2
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(inplace=True), nn.Dropout(0.3))
        self.feature = nn.Linear(256, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` in [-1, 1] -> ``[N, feature_dim]``."""
        return self.feature(self.hidden(self.conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.features(x)))


@dataclass
class TrainedClassifier:
    model: SmallClassifier
    test_accuracy: float
    steps: int
    from_cache: bool


def _augment(x: torch.Tensor, generator: torch.Generator, flip: bool) -> torch.Tensor:
    """Random shifts of up to 2 pixels (images of 16+ pixels), optional horizontal flips."""
    if x.shape[-1] >= 16:
        pad = 2
        padded = F.pad(x, (pad, pad, pad, pad), value=-1.0)
        dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
        x = padded[..., dy: dy + x.shape[-2], dx: dx + x.shape[-1]]
    if flip:
        mask = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(to_unit_range(images[i: i + batch_size].to(device)))
        correct += int((logits.argmax(-1).cpu() == labels[i: i + batch_size]).sum())
    return correct / max(1, len(images))


def classifier_fingerprint(data: ImageData, feature_dim: int, steps: int, batch_size: int,
                           split: str) -> dict:
    c, h, _ = data.image_shape
    return {"dataset": data.name, "channels": c, "size": h, "num_classes": data.num_classes,
            "train_images": len(data.train), "feature_dim": feature_dim, "steps": steps,
            "batch_size": batch_size, "split": split}


def train_or_load_classifier(data: ImageData, cache_path: Path, feature_dim: int = 64, steps: int = 1500,
                             batch_size: int = 128, horizontal_flip: bool = False, seed: int = 0,
                             split: str = "", progress: Callable | None = None,
                             device: str | torch.device = "cpu") -> TrainedClassifier:
    """Load the cached classifier at ``cache_path`` if its settings match, else train and cache it.

    ``split`` identifies the train/held-out split (e.g. its seed and fraction) so that a
    cached classifier is never reused with a split it was not trained on.
    """
    c, h, _ = data.image_shape
    fingerprint = classifier_fingerprint(data, feature_dim, steps, batch_size, split)
    model = SmallClassifier(c, h, data.num_classes, feature_dim)
    if cache_path.is_file():
        cached = load_torch_file(cache_path)
        if cached.get("fingerprint") == fingerprint:
            model.load_state_dict(cached["state_dict"])
            model.to(device).eval()
            return TrainedClassifier(model, float(cached["test_accuracy"]), steps, True)
    generator = seeded_generator(seed)
    torch.manual_seed(seed)
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    model.train()
    iterator = range(steps)
    for _ in (progress(iterator) if progress else iterator):
        idx = torch.randint(len(data.train), (batch_size,), generator=generator)
        x = _augment(to_unit_range(data.train[idx]), generator, horizontal_flip).to(device)
        loss = F.cross_entropy(model(x), data.train_labels[idx].to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    model.eval()
    acc = accuracy(model, data.test, data.test_labels)
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"fingerprint": fingerprint, "state_dict": state, "test_accuracy": acc},
                      cache_path)
    return TrainedClassifier(model, acc, steps, False)
