"""The typed batch of backbone frames the co-design process, network and sampler work on (nm).

Structures enter and leave the package in Angstrom (files, the chain cache, evaluation);
inside, a batch of chains is a :class:`FrameBatch` with CA positions in nanometres, so the
unit Gaussian prior has the spread of a small protein. The only way between the two is
:mod:`multiflow_gm.protein.coordinates`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FrameBatch:
    """Clean backbone frames and residue types of ``B`` chains padded to ``L`` residues.

    * ``rotations`` ``[B, L, 3, 3]``: residue frames (columns are the local axes in global
      coordinates; unitless);
    * ``translations`` ``[B, L, 3]``: CA positions in **nm**, centred on the valid residues of
      each chain, zero at padding;
    * ``aatype`` int64 ``[B, L]``: ``AA_ORDER`` indices (20 = unknown);
    * ``residue_index`` int64 ``[B, L]``: residue numbers (relative positions matter only);
    * ``residue_mask`` bool ``[B, L]``: True for real residues, False at padding.
    """

    rotations: torch.Tensor
    translations: torch.Tensor
    aatype: torch.Tensor
    residue_index: torch.Tensor
    residue_mask: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        """``(B, L)``: chains and (padded) residues per chain."""
        return tuple(self.residue_mask.shape)
