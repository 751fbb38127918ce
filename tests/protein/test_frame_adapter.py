"""The adapter between structures (Angstrom) and frame batches (nm): round trip, units, centring."""

import numpy as np
import torch

from multiflow_gm.core import so3
from multiflow_gm.protein.coordinates import (backbone_atoms_angstrom, backbone_atoms_nm, ca_angstrom,
                                              centre_on_ca, centred_translations_nm, frame_batch_from_collated)
from multiflow_gm.protein.data.batching import collate_chains
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.dataset import ProteinChainDataset
from multiflow_gm.protein.frame_batch import FrameBatch


def _collated(cache_path, indices, random_rotation=False):
    dataset = ProteinChainDataset(cache_path, random_rotation=random_rotation)
    return dataset, collate_chains([dataset[i] for i in indices])


def test_structure_to_frame_batch_to_atoms_round_trip(synthetic_cache):
    # Chains 0 (92 residues) and 1 (84): the second is padded, so the mask matters.
    cache = ChainCache(synthetic_cache)
    _, batch = _collated(synthetic_cache, [0, 1])
    frames = frame_batch_from_collated(batch)
    assert isinstance(frames, FrameBatch) and frames.shape == (2, 92)
    atoms = backbone_atoms_angstrom(frames.rotations, frames.translations, frames.residue_mask,
                                    dtype=torch.float64)
    for b in range(2):
        chain = cache.load(b)
        length = len(chain)
        native = centre_on_ca(np.asarray(chain.atoms, dtype=np.float64))   # the structure record, centred
        rebuilt = atoms[b, :length].numpy()
        # The cached backbone is ideal, so its frames give back N, CA, C (and O wherever a next
        # residue fixes psi) to float32 precision.
        assert np.abs(rebuilt[:, :3] - native[:, :3]).max() < 1e-4
        assert np.abs(rebuilt[:-1, 3] - native[:-1, 3]).max() < 1e-3
        assert not frames.residue_mask[b, length:].any()
        assert (frames.translations[b, length:] == 0).all()


def test_ca_round_trip_is_exact_to_float_precision(synthetic_cache):
    _, batch = _collated(synthetic_cache, [2, 4], random_rotation=True)
    frames = frame_batch_from_collated(batch)
    rotations, ca = frames.rotations, ca_angstrom(frames)
    mask = batch["residue_mask"]
    assert torch.equal(rotations, batch["rotations"])
    # The example is already centred in Angstrom, so only the unit changes: within two rounding steps.
    eps = torch.finfo(torch.float32).eps
    valid = batch["translations"][mask]
    assert torch.allclose(ca[mask], valid, rtol=4 * eps, atol=4 * eps * valid.abs().max().item())
    assert torch.equal(ca_angstrom(frames), ca)
    assert torch.equal(frames.aatype, batch["aatype"]) and torch.equal(frames.residue_index, batch["residue_index"])


def test_units_and_centring_of_a_straight_trace():
    # CA atoms 3.8 A apart along x are 0.38 nm apart inside, centred on the valid residues only.
    ca = torch.zeros(1, 5, 3, dtype=torch.float64)
    ca[0, :, 0] = 3.8 * torch.arange(5, dtype=torch.float64) + 100.0
    mask = torch.tensor([[True, True, True, True, False]])
    nm = centred_translations_nm(ca, mask)
    steps = (nm[0, 1:4] - nm[0, :3]).norm(dim=-1)
    assert torch.allclose(steps, torch.full((3,), 0.38, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(nm[0, :4].mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert (nm[0, 4] == 0).all()


def test_backbone_atoms_in_nm_are_the_angstrom_atoms_scaled():
    g = torch.Generator().manual_seed(0)
    rotations = so3.uniform((2, 7), generator=g, dtype=torch.float64)
    translations_nm = torch.randn(2, 7, 3, generator=g, dtype=torch.float64)
    in_angstrom = backbone_atoms_angstrom(rotations, translations_nm)
    in_nm = backbone_atoms_nm(rotations, translations_nm)
    assert in_nm.shape == (2, 7, 4, 3)
    assert torch.allclose(in_nm, in_angstrom[..., :4, :] * 0.1, atol=1e-12)
    # CA is the frame origin: the nm translation itself.
    assert torch.allclose(in_nm[..., 1, :], translations_nm, atol=1e-12)
