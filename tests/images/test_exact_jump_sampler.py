"""The image samplers driven by the exact binned marginal generator (no network) reproduce
a 1-D Gaussian mixture; a wrong generator fails the same check.

The oracle below has the jump head's interface (intensity and bin log-probabilities
over [-1, 1]) and computes them exactly for a target of atoms: the marginal intensity
is ``sum_k p(z_k | x) lambda^k(x)`` and the binned landing law the mixture of the atoms'
exact bin masses weighted by ``p(z_k | x) lambda^k(x)`` (the conditional-to-marginal identity).
"""

import pytest
import torch
from scipy.stats import wasserstein_distance

from multiflow_gm.core import CondOTPath
from multiflow_gm.core.marginal import AtomicTarget
from multiflow_gm.images.heads import HeadOutput, bin_edges
from multiflow_gm.images.sampling import MODELS, sample_images

F64 = torch.float64
WEIGHTS = (0.35, 0.65)
MEANS = (-0.45, 0.4)
STDS = (0.08, 0.12)


def _mixture(n, seed):
    g = torch.Generator().manual_seed(seed)
    comp = torch.multinomial(torch.tensor(WEIGHTS), n, replacement=True, generator=g)
    return torch.tensor(MEANS, dtype=F64)[comp] + torch.tensor(STDS, dtype=F64)[comp] * torch.randn(
        n, dtype=F64, generator=g)


class ExactOracle(torch.nn.Module):
    """Exact marginal flow / binned jump heads for 1-pixel 'images' ``[N, 1, 1, 1]``."""

    def __init__(self, atoms, kinds, bins=64, intensity_scale=1.0):
        super().__init__()
        self.path = CondOTPath()
        self.target = AtomicTarget({"x": atoms[:, None]}, torch.full((len(atoms),), 1.0 / len(atoms), dtype=F64),
                                   {"x": self.path})
        self.kinds, self.bins, self.image_shape = kinds, bins, (1, 1, 1)
        self.intensity_scale = intensity_scale
        self.register_buffer("edges", bin_edges(bins, dtype=F64), persistent=False)

    def forward(self, x, t):
        n, tt = x.shape[0], float(t[0])
        state = {"x": x.reshape(n, 1).to(F64)}
        post = self.target.posterior(state, {"x": tt})                                    # [N, K]
        out = HeadOutput()
        if "flow" in self.kinds:
            out.velocity = self.target.velocity("x", state, {"x": tt}, weights=post).reshape(n, 1, 1, 1)
        if "jump" in self.kinds:
            atoms = self.target.atoms["x"][:, 0]                                          # [K]
            lam = self.path.jump_intensity(state["x"].expand(n, len(atoms)), atoms[None].expand(n, -1), tt)
            masses = self.path.jump_kernel(atoms, tt).bin_masses(self.edges)              # [K, B]
            mix = post * lam                                                              # [N, K]
            intensity = mix.sum(1)
            probs = (mix @ masses) / intensity.clamp_min(1e-300)[:, None]
            # Where no atom wants to jump the landing law is irrelevant; keep it a distribution.
            probs = torch.where(intensity[:, None] > 0, probs, torch.full_like(probs, 1.0 / self.bins))
            out.intensity = (self.intensity_scale * intensity).reshape(n, 1, 1, 1)
            out.log_probs = torch.log(probs.clamp_min(1e-300)).reshape(n, 1, 1, 1, self.bins)
        return out


@pytest.fixture(scope="module")
def atoms():
    return _mixture(200, seed=0).clamp(-0.98, 0.98)


def _check(samples, reference):
    flat = samples.reshape(-1).double()
    w1 = wasserstein_distance(flat.numpy(), reference.numpy())
    left = float((flat < 0).double().mean())
    return w1, left


@pytest.mark.parametrize("model,nfe", [("jump", 120), ("superposition", 80), ("mixed", 50)])
def test_exact_generator_reproduces_gaussian_mixture(atoms, model, nfe):
    spec = MODELS[model]
    oracle = ExactOracle(atoms, spec.kinds)
    result = sample_images(oracle, spec, 2000, nfe, alpha=0.5, batch_size=2000, seed=3)
    reference = _mixture(20000, seed=11)
    w1, left = _check(result.images, reference)
    # Sampling error of 2,000 draws and the bin width (2/64) are both ~0.01.
    assert w1 < 0.03, w1
    assert abs(left - WEIGHTS[0]) < 0.04, left
    assert result.images.abs().max() <= 1.0


def test_wrong_jump_intensity_fails_the_same_check(atoms):
    # 30% of the marginal intensity: too few jumps, so mass stays near the prior's spread.
    oracle = ExactOracle(atoms, ("jump",), intensity_scale=0.3)
    result = sample_images(oracle, MODELS["jump"], 2000, 120, batch_size=2000, seed=3)
    w1, _ = _check(result.images, _mixture(20000, seed=11))
    assert w1 > 0.03, w1


def test_heun_budget_counts_every_evaluation(atoms):
    oracle = ExactOracle(atoms, ("flow", "jump"))
    result = sample_images(oracle, MODELS["mixed"], 10, 20, batch_size=10)
    assert (result.steps, result.evaluations) == (10, 19)
    result = sample_images(oracle, MODELS["superposition"], 10, 20, batch_size=10)
    assert (result.steps, result.evaluations) == (20, 20)


@pytest.mark.parametrize("model,nfe", [("superposition-2net", 80), ("mixed-2net", 50)])
def test_two_networks_trained_apart_superpose_exactly(atoms, model, nfe):
    """A flow-only oracle and a jump-only oracle of the same path superpose at sampling time."""
    spec = MODELS[model]
    nets = {"flow": ExactOracle(atoms, ("flow",)), "jump": ExactOracle(atoms, ("jump",))}
    result = sample_images(nets, spec, 2000, nfe, alpha=0.5, batch_size=2000, seed=3)
    w1, left = _check(result.images, _mixture(20000, seed=11))
    assert w1 < 0.03, w1
    assert abs(left - WEIGHTS[0]) < 0.04, left
    assert result.network_calls == 2 * result.evaluations  # both networks run at every evaluation
    # Control: a jump network on another path's intensity breaks the superposition.
    nets["jump"] = ExactOracle(atoms, ("jump",), intensity_scale=0.3)
    wrong = sample_images(nets, spec, 2000, nfe, alpha=0.5, batch_size=2000, seed=3)
    assert _check(wrong.images, _mixture(20000, seed=11))[0] > 0.045


def test_a_network_without_the_kind_is_refused(atoms):
    nets = {"flow": ExactOracle(atoms, ("flow",)), "jump": ExactOracle(atoms, ("flow",))}
    with pytest.raises(ValueError, match="jump"):
        sample_images(nets, MODELS["superposition-2net"], 10, 10, batch_size=10)
