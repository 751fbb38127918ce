"""SO(3) flow, jump and their superposition through the protein sampler, against exact laws.

With one clean protein as the data distribution the posterior of the clean frames given
any noisy state is a point mass, so a network that always predicts that protein (with the
path's own jump intensity) is the exact marginal oracle. Driving it through
``sample_batch`` must then reproduce the path's angle law ``p_t(theta | r_1)`` at every
time, for flow, jump and flow + jump; a sampler on the wrong concentration schedule must not.
"""

from __future__ import annotations

import math
import types

import pytest
import torch

from multiflow_gm.core import IsotropicSO3Path, so3
from multiflow_gm.core.landing import PredictionLanding
from multiflow_gm.core.paths.so3_isotropic import log_normaliser
from multiflow_gm.protein.alphabet import NUM_MODEL_TOKENS
from multiflow_gm.protein.coordinates import center_positions as centre
from multiflow_gm.protein.process import CoDesignProcess, ProcessConfig
from multiflow_gm.protein.sampling import SamplingConfig, sample_batch

F64 = dict(dtype=torch.float64)
KAPPA = 200.0


def _angle_cdf(values: torch.Tensor, density, upper: float) -> torch.Tensor:
    """CDF of a tabulated angle density on [0, upper], read at ``values``."""
    grid = torch.linspace(0, upper, 20001, **F64)
    cdf = torch.cumulative_trapezoid(density(grid), grid)
    cdf = torch.cat([torch.zeros(1, **F64), cdf / cdf[-1]])
    idx = torch.searchsorted(grid, values.clamp(0, upper)).clamp(1, grid.numel() - 1)
    lo, hi = grid[idx - 1], grid[idx]
    frac = (values - lo) / (hi - lo)
    return cdf[idx - 1] + frac * (cdf[idx] - cdf[idx - 1])


def _ks(values: torch.Tensor, density, upper: float) -> float:
    """One-sample Kolmogorov-Smirnov statistic of ``values`` against the tabulated law."""
    x = values.double().sort().values
    cdf = _angle_cdf(x, density, upper)
    n = x.numel()
    ranks = torch.arange(1, n + 1, **F64)
    return float(torch.maximum(ranks / n - cdf, cdf - (ranks - 1) / n).max())


def _marginal_density(path: IsotropicSO3Path, t: float):
    kappa, _ = path.kappa(t, torch.eye(3, **F64))
    return lambda th: torch.exp(2 * kappa * (torch.cos(th) - 1) - log_normaliser(kappa)) * (1 - torch.cos(th))


# -- landing resolution ---------------------------------------------------------------------------
def _nearest_grid_landing(current, landing, grid):
    """The retired head's landing: snap ``current^T landing`` to the nearest grid rotation."""
    q = so3.matrix_to_quaternion(current.transpose(-1, -2) @ landing)
    idx = (q @ so3.matrix_to_quaternion(grid.to(q.dtype)).T).abs().argmax(-1)
    return current @ grid[idx].to(current.dtype)


@pytest.mark.parametrize("t", [0.1, 0.3, 0.6, 0.8, 0.95])
def test_head_landing_reproduces_the_exact_landing_law(t):
    path = IsotropicSO3Path(kappa_max=KAPPA)
    g = torch.Generator().manual_seed(int(t * 100))
    n = 20000
    r1 = so3.uniform((n,), generator=g, **F64)
    landing = PredictionLanding(path, r1, t).sample_at(torch.ones(n, dtype=torch.bool), generator=g)
    kappa, _ = path.kappa(t, torch.eye(3, **F64))
    upper = float(path.landing_cutoff(kappa))

    def density(th):
        return path.landing_angle_density(th, kappa)

    assert _ks(so3.distance(r1, landing), density, upper) < 0.015
    # Control: snapping the same exact landings to 1,024 uniform relative rotations (the grid
    # the head used before) from a frame 1 rad away leaves them about 0.25 rad from r1.
    current = r1 @ so3.exp(torch.tensor([1.0, 0.0, 0.0], **F64))
    exact = path.sample_landing(r1, t, generator=g)
    snapped = _nearest_grid_landing(current, exact, so3.super_fibonacci_grid(1024, **F64))
    assert _ks(so3.distance(r1, snapped), density, upper) > 0.08


