"""Pairing prior noise with data (minibatch optimal transport for frames, nm).

``align`` rotates each noise sample onto its data point (Kabsch), which makes the
straight-line paths shorter without changing the prior (isotropic). ``ot`` also
permutes noise samples among the same-length examples of a batch to minimise the
total aligned squared distance (Hungarian algorithm), as in MultiFlow.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def kabsch_rotation(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rotation ``[B, 3, 3]`` minimising ``sum ||source R - target||^2`` (centred points ``[B, L, 3]``)."""
    m = mask[..., None].to(source.dtype)
    cov = (source * m).transpose(-1, -2) @ (target * m)
    u, _, vh = torch.linalg.svd(cov.double())
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return (u @ fix @ vh).to(source.dtype)


def pair_noise(noise: torch.Tensor, data: torch.Tensor, mask: torch.Tensor, permute: bool) -> torch.Tensor:
    """Noise ``[B, L, 3]`` aligned (and optionally re-assigned) to ``data`` ``[B, L, 3]``."""
    if permute and noise.shape[0] > 1 and bool((mask == mask[:1]).all()):
        b = noise.shape[0]
        src = noise[:, None].expand(b, b, *noise.shape[1:]).reshape(b * b, *noise.shape[1:])
        tgt = data[None].expand(b, b, *data.shape[1:]).reshape(b * b, *data.shape[1:])
        msk = mask[None].expand(b, b, -1).reshape(b * b, -1)
        rot = kabsch_rotation(src, tgt, msk)
        cost = (((src @ rot) - tgt) ** 2 * msk[..., None]).sum((-1, -2)).reshape(b, b)
        rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
        order = torch.empty(b, dtype=torch.long)
        order[torch.as_tensor(cols)] = torch.as_tensor(rows)
        noise = noise[order]
    return noise @ kabsch_rotation(noise, data, mask)
