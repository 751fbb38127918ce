"""Training dataset, length-bucketed batch sampler, collation and the DataLoader helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiflow_gm.protein.data.batching import LengthBatchSampler, cluster_weights, collate_chains
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.dataset import ProteinChainDataset
from multiflow_gm.protein.geometry import backbone_from_frames

LENGTHS = np.random.default_rng(0).integers(60, 300, size=500)
CLUSTERS = np.random.default_rng(1).integers(0, 120, size=500)


def _sampler(**kwargs):
    options = dict(squared_residue_budget=200_000, max_batch_size=16, seed=7)
    options.update(kwargs)
    return LengthBatchSampler(LENGTHS, **options)


def test_same_length_batches_respect_the_budget_and_cover_the_epoch():
    sampler = _sampler()
    batches = list(sampler)
    assert len(batches) == len(sampler) == sampler.num_batches()
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(500))  # every chain exactly once
    for batch in batches:
        lengths = LENGTHS[batch]
        assert (lengths == lengths[0]).all()
        assert len(batch) <= sampler.batch_size_for(lengths[0])
        assert len(batch) == 1 or len(batch) * lengths[0] ** 2 <= 200_000
    assert sampler.batch_size_for(60) == 16 and sampler.batch_size_for(150) == 8
    assert sampler.batch_size_for(1000) == 1


def test_padded_batches_count_the_longest_chain():
    sampler = _sampler(mode="padded")
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    for batch in batches:
        longest = LENGTHS[batch].max()
        assert len(batch) == 1 or len(batch) * longest**2 <= 200_000
    # Mixing lengths packs the epoch into fewer batches than one length per batch.
    assert len(batches) < len(list(_sampler()))


def test_order_is_a_function_of_seed_and_epoch():
    a, b = _sampler(), _sampler()
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert list(_sampler(seed=8)) != list(_sampler())


def test_resume_from_a_batch_and_state_dict():
    sampler = _sampler()
    sampler.set_epoch(2)
    full = list(sampler)
    resumed = _sampler()
    resumed.load_state_dict({"seed": 7, "epoch": 2, "start_batch": 5})
    assert len(resumed) == len(full) - 5
    assert list(resumed) == full[5:]
    assert list(resumed) == full  # the skip applies to one pass only
    assert sampler.state_dict() == {"seed": 7, "epoch": 2, "start_batch": 0}


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_get_disjoint_shards_of_equal_size(world_size):
    shards = [list(_sampler(rank=r, world_size=world_size)) for r in range(world_size)]
    assert len({len(shard) for shard in shards}) == 1
    seen = [i for shard in shards for batch in shard for i in batch]
    assert len(seen) == len(set(seen))
    total = _sampler().num_batches()
    assert len(shards[0]) == total // world_size
    with pytest.raises(ValueError):
        _sampler(rank=3, world_size=3)


def test_tiny_epochs_are_padded_across_ranks():
    sampler = LengthBatchSampler([100], rank=1, world_size=4)
    with pytest.warns(UserWarning, match="padding"):
        assert list(sampler) == [[0]]


def test_cluster_weighting_draws_one_member_per_cluster():
    sampler = _sampler(cluster_ids=CLUSTERS, cluster_weighting=True)
    picked = [i for batch in sampler for i in batch]
    assert sorted(CLUSTERS[picked].tolist()) == sorted(set(CLUSTERS.tolist()))
    sampler.set_epoch(1)
    assert sorted(i for batch in sampler for i in batch) != sorted(picked)
    weights = cluster_weights(CLUSTERS)
    assert weights.sum() == pytest.approx(len(set(CLUSTERS.tolist())))
    with pytest.raises(ValueError, match="cluster_ids"):
        _sampler(cluster_weighting=True)


def test_dataset_examples_are_centred_rotated_frames(small_real_cache):
    dataset = ProteinChainDataset(small_real_cache, seed=3)
    cache = ChainCache(small_real_cache)
    example = dataset[0]
    raw = torch.from_numpy(cache.load(0).atoms)
    length = raw.shape[0]
    assert example["atoms"].shape == (length, 4, 3) and example["atoms"].dtype == torch.float32
    assert example["rotations"].shape == (length, 3, 3) and example["translations"].shape == (length, 3)
    assert example["aatype"].dtype == torch.int64 and example["residue_mask"].all()
    assert example["residue_index"][0] == 0 and (example["residue_index"].diff() > 0).all()
    assert example["atoms"][:, 1].mean(0).abs().max() < 1e-4
    assert torch.equal(example["translations"], example["atoms"][:, 1])
    # A rigid motion: every interatomic distance is unchanged.
    flat_new, flat_raw = example["atoms"].reshape(-1, 3).double(), raw.reshape(-1, 3).double()
    assert torch.allclose(torch.cdist(flat_new, flat_new), torch.cdist(flat_raw, flat_raw), atol=1e-3)
    # Not the identity, reproducible for (seed, epoch, index), different in another epoch.
    assert not torch.allclose(example["atoms"] + raw[:, 1].mean(0), raw, atol=1.0)
    assert torch.equal(dataset[0]["atoms"], dataset[(0, 0)]["atoms"])
    assert not torch.allclose(dataset[(0, 1)]["atoms"], example["atoms"])
    dataset.set_epoch(1)
    assert torch.equal(dataset[0]["atoms"], dataset[(0, 1)]["atoms"])
    rebuilt = backbone_from_frames(example["rotations"], example["translations"])
    assert ((rebuilt[:, 0] - example["atoms"][:, 0]) ** 2).sum(-1).mean().sqrt() < 0.1


def test_collate_pads_with_masks(small_real_cache):
    dataset = ProteinChainDataset(small_real_cache)
    order = np.argsort(dataset.lengths)
    short, long = dataset[int(order[0])], dataset[int(order[-1])]
    batch = collate_chains([short, long])
    length = int(long["aatype"].shape[0])
    n_short = int(short["aatype"].shape[0])
    assert batch["atoms"].shape == (2, length, 4, 3) and batch["rotations"].shape == (2, length, 3, 3)
    assert batch["residue_mask"].sum(1).tolist() == [n_short, length]
    assert torch.equal(batch["atoms"][0, :n_short], short["atoms"])
    assert torch.equal(batch["rotations"][0, n_short:], torch.eye(3).expand(length - n_short, 3, 3))
    assert batch["length"].tolist() == [n_short, length] and batch["name"] == [short["name"], long["name"]]


def test_dataloader_yields_one_length_batches(small_real_cache):
    from torch.utils.data import DataLoader

    dataset = ProteinChainDataset(ChainCache(small_real_cache).filter_length(1, 300), seed=1)
    sampler = LengthBatchSampler(dataset.lengths, squared_residue_budget=100_000, max_batch_size=64,
                                 mode="same_length", cluster_ids=dataset.cluster_ids, cluster_weighting=True,
                                 seed=1, with_epoch=True)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_chains)
    sampler = loader.batch_sampler
    sampler.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(sampler) > 0
    clusters = ChainCache(small_real_cache).filter_length(1, 300).cluster_ids
    names = [name for batch in batches for name in batch["name"]]
    assert len(names) == len(set(clusters.tolist()))
    for batch in batches:
        assert batch["residue_mask"].all() and batch["atoms"].shape[1] <= 300
    sampler.set_epoch(1)
    again = list(loader)
    assert all(torch.equal(a["atoms"], b["atoms"]) for a, b in zip(batches, again))
