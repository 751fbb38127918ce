"""Readers for the official CIFAR-10 and ImageNet32 files (uint8 ``[N, 3, 32, 32]``, labels from 0).

CIFAR-10's python batches are Python pickles. They are read with an unpickler that
resolves only the few globals needed to rebuild numpy arrays (no other callable can
run), so a tampered file fails instead of executing code. The binary version
(``cifar-10-batches-bin``) is read as well. ImageNet32 npz files are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from multiflow_gm.errors import MissingResourceError, UserError

CIFAR_PY_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_PY_TEST = "test_batch"
CIFAR_BIN_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_BIN_TEST = "test_batch.bin"
IMAGENET32_TRAIN = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
IMAGENET32_VAL = "val_data.npz"


def _numpy_reconstruct():
    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build dicts, lists, strings, numbers and numpy arrays, nothing else."""

    def find_class(self, module, name):
        import codecs

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
            ("_codecs", "encode"): lambda: codecs.encode,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return allowed[(module, name)]()


def load_array_pickle(path: Path) -> dict:
    """A pickled dict of arrays / lists / bytes (Python 2 or 3 protocol) with bytes keys decoded."""
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise UserError(f"{path} is not a readable CIFAR-10 python batch: {err}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} does not hold a dict (not a CIFAR-10 python batch)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _find_dir(root: Path, names, subdirs) -> Path | None:
    for d in [root, *(root / s for s in subdirs)]:
        if all((d / n).is_file() for n in names):
            return d
    return None


def _cifar_python_batch(path: Path):
    batch = load_array_pickle(path)
    try:
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (KeyError, ValueError) as err:
        raise UserError(f"{path} is not a CIFAR-10 python batch (needs 'data' [N, 3072] and "
                        f"'labels'): {err}") from None
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def _cifar_binary_batch(path: Path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise UserError(f"{path} is not a CIFAR-10 binary batch (size not a multiple of 3073 bytes)")
    records = raw.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def read_cifar10(root: Path, max_train: int | None = None):
    """``(train, train_labels, test, test_labels)`` from the python or binary batches under ``root``."""
    py_dir = _find_dir(root, (*CIFAR_PY_TRAIN, CIFAR_PY_TEST), ("cifar-10-batches-py",))
    if py_dir is not None:
        reader, train_names, test_name, where = _cifar_python_batch, CIFAR_PY_TRAIN, CIFAR_PY_TEST, py_dir
    else:
        bin_dir = _find_dir(root, (*CIFAR_BIN_TRAIN, CIFAR_BIN_TEST), ("cifar-10-batches-bin",))
        if bin_dir is None:
            raise MissingResourceError(
                f"CIFAR-10 not found under {root}: expected the official python batches "
                f"{', '.join(CIFAR_PY_TRAIN)} and {CIFAR_PY_TEST} (directory cifar-10-batches-py "
                f"from cifar-10-python.tar.gz), or the binary batches {CIFAR_BIN_TRAIN[0]}..."
                f"{CIFAR_BIN_TRAIN[-1]} and {CIFAR_BIN_TEST}")
        reader, train_names, test_name, where = _cifar_binary_batch, CIFAR_BIN_TRAIN, CIFAR_BIN_TEST, bin_dir
    train, labels = _read_until(reader, [where / n for n in train_names], max_train)
    test, test_labels = reader(where / test_name)
    return train, labels, test, test_labels


def _imagenet32_batch(path: Path):
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = np.asarray(npz["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(npz["labels"], dtype=np.int64) - 1      # official labels are 1..1000
    except (KeyError, ValueError, OSError) as err:
        raise UserError(f"{path} is not an ImageNet32 npz file (needs 'data' [N, 3072] and "
                        f"'labels' 1..1000): {err}") from None
    if len(labels) != len(data) or (len(labels) and labels.min() < 0):
        raise UserError(f"{path}: labels must be 1..1000, one per image")
    return data, labels


def read_imagenet32(root: Path, max_train: int | None = None):
    """``(train, train_labels, val, val_labels)`` from the official ImageNet32 npz files."""
    subdirs = ("Imagenet32_train_npz", "Imagenet32_train", "imagenet32")
    train_dir = _find_dir(root, IMAGENET32_TRAIN, subdirs)
    val_dir = _find_dir(root, (IMAGENET32_VAL,), ("Imagenet32_val_npz", "Imagenet32_val", "imagenet32"))
    if train_dir is None or val_dir is None:
        raise MissingResourceError(
            f"ImageNet32 not found under {root}: expected the official npz files "
            f"{IMAGENET32_TRAIN[0]} ... {IMAGENET32_TRAIN[-1]} (Imagenet32_train_npz.zip) and "
            f"{IMAGENET32_VAL} (Imagenet32_val_npz.zip) in it or in its Imagenet32_train_npz / "
            f"Imagenet32_val_npz subdirectories")
    train, labels = _read_until(_imagenet32_batch, [train_dir / n for n in IMAGENET32_TRAIN], max_train)
    val, val_labels = _imagenet32_batch(val_dir / IMAGENET32_VAL)
    return train, labels, val, val_labels


def _read_until(reader, paths, max_images):
    """Concatenate batches in order, stopping once ``max_images`` are read (all if None)."""
    images, labels, count = [], [], 0
    for path in paths:
        data, lab = reader(path)
        images.append(data)
        labels.append(lab)
        count += len(data)
        if max_images is not None and count >= max_images:
            break
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)
