"""End to end: simulating an exact marginal generator from the prior reproduces the target.

Each case also runs a wrong generator (sign-flipped velocity, zero or scaled
jump intensity, rates without the 1/(1-t) factor, a product that ignores the
other modality) that must fail the same threshold. Targets are finite sets of
atoms (drawn once from Gaussian mixtures, a correlated categorical law, a few
rotations), for which the marginal generator is exact (core.marginal).
"""


import pytest
import torch

from multiflow_gm.core import (Component, CondOTPath, CTMCStep, DiffusionStep, FlowStep,
                               GeodesicSO3Path, IsotropicSO3Path, JumpParams, JumpStep,
                               MixtureTokenPath, SO3Space, simulate, so3, time_grid)
from multiflow_gm.core.marginal import AtomicTarget
from multiflow_gm.core.statistics import energy_distance, sequence_histogram, total_variation

F64 = torch.float64
N = 1500


def _gmm_atoms(dim, k, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]], dtype=F64)[:, :dim]
    comp = torch.multinomial(torch.tensor([0.5, 0.3, 0.2]), k, replacement=True, generator=g)
    return centres[comp] + 0.35 * torch.randn(k, dim, dtype=F64, generator=g)


def _run(target, components, fn, grid, n=N, seed=1, method="euler", init=None):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x0 = init(n, g)
    return simulate(fn, x0, components, grid, method=method, generator=g).state


def _gaussian_init(dim):
    return lambda n, g: {"x": torch.randn(n, dim, dtype=F64, generator=g)}


def _euclid_case(kind, target, wrong=False):
    """Component spec and generator_fn for a continuous case on component 'x'."""
    g_t = lambda t: 0.8 * torch.sqrt(1 - torch.as_tensor(t))  # noqa: E731
    sign = -1.0 if wrong else 1.0
    if kind == "flow":
        comp = Component({"flow": FlowStep()})
        fn = lambda x, t: {"x": {"flow": sign * target.velocity("x", x, t)}}  # noqa: E731
    elif kind == "diffusion":
        comp = Component({"diffusion": DiffusionStep(g_t)})
        fn = lambda x, t: {"x": {"diffusion": sign * target.diffusion_drift("x", x, t, g_t)}}  # noqa: E731
    elif kind == "jump":
        comp = Component({"jump": JumpStep()})

        def fn(x, t):
            p = target.jump("x", x, t)
            return {"x": {"jump": JumpParams(p.intensity * (0.0 if wrong else 1.0), p.landing)}}
    else:
        alpha = {"superposition": lambda t: 0.5, "superposition_tdep": lambda t: 1 - t}[kind]
        comp = Component({"flow": FlowStep(), "jump": JumpStep()},
                         {"flow": alpha, "jump": lambda t: 1 - alpha(t)})

        def fn(x, t):
            p = target.jump("x", x, t)
            scale = 0.3 if wrong else 1.0
            return {"x": {"flow": target.velocity("x", x, t) * scale,
                          "jump": JumpParams(p.intensity * scale, p.landing)}}
    return {"x": comp}, fn


CONTINUOUS = [("flow", 50, "euler"), ("flow", 25, "heun"), ("diffusion", 120, "euler"),
              ("jump", 120, "euler"), ("superposition", 120, "euler"),
              ("superposition_tdep", 120, "euler")]


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("kind,steps,method", CONTINUOUS, ids=[f"{k}-{m}" for k, _, m in CONTINUOUS])
def test_gaussian_mixture_is_reproduced(dim, kind, steps, method):
    atoms = _gmm_atoms(dim, 150, seed=dim)
    target = AtomicTarget({"x": atoms}, torch.full((150,), 1 / 150, dtype=F64), {"x": CondOTPath()})
    reference = target.sample(N, torch.Generator().manual_seed(7))["x"]
    threshold = 0.02
    for wrong in (False, True):
        comps, fn = _euclid_case(kind, target, wrong)
        out = _run(target, comps, fn, time_grid(steps), method=method, init=_gaussian_init(dim))["x"]
        stat = energy_distance(out, reference)
        if wrong:
            assert stat > threshold, f"wrong {kind} generator passed ({stat:.4f})"
        else:
            assert stat < threshold, f"{kind} energy distance {stat:.4f}"


