"""The sequence decoder: invariance, padding, zero start inside a trained network, and that it learns."""

import pytest
import torch

from multiflow_gm.core import so3
from multiflow_gm.protein.alphabet import MASK, NUM_AMINO_ACIDS, NUM_MODEL_TOKENS
from multiflow_gm.protein.model.network import CoDesignNetwork, ModelConfig
from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder

from tests.protein.model.test_network import TINY, _inputs


def _decoder(**kwargs):
    torch.manual_seed(0)
    decoder = SequenceDecoder(c_s=8, hidden=16, num_layers=2, knn=5, **kwargs).double()
    torch.nn.init.normal_(decoder.out.weight, std=0.3)  # the zero start would make every check trivial
    torch.nn.init.normal_(decoder.context.weight, std=0.3)
    return decoder.eval()


def _backbone(b=2, l=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, l, dtype=torch.bool)
    if b > 1:
        mask[1, -4:] = False
    return dict(aatype=torch.randint(0, NUM_MODEL_TOKENS, (b, l), generator=g),
                rotations=so3.uniform((b, l), dtype=torch.float64, generator=g),
                translations_nm=torch.cumsum(torch.randn(b, l, 3, dtype=torch.float64, generator=g) * 0.22, 1),
                t_struct=torch.rand(b, dtype=torch.float64, generator=g),
                residue_index=torch.arange(l).expand(b, l), residue_mask=mask,
                context=torch.randn(b, l, 8, dtype=torch.float64, generator=g))


def test_logits_are_invariant_to_rigid_motions():
    decoder, inputs = _decoder(), _backbone()
    g = so3.exp(torch.tensor([1.1, -0.4, 2.5], dtype=torch.float64))
    moved = dict(inputs, rotations=g @ inputs["rotations"],
                 translations_nm=inputs["translations_nm"] @ g.T + torch.tensor([2.0, -3.0, 0.7], dtype=torch.float64))
    with torch.no_grad():
        a, b = decoder(**inputs), decoder(**moved)
    mask = inputs["residue_mask"]
    assert a[mask].abs().max() > 1e-2
    assert torch.allclose(a[mask], b[mask], atol=1e-8)


def test_factorised_edge_input_is_the_concatenated_linear():
    """Splitting the first edge linear into its h_i, e_ij and h_j blocks computes exactly
    layer(cat([h_i, e_ij, h_j])), gradients included."""
    from multiflow_gm.protein.model.embeddings import gather_neighbours
    from multiflow_gm.protein.model.sequence_decoder import MessageLayer

    torch.manual_seed(1)
    layer = MessageLayer(hidden=6, scale=4.0).double()
    h = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    e = torch.randn(2, 7, 4, 6, dtype=torch.float64, requires_grad=True)
    neighbours = torch.randint(0, 7, (2, 7, 4))
    for mlp in (layer.message, layer.edge_update):
        expected = mlp(torch.cat([h[:, :, None].expand(-1, -1, 4, -1), e, gather_neighbours(h, neighbours)], -1))
        actual = layer._edge_mlp(mlp, h, e, neighbours)
        assert torch.allclose(actual, expected, atol=1e-12)
        grads = torch.autograd.grad(actual.sin().sum(), (h, e, mlp[0].weight))
        expected_grads = torch.autograd.grad(expected.sin().sum(), (h, e, mlp[0].weight))
        for a, b in zip(grads, expected_grads):
            assert torch.allclose(a, b, atol=1e-10)


def test_padding_does_not_change_valid_residues():
    decoder, inputs = _decoder(), _backbone(b=1, l=9)
    padded = {k: (torch.cat([v, v[:, :3]], 1) if torch.is_tensor(v) and v.dim() > 1 else v) for k, v in inputs.items()}
    padded["residue_mask"] = torch.cat([inputs["residue_mask"], torch.zeros(1, 3, dtype=torch.bool)], 1)
    with torch.no_grad():
        a, b = decoder(**inputs), decoder(**padded)
    assert torch.allclose(a, b[:, :9], atol=1e-10)


def test_every_parameter_but_the_last_edge_update_shapes_the_logits():
    """The last layer's edges are never read, so its edge update is skipped (no gradient reaches
    it) and every other parameter gets one."""
    decoder, inputs = _decoder(), _backbone()
    decoder(**inputs)[inputs["residue_mask"]].square().sum().backward()
    skipped = {name for name, p in decoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}
    last = len(decoder.layers) - 1
    assert skipped == {n for n, _ in decoder.named_parameters() if n.startswith(f"layers.{last}.edge_")}


def test_network_with_a_fresh_decoder_is_the_trained_function():
    """Added to a trained network, the zero-initialised decoder changes nothing at first."""
    torch.manual_seed(2)
    plain = CoDesignNetwork(ModelConfig(**TINY)).double().eval()
    extended = CoDesignNetwork(ModelConfig(**TINY, sequence_decoder=True, decoder_hidden=16, decoder_layers=1,
                                           decoder_knn=4)).double().eval()
    missing, unexpected = extended.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("sequence_decoder.") for k in missing) and not unexpected
    inputs = _inputs(b=2, l=9)
    with torch.no_grad():
        a, b = plain(**inputs), extended(**inputs)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-12)


