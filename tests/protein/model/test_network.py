"""The co-design network: SE(3) equivariance (dense and sparse), shapes, parameter count."""

import pytest
import torch

from multiflow_gm.core import so3
from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS, NUM_MODEL_TOKENS
from multiflow_gm.protein.model.network import CoDesignNetwork, ModelConfig

TINY = dict(c_s=32, c_z=16, c_hidden=8, num_heads=2, num_qk_points=3, num_v_points=3, seq_heads=2,
            seq_layers=1, num_blocks=2, edge_hidden=16, knn=6, sequence_window=2)


def _inputs(b=2, l=14, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, l, dtype=torch.bool)
    if b > 1:
        mask[1, -3:] = False
    return dict(aatype=torch.randint(0, NUM_MODEL_TOKENS, (b, l), generator=g),
                rotations=so3.uniform((b, l), dtype=dtype, generator=g),
                translations=torch.randn(b, l, 3, dtype=dtype, generator=g) * 1.5,
                t_struct=torch.rand(b, dtype=dtype, generator=g), t_seq=torch.rand(b, dtype=dtype, generator=g),
                residue_index=torch.arange(l).expand(b, l), residue_mask=mask,
                sc_translations=torch.randn(b, l, 3, dtype=dtype, generator=g),
                sc_probs=torch.softmax(torch.randn(b, l, NUM_AMINO_ACIDS, dtype=dtype, generator=g), -1))


@pytest.mark.parametrize("backbone_pairs", [False, True])
@pytest.mark.parametrize("pair_mode", ["dense", "sparse"])
def test_se3_equivariance_float64(pair_mode, backbone_pairs):
    torch.manual_seed(0)
    net = CoDesignNetwork(ModelConfig(**TINY, pair_mode=pair_mode, so3_jump_head=True,
                                      backbone_pair_features=backbone_pairs)).double()
    # Zero-initialised backbone updates (and backbone-pair projection) would make the check trivial.
    for block in net.blocks:
        torch.nn.init.normal_(block.backbone_update.weight, std=0.1)
    if backbone_pairs:
        torch.nn.init.normal_(net.edges.backbone.weight, std=0.1)
    net.eval()
    inputs = _inputs()
    g = so3.exp(torch.tensor([0.4, -1.3, 2.2], dtype=torch.float64))
    shift = torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64)
    moved = dict(inputs)
    moved["rotations"] = g @ inputs["rotations"]
    moved["translations"] = inputs["translations"] @ g.T + shift
    moved["sc_translations"] = inputs["sc_translations"] @ g.T + shift
    with torch.no_grad():
        out, out_moved = net(**inputs), net(**moved)
    mask = inputs["residue_mask"]
    assert (out["rotations"][mask] - inputs["rotations"][mask]).abs().max() > 1e-3
    assert torch.allclose(out_moved["rotations"][mask], (g @ out["rotations"])[mask], atol=1e-4)
    assert torch.allclose(out_moved["translations"][mask], (out["translations"] @ g.T + shift)[mask], atol=1e-4)
    for key in ("logits", "jump_intensity"):
        assert torch.allclose(out_moved[key][mask], out[key][mask], atol=1e-4), key


def test_backbone_pair_distances_match_placed_atoms():
    from multiflow_gm.protein.coordinates import angstrom_to_nm, backbone_atoms_angstrom
    from multiflow_gm.protein.model.embeddings import backbone_pair_distances

    inputs = _inputs(b=1, l=6)
    rot, trans = inputs["rotations"], inputs["translations"]
    dist = backbone_pair_distances(rot, trans, None)                      # [1, 6, 6, 16] nm
    atoms = backbone_atoms_angstrom(rot, trans, inputs["residue_mask"])    # Angstrom, N CA C O CB
    picked = angstrom_to_nm(atoms[0][:, [0, 1, 2, 4]])                     # N, CA, C, CB in nm
    i, j, a, b = 2, 5, 0, 3                                               # N of residue 2 to CB of residue 5
    assert torch.isclose(dist[0, i, j, a * 4 + b], (picked[i, a] - picked[j, b]).norm(), atol=1e-9)
    assert torch.allclose(dist[0, i, i].reshape(4, 4), dist[0, i, i].reshape(4, 4).T, atol=1e-12)
    assert torch.isclose(dist[0, i, j, 1 * 4 + 1], (trans[0, i] - trans[0, j]).norm(), atol=1e-9)