# -- the protein sampler end to end ----------------------------------------------------------------
class OracleNetwork(torch.nn.Module):
    """Predicts one fixed protein and the path's exact jump intensity; records the angles it sees."""

    def __init__(self, protein: dict, path: IsotropicSO3Path):
        super().__init__()
        self.protein, self.path = protein, path
        self.cfg = types.SimpleNamespace(so3_jump_head=True)
        self.angles: dict[float, torch.Tensor] = {}

    def forward(self, aatype, rotations, translations, t_struct, **_):
        b = aatype.shape[0]
        r1 = self.protein["rotations"].to(rotations.dtype).expand(b, -1, -1, -1)
        t = float(t_struct[0])
        self.angles[round(t, 4)] = so3.distance(r1, rotations).double().flatten()
        logits = torch.nn.functional.one_hot(self.protein["aatype"], NUM_MODEL_TOKENS).float() * 30.0
        return {"rotations": r1, "translations": self.protein["translations"].expand(b, -1, -1),
                "logits": logits.expand(b, -1, -1),
                "jump_intensity": self.path.jump_intensity(rotations, r1, t_struct[0])}


def _proteins():
    g = torch.Generator().manual_seed(11)
    for length in (8, 12):
        mask = torch.ones(1, length, dtype=torch.bool)
        yield {"rotations": so3.uniform((length,), generator=g),
               "translations": centre(torch.randn(1, length, 3, generator=g), mask)[0],
               "aatype": torch.randint(0, 20, (length,), generator=g)}


def _sampled_angles(kind: str, sampler_kappa: float, source: str = "head",
                    steps: int = 400) -> dict[float, torch.Tensor]:
    weight = {"flow": 0.0, "jump": 1.0, "flow+jump": 0.5}[kind]
    process = CoDesignProcess(ProcessConfig(rotation_path="isotropic", isotropic_kappa_max=sampler_kappa,
                                            so3_jump=True))
    # Euler flow steps on SO(3) are first order: 400 steps bring the law within sampling noise.
    cfg = SamplingConfig(num_steps=steps, so3_jump_weight=weight, so3_jump_source=source)
    pooled: dict[float, list] = {}
    for i, protein in enumerate(_proteins()):
        net = OracleNetwork(protein, process.rotations)
        sample_batch(net, process, cfg, 64, protein["aatype"].numel(), generator=torch.Generator().manual_seed(i))
        for t, angles in net.angles.items():
            pooled.setdefault(t, []).append(angles)
    return {t: torch.cat(v) for t, v in pooled.items()}


CHECK_TIMES = (0.3, 0.6, 0.9)


def _worst_ks(angles: dict[float, torch.Tensor], path: IsotropicSO3Path) -> float:
    worst = 0.0
    for target in CHECK_TIMES:
        t = min(angles, key=lambda s: abs(s - target))
        worst = max(worst, _ks(angles[t], _marginal_density(path, t), math.pi))
    return worst


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flow", "jump", "flow+jump"])
def test_protein_sampler_reproduces_the_isotropic_marginals(kind):
    reference = IsotropicSO3Path(kappa_max=KAPPA)
    assert _worst_ks(_sampled_angles(kind, KAPPA), reference) < 0.06
    # Control: the same sampler on a concentration schedule with half the final kappa.
    assert _worst_ks(_sampled_angles(kind, KAPPA / 2, steps=100), reference) > 0.12


@pytest.mark.slow
def test_plugin_jump_equals_the_head_for_the_exact_oracle():
    reference = IsotropicSO3Path(kappa_max=KAPPA)
    assert _worst_ks(_sampled_angles("jump", KAPPA, source="plugin"), reference) < 0.06


def test_a_jump_weight_the_model_cannot_honour_is_refused():
    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.sampling import check_jump_support

    headless = types.SimpleNamespace(cfg=types.SimpleNamespace(so3_jump_head=False))
    geodesic = CoDesignProcess(ProcessConfig())
    isotropic = CoDesignProcess(ProcessConfig(rotation_path="isotropic"))
    with pytest.raises(UserError, match="isotropic"):
        check_jump_support(headless, geodesic, SamplingConfig(so3_jump_weight=0.3, so3_jump_source="plugin"))
    with pytest.raises(UserError, match="jump head"):
        check_jump_support(headless, isotropic, SamplingConfig(so3_jump_weight=0.3))
    check_jump_support(headless, isotropic, SamplingConfig(so3_jump_weight=0.3, so3_jump_source="plugin"))
    check_jump_support(headless, geodesic, SamplingConfig(so3_jump_weight=0.0))