def _correlated_tokens(seed=0):
    """All 27 sequences of length 3 over 3 tokens, mass concentrated on 'all equal' ones."""
    g = torch.Generator().manual_seed(seed)
    seqs = torch.cartesian_prod(*[torch.arange(3)] * 3)
    weights = torch.rand(27, generator=g, dtype=F64) * 0.2
    same = (seqs == seqs[:, :1]).all(-1)
    weights[same] += torch.tensor([3.0, 2.0, 1.0], dtype=F64)
    return seqs, weights / weights.sum()


TOKEN_CASES = [("mask", 0.0, "euler"), ("mask", 2.0, "euler"), ("mask", 0.0, "tau_leaping"),
               ("uniform", 0.0, "euler"), ("uniform", 2.0, "euler")]


@pytest.mark.parametrize("noise,eta,method", TOKEN_CASES, ids=[f"{n}-eta{e}-{m}" for n, e, m in TOKEN_CASES])
def test_categorical_target_is_reproduced(noise, eta, method):
    seqs, probs = _correlated_tokens()
    path = MixtureTokenPath(3, noise)
    target = AtomicTarget({"s": seqs}, probs, {"s": path})
    n = 20000
    comps = {"s": Component({"ctmc": CTMCStep(method=method, mask_index=path.mask_index)})}
    init = lambda n_, g: {"s": path.prior((n_, 3), generator=g)}  # noqa: E731
    ref_hist = probs * n
    threshold = 0.03
    for wrong in (False, True):
        def fn(x, t):
            rates = target.rates("s", x, t, eta=eta)
            # Without the 1/(1 - kappa) factor the chain moves too late and too many
            # positions are drawn independently at once.
            return {"s": {"ctmc": rates * (1 - t["s"]) if wrong else rates}}
        out = _run(target, comps, fn, time_grid(80), n=n, init=init)["s"]
        if path.mask_index is not None:
            assert not (out == path.mask_index).any(), "mask token left after the last step"
        tv = total_variation(sequence_histogram(out, 3), ref_hist)
        assert (tv > threshold) if wrong else (tv < threshold), f"wrong={wrong} TV {tv:.4f}"


def test_product_with_separate_times_is_reproduced():
    """R^2 x tokens; the sequence runs on t_seq = t^2 while the points run on t."""
    g = torch.Generator().manual_seed(3)
    k = 160
    seq_atoms = torch.randint(0, 3, (k, 2), generator=g)
    centres = torch.tensor([[-2.0, -2.0], [0.0, 2.0], [2.5, -1.0]], dtype=F64)
    x_atoms = centres[seq_atoms[:, 0]] + 0.4 * torch.randn(k, 2, dtype=F64, generator=g)
    x_atoms[:, 1] += 0.8 * seq_atoms[:, 1]
    tokens = MixtureTokenPath(3, "mask")
    target = AtomicTarget({"x": x_atoms, "s": seq_atoms}, torch.full((k,), 1 / k, dtype=F64),
                          {"x": CondOTPath(), "s": tokens})
    grid_x = time_grid(80)
    grids = {"x": grid_x, "s": grid_x ** 2}
    comps = {"x": Component({"flow": FlowStep()}), "s": Component({"ctmc": CTMCStep(mask_index=3)})}
    init = lambda n, g_: {"x": torch.randn(n, 2, dtype=F64, generator=g_),  # noqa: E731
                          "s": tokens.prior((n, 2))}
    ref = target.sample(3000, torch.Generator().manual_seed(11))

    def joint_stat(out):
        # Energy distance on (x, one-hot tokens scaled up) is sensitive to the coupling.
        emb = lambda d: torch.cat([d["x"], 3.0 * torch.nn.functional.one_hot(d["s"], 3).flatten(1).to(F64)], 1)  # noqa: E731
        return energy_distance(emb(out), emb(ref))

    def exact(x, t):
        w = target.posterior(x, t)
        return {"x": {"flow": target.velocity("x", x, t, w)}, "s": {"ctmc": target.rates("s", x, t, weights=w)}}

    def factorised(x, t):
        # Wrong: each modality conditioned only on itself.
        wx = torch.softmax(target.paths["x"].atom_log_likelihood(x["x"], x_atoms, t["x"]), -1)
        ws = torch.softmax(tokens.atom_log_likelihood(x["s"], seq_atoms, t["s"]).clamp_min(-1e300), -1)
        return {"x": {"flow": target.velocity("x", x, t, wx)}, "s": {"ctmc": target.rates("s", x, t, weights=ws)}}

    good = _run(target, comps, exact, grids, n=3000, init=init)
    bad = _run(target, comps, factorised, grids, n=3000, init=init)
    assert not (good["s"] == 3).any()
    assert joint_stat(good) < 0.05, joint_stat(good)
    assert joint_stat(bad) > 0.05, joint_stat(bad)


