"""Input features: time and position encodings, distance RBFs, node and edge embedders.

Edges live either on the dense L x L grid (``neighbours is None``) or on a sparse
neighbour list ``[B, L, K]`` (k nearest by current CA distance plus a sequence
window), with the same feature definitions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from multiflow_gm.protein import residue_constants as rc
from multiflow_gm.protein.coordinates import angstrom_to_nm, nm_to_angstrom
from multiflow_gm.protein.model import frames as fr

# Ideal N, CA, C and virtual CB in the residue frame (nm): rigid in the frame, so the
# 16 distances between two residues' atoms encode their relative orientation as well as
# their separation (ProteinMPNN's edge features; N-O-like pairs see strand hydrogen bonds).
_BACKBONE_LOCAL_NM = angstrom_to_nm(torch.tensor([rc.IDEAL_N, rc.IDEAL_CA, rc.IDEAL_C, rc.IDEAL_CB],
                                                 dtype=torch.float64))


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal encoding ``[..., dim]`` of a real tensor ``x [...]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    angles = x.float()[..., None] * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def rbf(distances: torch.Tensor, num: int, max_distance: float) -> torch.Tensor:
    """Gaussian radial basis ``[..., num]`` of distances (same unit as ``max_distance``)."""
    centres = torch.linspace(0.0, max_distance, num, device=distances.device, dtype=distances.dtype)
    width = max_distance / num
    scaled = distances[..., None] - centres
    # Clamping the exponent changes nothing above 1e-35 and avoids exp's slow path for huge arguments (8x).
    if distances.requires_grad and torch.is_grad_enabled():
        return torch.exp((-(scaled / width) ** 2).clamp_(min=-80.0))
    # Without a graph the same arithmetic runs in place on one buffer (about 3x faster on large pair tensors).
    return scaled.div_(width).square_().neg_().clamp_(min=-80.0).exp_()


def pair_linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)`` for a pair tensor ``[B, L, K, c]``, as a tensor of its own rather than a view.

    ``F.linear`` with a bias returns a view of a 2-D product; updating that in place makes
    autograd clone and zero-fill the whole pair tensor in the backward pass.
    """
    out = torch.matmul(x, layer.weight.t())
    return out if layer.bias is None else out.add_(layer.bias)


def gather_neighbours(values: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """``values [B, L, ...]`` at ``neighbours [B, L, K]`` -> ``[B, L, K, ...]``.

    Whole rows are copied with one ``index_select`` on the flattened batch: far
    faster than ``gather`` with an index expanded over the feature dimensions.
    """
    b, l, k = neighbours.shape
    offsets = torch.arange(b, device=neighbours.device)[:, None, None] * values.shape[1]
    rows = values.reshape(b * values.shape[1], -1).index_select(0, (neighbours + offsets).reshape(-1))
    return rows.reshape(b, l, k, *values.shape[2:])


def pairwise(values: torch.Tensor, neighbours: torch.Tensor | None):
    """``(v_i, v_j)`` broadcast over edges: dense ``[B, L, 1, ...], [B, 1, L, ...]`` or sparse."""
    if neighbours is None:
        return values[:, :, None], values[:, None, :]
    return values[:, :, None], gather_neighbours(values, neighbours)


def select_neighbours(ca: torch.Tensor, residue_mask: torch.Tensor, num_spatial: int,
                      sequence_window: int) -> torch.Tensor:
    """Indices ``[B, L, K]`` with ``K = min(L, num_spatial + 2 * sequence_window + 1)``.

    Sequence neighbours within the window (and the residue itself) always come
    first; the rest are the nearest by CA distance. Padding residues are last.
    """
    b, l, _ = ca.shape
    k = min(l, num_spatial + 2 * sequence_window + 1)
    dist = torch.cdist(ca.float(), ca.float())
    pos = torch.arange(l, device=ca.device)
    seq_gap = (pos[:, None] - pos[None, :]).abs()
    # Sequence neighbours get negative scores so they are always chosen first.
    score = torch.where(seq_gap <= sequence_window, seq_gap.float() - 1e6, dist)
    score = score.masked_fill(~residue_mask[:, None, :], float("inf"))
    return torch.topk(score, k, dim=-1, largest=False).indices


class NodeEmbedder(nn.Module):
    """Per-residue features -> ``[B, L, c_s]``: residue type (with mask), two time
    encodings (structure and sequence), residue-index encoding, self-conditioning probabilities."""

    def __init__(self, c_s: int, num_tokens: int, time_dim: int = 64, pos_dim: int = 64):
        super().__init__()
        self.num_tokens = num_tokens
        self.time_dim, self.pos_dim = time_dim, pos_dim
        self.aatype = nn.Embedding(num_tokens + 1, c_s)  # + mask token
        self.linear = nn.Linear(2 * time_dim + pos_dim + num_tokens, c_s)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(c_s, c_s), nn.LayerNorm(c_s))

    def forward(self, aatype, t_struct, t_seq, residue_index, sc_probs, residue_mask):
        b, l = aatype.shape
        times = torch.cat([sinusoidal(t_struct * 1000, self.time_dim), sinusoidal(t_seq * 1000, self.time_dim)], -1)
        feats = torch.cat([times[:, None, :].expand(b, l, -1), sinusoidal(residue_index, self.pos_dim),
                           sc_probs.to(times.dtype)], dim=-1)
        s = self.aatype(aatype) + self.linear(feats.to(self.linear.weight.dtype))
        return self.out(s) * residue_mask[..., None]


