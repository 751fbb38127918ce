"""The structure record at the file boundary: one chain's backbone in Angstrom.

What a structure file gives the sampler (a backbone to design for) and the held-out
benchmark (a native chain to fold and design) is a :class:`BackboneStructure`; its frames,
still in Angstrom, come from :func:`backbone_frames`. Inside the package a chain becomes a
:class:`~multiflow_gm.protein.frame_batch.FrameBatch` in nm through
:mod:`multiflow_gm.protein.coordinates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from multiflow_gm.protein import alphabet

if TYPE_CHECKING:
    import torch


@dataclass
class BackboneStructure:
    """One protein chain's backbone.

    ``atoms`` float ``[L, 4, 3]``: N, CA, C, O in **Angstrom** (N, CA, C finite; O may be NaN);
    ``aatype`` int ``[L]``: ``AA_ORDER`` indices (20 = unknown); ``source``: the file it came
    from; ``chain_id``: its chain in that file (empty when it has none). A cached
    :class:`~multiflow_gm.protein.structure_io.ProteinChain` has the same first fields and can
    be passed wherever a structure is only read.
    """

    name: str
    atoms: np.ndarray
    aatype: np.ndarray
    source: str = ""
    chain_id: str = ""

    def __len__(self) -> int:
        return int(len(self.aatype))

    @property
    def sequence(self) -> str:
        return alphabet.indices_to_sequence(self.aatype)

    def frames(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rotations [L, 3, 3], CA translations [L, 3] Angstrom)``, float32; see :func:`backbone_frames`."""
        return backbone_frames(self.atoms)

    @classmethod
    def from_frames(cls, name: str, rotations, translations, aatype) -> BackboneStructure:
        """A chain given as frames (rotations ``[L, 3, 3]``, CA translations ``[L, 3]`` Angstrom) and aatype ``[L]``.

        N, C and O are placed ideally from the frames, so :func:`backbone_frames` of the
        result gives the frames back; e.g. a training example's frames and residue types.
        """
        import torch

        from multiflow_gm.protein.geometry import backbone_from_frames

        atoms = backbone_from_frames(torch.as_tensor(rotations, dtype=torch.float64),
                                     torch.as_tensor(translations, dtype=torch.float64))[:, :4]
        return cls(name, atoms.cpu().numpy(), np.asarray(torch.as_tensor(aatype).cpu(), dtype=np.int64))


def backbone_frames(atoms) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue frames of backbone atoms ``[L, >=3, 3]`` (N, CA, C first; Angstrom, numpy):
    rotations float32 ``[L, 3, 3]`` and CA translations float32 ``[L, 3]`` in Angstrom."""
    import torch

    from multiflow_gm.protein.geometry import frames_from_backbone

    backbone = torch.as_tensor(np.asarray(atoms)[:, :3], dtype=torch.float32)
    return frames_from_backbone(backbone[:, 0], backbone[:, 1], backbone[:, 2])