ROTATION_PROBS = torch.tensor([0.5, 0.3, 0.2], dtype=F64)


def _rotation_atoms():
    return so3.exp(torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.5, -1.0], [-0.4, 2.5, 0.8]], dtype=F64))


def _rotation_stat(out, reference):
    return energy_distance(out.flatten(1), reference.flatten(1))


@pytest.mark.parametrize("wrong", [False, True])
def test_rotations_geodesic_flow(wrong):
    atoms = _rotation_atoms()
    target = AtomicTarget({"r": atoms}, ROTATION_PROBS, {"r": GeodesicSO3Path()})
    comps = {"r": Component({"flow": FlowStep(SO3Space())})}
    fn = lambda x, t: {"r": {"flow": (-1.0 if wrong else 1.0) * target.velocity("r", x, t)}}  # noqa: E731
    init = lambda n, g: {"r": so3.uniform((n,), dtype=F64, generator=g)}  # noqa: E731
    # The support of p_t(.|z) shrinks with the flow; Euler steps strand the few
    # particles that ride its boundary, about 1% at 200 steps (0.4% at 600).
    out = _run(target, comps, fn, time_grid(200), init=init)["r"]
    dist = so3.distance(out[:, None], atoms[None])
    nearest = dist.argmin(1)
    tv = total_variation(torch.bincount(nearest, minlength=3), ROTATION_PROBS)
    if wrong:
        assert tv > 0.05 or dist.min(1).values.mean() > 0.05
    else:
        converged = (dist.min(1).values < 0.05).double().mean()
        assert tv < 0.04 and converged > 0.985, (tv, converged)


ISO_CASES = ["flow", "jump", "superposition"]


@pytest.mark.parametrize("kind", ISO_CASES)
def test_rotations_isotropic_path(kind):
    atoms = _rotation_atoms()
    path = IsotropicSO3Path(kappa_max=40.0)
    target = AtomicTarget({"r": atoms}, ROTATION_PROBS, {"r": path})
    g = torch.Generator().manual_seed(5)
    idx = torch.multinomial(ROTATION_PROBS, N, replacement=True, generator=g)
    reference = path.sample(atoms[idx], 1.0, generator=g)
    dyn = {"flow": FlowStep(SO3Space()), "jump": JumpStep()}
    kinds = ["flow", "jump"] if kind == "superposition" else [kind]
    comp = Component({k: dyn[k] for k in kinds}, {k: 1 / len(kinds) for k in kinds})
    init = lambda n, g_: {"r": so3.uniform((n,), dtype=F64, generator=g_)}  # noqa: E731
    threshold = 0.02
    for wrong in (False, True):
        def fn(x, t):
            out = {}
            if "flow" in kinds:
                out["flow"] = target.velocity("r", x, t) * (-1.0 if wrong else 1.0)
            if "jump" in kinds:
                p = target.jump("r", x, t)
                out["jump"] = JumpParams(p.intensity * (0.0 if wrong else 1.0), p.landing)
            return {"r": out}
        out = _run(target, {"r": comp}, fn, time_grid(100), init=init)["r"]
        stat = _rotation_stat(out, reference)
        assert (stat > threshold) if wrong else (stat < threshold), f"{kind} wrong={wrong}: {stat:.4f}"