def backbone_pair_distances(rotations: torch.Tensor, translations_nm: torch.Tensor,
                            neighbours: torch.Tensor | None) -> torch.Tensor:
    """Distances ``[B, L, K, 16]`` (nm) between the ideal N, CA, C, CB of residue i and those of j.

    Frames ``[B, L, 3, 3]``, ``[B, L, 3]`` (nm); dense (``K = L``) or sparse edges.
    """
    b, l = translations_nm.shape[:2]
    local = _BACKBONE_LOCAL_NM.to(translations_nm)
    atoms = fr.apply(rotations, translations_nm, local.expand(b, l, 4, 3))                        # [B, L, 4, 3]
    if neighbours is None:
        flat = atoms.reshape(b, 4 * l, 3)
        dist = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")              # [B, 4L, 4L]
        return dist.reshape(b, l, 4, l, 4).transpose(2, 3).reshape(b, l, l, 16)
    atoms_i, atoms_j = pairwise(atoms, neighbours)
    diff = atoms_i[..., :, None, :] - atoms_j[..., None, :, :]                                     # [B, L, K, 4, 4, 3]
    return diff.norm(dim=-1).flatten(-2)


def _backbone_atoms_with_oxygen(rotations: torch.Tensor, translations_nm: torch.Tensor, residue_index: torch.Tensor,
                                residue_mask: torch.Tensor) -> torch.Tensor:
    """N, CA, C, CB and carbonyl O ``[B, L, 5, 3]`` (nm) of frames ``[B, L, 3, 3]``, ``[B, L, 3]`` (nm).

    O lies in the peptide plane of CA_i, C_i and N_i+1, so it carries residue i's psi, which
    its own frame does not; where residue i + 1 is absent or not numbered i + 1 it takes the
    ideal terminal psi.
    """
    from multiflow_gm.protein.geometry import backbone_from_frames

    mask = residue_mask.bool()
    successor = torch.zeros_like(mask)
    successor[:, :-1] = mask[:, :-1] & mask[:, 1:] & (residue_index[:, 1:] - residue_index[:, :-1] == 1)
    atoms = backbone_from_frames(rotations, nm_to_angstrom(translations_nm), successor=successor)  # N CA C O CB
    return angstrom_to_nm(atoms[..., [0, 1, 2, 4, 3], :])


def carbonyl_oxygens(rotations: torch.Tensor, translations_nm: torch.Tensor, residue_index: torch.Tensor,
                     residue_mask: torch.Tensor) -> torch.Tensor:
    """Carbonyl O positions ``[B, L, 3]`` (nm); see :func:`_backbone_atoms_with_oxygen`."""
    return _backbone_atoms_with_oxygen(rotations, translations_nm, residue_index, residue_mask)[..., 4, :]


