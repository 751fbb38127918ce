"""The one adapter between structures in Angstrom and frame batches in nm, with centring.

Structures are read, cached, evaluated and written in Angstrom (a
:class:`~multiflow_gm.protein.structure.BackboneStructure`, a cached ``ProteinChain`` and the
collated example dict of :func:`~multiflow_gm.protein.data.batching.collate_chains`); the
co-design paths, the network and the sampler work on a
:class:`~multiflow_gm.protein.frame_batch.FrameBatch` in nanometres, so CA positions of the
unit Gaussian prior have the spread of a small protein. Every crossing goes through here:

* :func:`frame_batch_from_collated` / :func:`centred_translations_nm`: Angstrom in, nm out,
  centred on the valid residues;
* :func:`backbone_atoms_angstrom` / :func:`ca_angstrom`: frames in
  nm (a sampled batch or a prediction) out to Angstrom atoms;
* :func:`backbone_atoms_nm`: ideal backbone atoms of nm frames, in nm (the auxiliary loss);
* :func:`centre_on_ca`: a structure's atoms moved so its CA centroid is the origin.

The factor is ``ProcessConfig.translation_scale`` (nm per Angstrom, :data:`NM_PER_ANGSTROM`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from multiflow_gm.protein.frame_batch import FrameBatch

ANGSTROM_PER_NM = 10.0
# The factor both conversions use (the default of ``ProcessConfig.translation_scale``).
NM_PER_ANGSTROM = 0.1


def angstrom_to_nm(x, nm_per_angstrom: float = NM_PER_ANGSTROM):
    """Positions or lengths (any shape, torch or numpy) from Angstrom to nm: ``x * nm_per_angstrom``."""
    return x * nm_per_angstrom


def nm_to_angstrom(x, nm_per_angstrom: float = NM_PER_ANGSTROM):
    """Positions or lengths (any shape, torch or numpy) from nm to Angstrom: ``x / nm_per_angstrom``.

    It divides by the same factor :func:`angstrom_to_nm` multiplies by (rather than multiplying
    by :data:`ANGSTROM_PER_NM`) so that both directions use one configured number and give
    the same floating-point results the sampler has always produced.
    """
    return x / nm_per_angstrom


def centroid(points, mask=None):
    """Mean position ``[..., 1, 3]`` of ``points`` ``[..., L, 3]`` (any unit, torch or numpy).

    With ``mask`` ``[..., L]`` (torch only) only the valid points count; an all-padding
    row gives the origin rather than a division by zero.
    """
    if mask is None:
        return points.mean(axis=-2, keepdims=True) if isinstance(points, np.ndarray) \
            else points.mean(dim=-2, keepdim=True)
    m = mask[..., None].to(points.dtype)
    return (points * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)


def center_positions(points, mask=None):
    """``points`` ``[..., L, 3]`` minus their centroid (same unit, torch or numpy).

    With ``mask`` ``[..., L]`` (torch only) the centroid is that of the valid points and
    padding positions are set to zero, so padded batches carry no stray coordinates.
    """
    if mask is None:
        return points - centroid(points)
    return (points - centroid(points, mask)) * mask[..., None].to(points.dtype)


def centre_on_ca(atoms: np.ndarray) -> np.ndarray:
    """Backbone atoms ``[L, A, 3]`` (Angstrom, numpy) moved so the CA atoms' (slot 1) centroid is the origin."""
    return atoms - centroid(atoms[:, 1])


def centred_translations_nm(translations, residue_mask, nm_per_angstrom: float = NM_PER_ANGSTROM):
    """CA positions ``[..., L, 3]`` in Angstrom -> nm, centred on the residues where the bool
    ``residue_mask`` ``[..., L]`` is True and zero elsewhere (torch)."""
    return center_positions(angstrom_to_nm(translations, nm_per_angstrom), residue_mask)


def frame_batch_from_collated(batch: dict, nm_per_angstrom: float = NM_PER_ANGSTROM) -> FrameBatch:
    """The :class:`FrameBatch` (nm) of a collated batch of chains (Angstrom).

    ``batch`` holds ``rotations`` ``[B, L, 3, 3]``, ``translations`` ``[B, L, 3]`` (Angstrom),
    ``aatype``, ``residue_index`` and ``residue_mask`` ``[B, L]`` (bool or 0/1); other keys
    (atoms, names) stay at the file side.
    """
    from multiflow_gm.protein.frame_batch import FrameBatch

    mask = batch["residue_mask"].bool()
    return FrameBatch(rotations=batch["rotations"],
                      translations=centred_translations_nm(batch["translations"], mask, nm_per_angstrom),
                      aatype=batch["aatype"], residue_index=batch["residue_index"], residue_mask=mask)


def ca_angstrom(frames: FrameBatch, nm_per_angstrom: float = NM_PER_ANGSTROM) -> torch.Tensor:
    """CA positions ``[B, L, 3]`` in Angstrom of a frame batch (in the batch's dtype)."""
    return nm_to_angstrom(frames.translations, nm_per_angstrom)


def backbone_atoms_angstrom(rotations, translations_nm, residue_mask=None, nm_per_angstrom: float = NM_PER_ANGSTROM,
                            dtype=None) -> torch.Tensor:
    """Ideal backbone atoms ``[..., L, 5, 3]`` (N, CA, C, O, CB; Angstrom) of frames in nm.

    ``rotations`` ``[..., L, 3, 3]``, ``translations_nm`` ``[..., L, 3]``; ``residue_mask``
    ``[..., L]`` as in :func:`~multiflow_gm.protein.geometry.backbone_from_frames`. The unit
    changes in the frames' own dtype; ``dtype`` (e.g. float64) is applied after it, for the
    atom placement.
    """
    from multiflow_gm.protein.geometry import backbone_from_frames

    translations = nm_to_angstrom(translations_nm, nm_per_angstrom)
    if dtype is not None:
        rotations, translations = rotations.to(dtype), translations.to(dtype)
    return backbone_from_frames(rotations, translations, residue_mask)


def backbone_atoms_nm(rotations, translations_nm, residue_mask=None,
                      nm_per_angstrom: float = NM_PER_ANGSTROM) -> torch.Tensor:
    """Ideal backbone atoms N, CA, C, O ``[..., L, 4, 3]`` in nm of frames in nm (atoms are
    placed in Angstrom, where the ideal geometry is tabulated, and converted back)."""
    atoms = backbone_atoms_angstrom(rotations, translations_nm, residue_mask, nm_per_angstrom)
    return angstrom_to_nm(atoms[..., :4, :], nm_per_angstrom)


def radius_of_gyration(ca) -> float:
    """Radius of gyration of one chain's CA positions ``[L, 3]`` (numpy or torch), in their unit.

    Computed in float64: ``sqrt(mean_i |x_i - centroid|^2)``. All callers pass Angstrom.
    """
    ca = np.asarray(ca, dtype=np.float64)
    centred = center_positions(ca)
    return float(np.sqrt(np.mean(np.sum(centred ** 2, axis=-1))))