def test_backbone_pair_features_start_as_the_same_function():
    """Switched on in a trained network, the zero-initialised projection changes nothing at first."""
    torch.manual_seed(2)
    plain = CoDesignNetwork(ModelConfig(**TINY)).double().eval()
    extended = CoDesignNetwork(ModelConfig(**TINY, backbone_pair_features=True)).double().eval()
    missing, unexpected = extended.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["edges.backbone.weight"] and not unexpected
    inputs = _inputs(b=2, l=9)
    with torch.no_grad():
        a, b = plain(**inputs), extended(**inputs)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-12)
    assert torch.allclose(a["translations"], b["translations"], atol=1e-12)


def test_padding_does_not_change_valid_residues():
    net = CoDesignNetwork(ModelConfig(**TINY)).double().eval()
    inputs = _inputs(b=1, l=10)
    padded = {k: v for k, v in inputs.items()}
    for key in ("aatype", "rotations", "translations", "residue_index", "residue_mask", "sc_translations", "sc_probs"):
        pad = padded[key][:, :3].clone()
        padded[key] = torch.cat([padded[key], pad], dim=1)
    padded["residue_mask"] = torch.cat([inputs["residue_mask"], torch.zeros(1, 3, dtype=torch.bool)], 1)
    with torch.no_grad():
        a, b = net(**inputs), net(**padded)
    assert torch.allclose(a["logits"], b["logits"][:, :10], atol=1e-8)
    assert torch.allclose(a["translations"], b["translations"][:, :10], atol=1e-8)


def test_sparse_with_all_neighbours_equals_dense():
    torch.manual_seed(1)
    dense = CoDesignNetwork(ModelConfig(**{**TINY, "knn": 64}, pair_mode="dense")).double().eval()
    sparse = CoDesignNetwork(ModelConfig(**{**TINY, "knn": 64}, pair_mode="sparse")).double().eval()
    sparse.load_state_dict(dense.state_dict())
    inputs = _inputs(b=1, l=12)
    with torch.no_grad():
        a, b = dense(**inputs), sparse(**inputs)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-8)
    assert torch.allclose(a["translations"], b["translations"], atol=1e-8)


def test_paper_config_has_about_22m_parameters():
    from multiflow_gm.config import load_config
    from multiflow_gm.training.protein.config import TrainConfig
    from pathlib import Path

    cfg = load_config(TrainConfig, Path(__file__).resolve().parents[3] / "configs" / "protein" / "paper.yaml")
    count = sum(p.numel() for p in CoDesignNetwork(cfg.model).parameters())
    assert 20e6 < count < 24e6


def test_frames_stay_float32_under_bf16_autocast():
    net = CoDesignNetwork(ModelConfig(**TINY))
    inputs = {k: (v.float() if v.is_floating_point() else v) for k, v in _inputs(b=1, l=10).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(**inputs)
    assert out["rotations"].dtype == torch.float32 and out["translations"].dtype == torch.float32
    r = out["rotations"][0]
    assert torch.allclose(r.transpose(-1, -2) @ r, torch.eye(3).expand_as(r), atol=1e-5)


def test_sparse_with_all_neighbours_has_dense_gradients():
    torch.manual_seed(2)
    dense = CoDesignNetwork(ModelConfig(**{**TINY, "knn": 64}, pair_mode="dense")).double()
    sparse = CoDesignNetwork(ModelConfig(**{**TINY, "knn": 64}, pair_mode="sparse")).double()
    sparse.load_state_dict(dense.state_dict())
    inputs = _inputs(b=2, l=12)
    for net in (dense, sparse):
        out = net(**inputs)
        mask = inputs["residue_mask"][..., None]
        loss = ((out["translations"].square() * mask).sum() + (out["logits"] * mask).sum()
                + (out["rotations"] * mask[..., None]).sum())
        loss.backward()
    assert dense.blocks[0].ipa.pair_bias.weight.grad.abs().max() > 1e-6  # the check below is not vacuous
    for (name, p_dense), p_sparse in zip(dense.named_parameters(), sparse.parameters()):
        if p_dense.grad is None:
            assert p_sparse.grad is None, name
            continue
        assert torch.allclose(p_dense.grad, p_sparse.grad, atol=1e-9), name


def test_edge_residual_keeps_float32_under_bf16_autocast():
    from multiflow_gm.protein.model.blocks import EdgeTransition

    torch.manual_seed(3)
    edge = EdgeTransition(c_s=8, c_z=8, hidden=8)
    torch.nn.init.zeros_(edge.mlp[3].weight)  # the update is then exactly the bias
    s, z = torch.randn(1, 5, 8), torch.randn(1, 5, 5, 8) * 100 + 1000
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = edge(s, z, None)
    # bf16 keeps ~3 digits: a residual rounded to bf16 would be off by several units at 1e3.
    expected = torch.nn.functional.layer_norm(z + edge.mlp[3].bias, (8,), edge.norm.weight, edge.norm.bias)
    assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=1e-3)