def test_network_with_decoder_keeps_se3_equivariance():
    torch.manual_seed(0)
    net = CoDesignNetwork(ModelConfig(**TINY, sequence_decoder=True, decoder_hidden=16, decoder_layers=1,
                                      decoder_knn=4)).double()
    for block in net.blocks:
        torch.nn.init.normal_(block.backbone_update.weight, std=0.1)
    torch.nn.init.normal_(net.sequence_decoder.out.weight, std=0.3)
    net.eval()
    inputs = _inputs()
    g = so3.exp(torch.tensor([0.4, -1.3, 2.2], dtype=torch.float64))
    shift = torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64)
    moved = dict(inputs, rotations=g @ inputs["rotations"], translations=inputs["translations"] @ g.T + shift,
                 sc_translations=inputs["sc_translations"] @ g.T + shift)
    with torch.no_grad():
        out, out_moved = net(**inputs), net(**moved)
    mask = inputs["residue_mask"]
    assert torch.allclose(out_moved["logits"][mask], out["logits"][mask], atol=1e-4)
    assert torch.allclose(out_moved["translations"][mask], (out["translations"] @ g.T + shift)[mask], atol=1e-4)


def test_decoder_reads_the_given_backbone_where_the_structure_is_given():
    """At t_struct = 1 (inverse folding) the decoder sees the input frames; below it, the trunk's prediction."""
    torch.manual_seed(0)
    net = CoDesignNetwork(ModelConfig(**TINY, sequence_decoder=True, decoder_hidden=16, decoder_layers=1,
                                      decoder_knn=4)).double().eval()
    for block in net.blocks:
        torch.nn.init.normal_(block.backbone_update.weight, std=0.1)  # the trunk moves the frames
    seen = {}
    net.sequence_decoder.register_forward_pre_hook(lambda module, args: seen.update(frames=args[1:3]))
    inputs = dict(_inputs(), t_struct=torch.tensor([1.0, 0.6], dtype=torch.float64))
    with torch.no_grad():
        out = net(**inputs)
    rotations, translations = seen["frames"]
    assert torch.equal(rotations[0], inputs["rotations"][0]) and torch.equal(translations[0], inputs["translations"][0])
    assert torch.equal(rotations[1], out["rotations"][1]) and torch.equal(translations[1], out["translations"][1])
    assert not torch.allclose(out["translations"][0], inputs["translations"][0])