def backbone_pair_distances_with_oxygen(rotations: torch.Tensor, translations_nm: torch.Tensor,
                                        neighbours: torch.Tensor, residue_index: torch.Tensor,
                                        residue_mask: torch.Tensor) -> torch.Tensor:
    """Distances ``[B, L, K, 25]`` (nm) between the N, CA, C, CB and carbonyl O of residue i and of
    its neighbours j (``neighbours [B, L, K]``): first the 16 of :func:`backbone_pair_distances`, then
    O_i to N, CA, C, CB, O of j, then N, CA, C, CB of i to O_j (ProteinMPNN's 25; the O pairs see
    backbone hydrogen bonds directly). The order keeps a 16-distance decoder's inputs in place."""
    atoms_i, atoms_j = pairwise(_backbone_atoms_with_oxygen(rotations, translations_nm, residue_index, residue_mask),
                                neighbours)
    dist = (atoms_i[..., :, None, :] - atoms_j[..., None, :, :]).norm(dim=-1)                        # [B, L, K, 5, 5]
    return torch.cat([dist[..., :4, :4].flatten(-2), dist[..., 4, :], dist[..., :4, 4]], dim=-1)


class EdgeEmbedder(nn.Module):
    """Pair features -> ``[B, L, K, c_z]``: relative sequence position, current CA
    distances and self-conditioned CA distances (RBFs, nm), node projections and,
    with ``backbone_pairs``, RBFs of the 16 distances between the two residues'
    N, CA, C, CB atoms placed by the current frames.

    The backbone-pair projection starts at zero, so switching it on in a trained
    network leaves its function unchanged until training moves it.
    """

    def __init__(self, c_s: int, c_z: int, max_relpos: int = 32, num_rbf: int = 32, max_distance_nm: float = 2.0,
                 backbone_pairs: bool = False, backbone_rbf: int = 8):
        super().__init__()
        self.max_relpos, self.num_rbf, self.max_distance = max_relpos, num_rbf, max_distance_nm
        self.relpos = nn.Embedding(2 * max_relpos + 1, c_z)
        self.node_i = nn.Linear(c_s, c_z, bias=False)
        self.node_j = nn.Linear(c_s, c_z, bias=False)
        self.distances = nn.Linear(2 * num_rbf, c_z)
        self.backbone_rbf = backbone_rbf
        self.backbone = nn.Linear(16 * backbone_rbf, c_z, bias=False) if backbone_pairs else None
        if self.backbone is not None:
            nn.init.zeros_(self.backbone.weight)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(c_z, c_z), nn.LayerNorm(c_z))

    def forward(self, s, ca_nm, sc_ca_nm, residue_index, neighbours, rotations=None):
        """``rotations`` ``[B, L, 3, 3]`` of the current frames: needed with backbone-pair features."""
        pos_i, pos_j = pairwise(residue_index, neighbours)
        rel = (pos_j - pos_i).clamp(-self.max_relpos, self.max_relpos) + self.max_relpos
        ca_i, ca_j = pairwise(ca_nm, neighbours)
        sc_i, sc_j = pairwise(sc_ca_nm, neighbours)
        feats = torch.cat([rbf((ca_i - ca_j).norm(dim=-1), self.num_rbf, self.max_distance),
                           rbf((sc_i - sc_j).norm(dim=-1), self.num_rbf, self.max_distance)], -1)
        _, node_j = pairwise(self.node_j(s), neighbours)
        z = pair_linear(feats.to(s.dtype), self.distances).add_(self.relpos(rel)).add_(self.node_i(s)[:, :, None])
        z = z.add_(node_j)
        if self.backbone is not None:
            distances = backbone_pair_distances(rotations.to(ca_nm.dtype), ca_nm, neighbours)
            features = rbf(distances, self.backbone_rbf, self.max_distance).flatten(-2)
            z = z.add_(pair_linear(features.to(s.dtype), self.backbone))
        return self.out(z)