def test_decoder_learns_a_residue_type_written_in_the_geometry():
    """A rule only the backbone shows (residue type = the quartile of a residue's count of
    neighbours within 1 nm) is learned from the fully masked sequence, far beyond guessing."""
    torch.manual_seed(0)
    decoder = SequenceDecoder(c_s=1, hidden=32, num_layers=2, knn=8)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)

    def batch():
        ca = torch.cumsum(torch.randn(8, 24, 3, generator=g) * 0.2, 1)
        rotations = so3.uniform((8, 24), generator=g)
        count = (torch.cdist(ca, ca) < 1.0).sum(-1).float()
        return ca, rotations, torch.bucketize(count, torch.tensor([13.5, 17.5, 21.5]))

    for _ in range(300):
        ca, rotations, target = batch()
        logits = decoder(torch.full_like(target, MASK), rotations, ca, torch.ones(8), torch.arange(24).expand(8, 24),
                         torch.ones(8, 24, dtype=torch.bool))
        loss = torch.nn.functional.cross_entropy(logits[..., :NUM_AMINO_ACIDS].reshape(-1, NUM_AMINO_ACIDS),
                                                 target.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    ca, rotations, target = batch()
    with torch.no_grad():
        logits = decoder(torch.full_like(target, MASK), rotations, ca, torch.ones(8), torch.arange(24).expand(8, 24),
                         torch.ones(8, 24, dtype=torch.bool))
    accuracy = (logits[..., :NUM_AMINO_ACIDS].argmax(-1) == target).float().mean()
    majority = torch.bincount(target.reshape(-1)).max() / target.numel()
    assert accuracy > max(0.6, float(majority) + 0.15)


def test_decoder_init_from_needs_the_decoder():
    from multiflow_gm.training.protein.config import TrainConfig

    with pytest.raises(ValueError, match="model.sequence_decoder"):
        TrainConfig(decoder_init_from="decoder.safetensors")


def _atoms_from_frames(inputs, successor):
    from multiflow_gm.protein.geometry import backbone_from_frames

    atoms = backbone_from_frames(inputs["rotations"], inputs["translations_nm"] * 10.0, successor=successor) / 10.0
    return atoms[..., [0, 1, 2, 4, 3], :]  # N, CA, C, CB, O


def test_oxygen_distances_are_those_of_the_built_atoms_and_respect_numbering_gaps():
    """The 25 distances are the 16 frame-atom ones, then O_i to every atom of j, then every atom of i
    to O_j; a residue whose successor is numbered with a gap gets its O from the terminal psi."""
    from multiflow_gm.protein.model.embeddings import (backbone_pair_distances, backbone_pair_distances_with_oxygen,
                                                       carbonyl_oxygens, gather_neighbours, select_neighbours)

    inputs = _backbone(b=1, l=10)
    index = torch.tensor([[0, 1, 2, 3, 4, 9, 10, 11, 12, 13]])
    neighbours = select_neighbours(inputs["translations_nm"], inputs["residue_mask"], 6, sequence_window=0)
    distances = backbone_pair_distances_with_oxygen(inputs["rotations"], inputs["translations_nm"], neighbours,
                                                    index, inputs["residue_mask"])
    successor = torch.tensor([[True] * 4 + [False] + [True] * 4 + [False]])
    atoms = _atoms_from_frames(inputs, successor)                                                    # [1, L, 5, 3]
    atoms_j = gather_neighbours(atoms.flatten(-2), neighbours).unflatten(-1, (5, 3))
    full = (atoms[:, :, None, :, None] - atoms_j[..., None, :, :]).norm(dim=-1)                      # [1, L, K, 5, 5]
    expected = torch.cat([full[..., :4, :4].flatten(-2), full[..., 4, :], full[..., :4, 4]], -1)
    assert torch.allclose(distances, expected, atol=1e-10)
    assert torch.allclose(distances[..., :16], backbone_pair_distances(inputs["rotations"], inputs["translations_nm"],
                                                                       neighbours), atol=1e-10)
    oxygen = carbonyl_oxygens(inputs["rotations"], inputs["translations_nm"], index, inputs["residue_mask"])
    contiguous = carbonyl_oxygens(inputs["rotations"], inputs["translations_nm"], torch.arange(10)[None],
                                  inputs["residue_mask"])
    assert torch.allclose(oxygen[0, 4], _atoms_from_frames(inputs, torch.zeros(1, 10, dtype=torch.bool))[0, 4, 4])
    assert not torch.allclose(oxygen[0, 4], contiguous[0, 4], atol=1e-3)  # the gap moved residue 4's O
    assert torch.allclose(oxygen[0, :4], contiguous[0, :4]) and torch.allclose(oxygen[0, 5:9], contiguous[0, 5:9])


def test_decoder_with_oxygen_is_invariant_and_ignores_padding():
    decoder, inputs = _decoder(oxygen=True), _backbone()
    g = so3.exp(torch.tensor([-0.7, 1.9, 0.3], dtype=torch.float64))
    moved = dict(inputs, rotations=g @ inputs["rotations"],
                 translations_nm=inputs["translations_nm"] @ g.T + torch.tensor([1.0, 0.5, -2.0], dtype=torch.float64))
    with torch.no_grad():
        a, b = decoder(**inputs), decoder(**moved)
    mask = inputs["residue_mask"]
    assert torch.allclose(a[mask], b[mask], atol=1e-8)
    single = {k: (v[1:] if torch.is_tensor(v) else v) for k, v in inputs.items()}
    trimmed = {k: (v[:, :8] if torch.is_tensor(v) and v.dim() > 1 else v) for k, v in single.items()}
    with torch.no_grad():  # the second chain's last 4 residues are padding: its last real residue has no successor
        assert torch.allclose(a[1, :8], decoder(**trimmed)[0], atol=1e-10)


def test_a_grown_decoder_starts_from_the_smaller_ones_function():
    """Zero-started O columns leave the function exactly as it was; added layers start with zero
    message, feed-forward and edge-update outputs; any other mismatch is refused."""
    from multiflow_gm.protein.model.sequence_decoder import load_grown

    small, inputs = _decoder(), _backbone()
    with_oxygen = SequenceDecoder(c_s=8, hidden=16, num_layers=2, knn=5, oxygen=True).double().eval()
    assert load_grown(with_oxygen, small.state_dict()) == ["edge input: 256 -> 400 features (new ones start at zero)"]
    with torch.no_grad():
        assert torch.allclose(with_oxygen(**inputs), small(**inputs), atol=1e-12)
    deeper = SequenceDecoder(c_s=8, hidden=16, num_layers=4, knn=5).double().eval()
    assert load_grown(deeper, small.state_dict()) == ["layers: 2 -> 4 (new ones start with zero outputs)"]
    for layer in deeper.layers[2:]:
        for last in (layer.message[-1], layer.feed_forward[-1], layer.edge_update[-1]):
            assert not last.weight.any() and not last.bias.any()
    assert torch.equal(deeper.layers[1].message[0].weight, small.layers[1].message[0].weight)
    with pytest.raises(ValueError, match="cannot grow"):
        load_grown(SequenceDecoder(c_s=8, hidden=32, num_layers=2, knn=5), small.state_dict())
    with pytest.raises(ValueError, match="does not have"):
        load_grown(SequenceDecoder(c_s=8, hidden=16, num_layers=1, knn=5), small.state_dict())
