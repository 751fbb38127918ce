"""The conditional-path protocol, checked against the mathematics it stands for.

* a record's target is the time derivative of the conditional sample at fixed noise
  (central finite differences; body frame on SO(3));
* for tokens, the target rates carry the conditional probabilities forward in time
  (Kolmogorov forward equation);
* priors have their laws (standard normal, Haar, all-mask / uniform tokens);
* ``regression_time`` clips only where target minus estimate is a scalar rate of t
  times a time-free term;
* each path's clean-sample step moves by the path's own velocity / rates, and a jump path's
  jump parameters at a prediction are its closed-form jump there.
"""

import math

import pytest
import torch

from multiflow_gm.core import (AffineGaussianPath, CondOTPath, ConditionalPath, CosineScheduler, CTMCStep,
                               ExponentialRateScheduler, GeodesicSO3Path, IsotropicSO3Path, LinearScheduler,
                               MixtureTokenPath, PathSample, PolynomialScheduler, so3)

F64 = {"dtype": torch.float64}
H = 1e-5

CONTINUOUS = {
    "condot": CondOTPath(),
    "affine_cosine": AffineGaussianPath(CosineScheduler()),
    "affine_poly": AffineGaussianPath(PolynomialScheduler(2.0)),
    "geodesic": GeodesicSO3Path(),
    "geodesic_exp": GeodesicSO3Path(ExponentialRateScheduler(5.0)),
}


def _data(path, g):
    if path.event_dims == 2:
        return so3.uniform((6, 2), generator=g, **F64)
    return torch.randn(6, 2, 3, generator=g, **F64)


def _body_rate(path, a, b, h):
    """Finite-difference velocity of ``a -> b`` over ``h`` at ``a`` (tangent on SO(3), body frame)."""
    if path.event_dims == 2:
        return so3.log_map(a, b) / h
    return (b - a) / h


@pytest.mark.parametrize("path", CONTINUOUS.values(), ids=CONTINUOUS.keys())
def test_every_core_path_satisfies_the_protocol(path):
    assert isinstance(path, ConditionalPath)


@pytest.mark.parametrize("path", CONTINUOUS.values(), ids=CONTINUOUS.keys())
def test_target_is_the_time_derivative_of_the_coupled_sample(path):
    g = torch.Generator().manual_seed(0)
    x1 = _data(path, g)
    t = torch.tensor([0.1, 0.3, 0.45, 0.6, 0.75, 0.9], **F64)
    record = path.draw(x1, t, g)
    assert record.x0 is not None and record.x_t.shape == x1.shape
    later = path.draw(x1, t + H, x0=record.x0).x_t
    earlier = path.draw(x1, t - H, x0=record.x0).x_t
    central = 0.5 * (_body_rate(path, record.x_t, later, H) - _body_rate(path, record.x_t, earlier, H))
    torch.testing.assert_close(path.target(record, t), central, rtol=1e-6, atol=1e-6)


def test_isotropic_target_is_the_time_derivative_at_a_fixed_quantile_and_axis():
    """The radial flow keeps each rotation's angle quantile fixed: drawing with the same
    uniform and axis at t +- h and differencing gives the target."""
    path = IsotropicSO3Path(kappa_max=20.0, grid_size=4096)
    x1 = so3.uniform((400,), generator=torch.Generator().manual_seed(1), **F64)
    t, h = 0.6, 1e-3

    def at(time):
        return path.draw(x1, time, torch.Generator().manual_seed(2)).x_t

    record = path.draw(x1, t, torch.Generator().manual_seed(2))
    central = (so3.log_map(record.x_t, at(t + h)) - so3.log_map(record.x_t, at(t - h))) / (2 * h)
    target = path.target(record, t)
    # Away from the tabulated inverse CDF's coarse ends (first and last percent of the angle law).
    theta = so3.distance(x1, record.x_t)
    inner = (theta > theta.quantile(0.01)) & (theta < theta.quantile(0.99))
    torch.testing.assert_close(target[inner], central[inner], rtol=2e-2, atol=2e-3)


def test_isotropic_path_draws_around_x1_and_takes_no_x0():
    path = IsotropicSO3Path(kappa_max=20.0)
    x1 = so3.uniform((3,), generator=torch.Generator().manual_seed(0), **F64)
    assert path.draw(x1, 0.5, torch.Generator().manual_seed(0)).x0 is None
    with pytest.raises(ValueError, match="no x0"):
        path.draw(x1, 0.5, x0=x1)


@pytest.mark.parametrize("noise", ["mask", "uniform"])
def test_token_target_rates_move_the_conditional_law_forward(noise):
    """``d/dt p_t(y | x1) = sum_x p_t(x | x1) R_t(y | x) - p_t(y | x1) sum_z R_t(z | y)``."""
    path = MixtureTokenPath(4, noise, PolynomialScheduler(1.5))
    x1 = torch.tensor([[2]])
    states = torch.arange(path.space.size)[:, None]                     # every state as a 1-token x_t
    for t in (0.2, 0.55, 0.8):
        probs = path.conditional_probs(x1, t)[0, 0]                       # [S]
        rates = path.target(PathSample(states, x1.expand_as(states)), t)[:, 0]   # [S, S]: R(y | x)
        flow = probs @ rates - probs * rates.sum(-1)
        derivative = (path.conditional_probs(x1, t + H) - path.conditional_probs(x1, t - H))[0, 0] / (2 * H)
        torch.testing.assert_close(flow, derivative, rtol=1e-6, atol=1e-7)


def test_token_draw_keeps_x1_or_shows_the_given_x0():
    path = MixtureTokenPath(5, "uniform")
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(5, (2000,), generator=g)
    x0 = (x1 + 1) % 5
    record = path.draw(x1, 0.3, g, x0=x0)
    assert bool(((record.x_t == x1) | (record.x_t == x0)).all())
    kept = (record.x_t == x1).double().mean()
    assert abs(float(kept) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 2000)


def test_gaussian_prior_is_standard_normal():
    draws = CondOTPath().prior((40000,), torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(float(draws.mean())) < 4 / math.sqrt(40000)
    assert abs(float(draws.var()) - 1) < 4 * math.sqrt(2 / 40000)


@pytest.mark.parametrize("path", [GeodesicSO3Path(), IsotropicSO3Path()], ids=["geodesic", "isotropic"])
def test_rotation_priors_are_haar(path):
    """Haar: E[R] = 0, and the angle has density (1 - cos theta) / pi, so E[cos theta] = -1/2."""
    n = 40000
    r = path.prior((n,), torch.Generator().manual_seed(0), dtype=torch.float64)
    assert r.shape == (n, 3, 3)
    assert float(r.mean(0).abs().max()) < 5 * math.sqrt(1 / 3 / n)
    cos = torch.cos(so3.angle(r))
    # Var(cos theta) under (1 - cos)/pi on [0, pi] is 1/4.
    assert abs(float(cos.mean()) + 0.5) < 5 * math.sqrt(0.25 / n)


@pytest.mark.parametrize("noise,expected", [("mask", None), ("uniform", 0.25)])
def test_token_priors(noise, expected):
    path = MixtureTokenPath(4, noise)
    draws = path.prior((20000,), torch.Generator().manual_seed(0))
    if expected is None:
        assert bool((draws == path.mask_index).all())
        return
    freq = torch.bincount(draws, minlength=4).double() / 20000
    assert float((freq - expected).abs().max()) < 5 * math.sqrt(expected * (1 - expected) / 20000)


REGRESSION = {**CONTINUOUS, "isotropic": IsotropicSO3Path(kappa_max=20.0)}


@pytest.mark.parametrize("path", REGRESSION.values(), ids=REGRESSION.keys())
def test_clipped_regression_time_only_reweights(path):
    """Where a path clips the time, target minus estimate at another time is the same
    vector times one positive scalar; where it does not, that fails."""
    g = torch.Generator().manual_seed(3)
    x1, x1_hat = _data(path, g), _data(path, g)
    record = path.draw(x1, 0.5, g)
    t_clip = 0.3
    chosen = float(path.regression_time(torch.tensor(0.9, **F64), t_clip))
    assert chosen in (t_clip, 0.9)
    clips = chosen == t_clip

    def error(t):
        return (path.target(record, t) - path.estimate(record.x_t, x1_hat, t)).flatten()

    ratio = error(0.5) / error(t_clip)
    proportional = bool(torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-9)) and float(ratio[0]) > 0
    assert proportional == clips


@pytest.mark.parametrize("path", CONTINUOUS.values(), ids=CONTINUOUS.keys())
def test_prediction_step_moves_along_the_path_velocity(path):
    g = torch.Generator().manual_seed(4)
    x, x1_hat = _data(path, g), _data(path, g)
    step = path.prediction_step()
    assert step.kind == "flow" and step.takes == "x1"
    t = torch.tensor(0.4, **F64)
    torch.testing.assert_close(step.velocity(x, x1_hat, t), path.estimate(x, x1_hat, t))
    # A short step moves by h times that velocity to first order.
    h = 1e-6
    moved = _body_rate(path, x, step.step(x, x1_hat, t, h, 1.0), h)
    torch.testing.assert_close(moved, path.estimate(x, x1_hat, t), rtol=1e-4, atol=1e-5)


def test_isotropic_prediction_step_is_an_euler_step_of_its_velocity():
    path = IsotropicSO3Path(kappa_max=20.0)
    g = torch.Generator().manual_seed(5)
    x, x1_hat = so3.uniform((8,), generator=g, **F64), so3.uniform((8,), generator=g, **F64)
    step = path.prediction_step()
    expected = so3.exp_map(x, 0.01 * 0.5 * path.velocity(x, x1_hat, 0.3))
    torch.testing.assert_close(step.step(x, x1_hat, 0.3, 0.01, 0.5), expected)



JUMPS = {"condot": CondOTPath(), "isotropic": IsotropicSO3Path(kappa_max=20.0)}


@pytest.mark.parametrize("path", JUMPS.values(), ids=JUMPS.keys())
def test_prediction_jump_is_the_closed_form_jump_at_the_prediction(path):
    """The intensity given (a learned one) or the closed form at the prediction, and the exact
    landing law around the prediction for the entries that jump."""
    assert path.supports_jump
    g = torch.Generator().manual_seed(9)
    x, x1_hat = _data(path, g), _data(path, g)
    t = torch.tensor(0.4, **F64)
    params = path.prediction_jump(x, x1_hat, t)
    torch.testing.assert_close(params.intensity, path.jump_intensity(x, x1_hat, t))
    learned = torch.rand(params.intensity.shape, generator=g, **F64)
    assert torch.equal(path.prediction_jump(x, x1_hat, t, learned).intensity, learned)
    where = torch.rand(params.intensity.shape, generator=g) < 0.5
    got = params.landing.sample_at(where, torch.Generator().manual_seed(10))
    assert torch.equal(got, path.sample_landing(x1_hat[where], t, torch.Generator().manual_seed(10)))

def test_token_prediction_step_is_the_ctmc_step_of_the_path_rates():
    path = MixtureTokenPath(4, "mask")
    g = torch.Generator().manual_seed(6)
    x = torch.where(torch.rand(3, 10, generator=g) < 0.5, torch.randint(4, (3, 10), generator=g),
                    torch.full((3, 10), 4))
    probs = torch.softmax(torch.randn(3, 10, 4, generator=g), -1)
    step = path.prediction_step(eta=0.3, purity=True)
    assert step.kind == "ctmc" and step.takes == "x1_probs"
    for last in (False, True):
        got = step.step(x, probs, 0.4, 0.1, 1.0, torch.Generator().manual_seed(7), is_last=last)
        rates = path.rates(x, probs, 0.4, 0.3).float()
        want = CTMCStep(mask_index=4, purity=True).step(x, rates, 0.4, 0.1, 1.0, torch.Generator().manual_seed(7),
                                                        is_last=last)
        assert torch.equal(got, want)
    assert not bool((step.step(x, probs, 0.9, 0.1, 1.0, g, is_last=True) == 4).any())


def test_linear_and_exponential_schedules_give_exact_clean_sample_steps():
    """On interpolation paths (sigma = 1 - alpha) the step lands on the prediction at t = 1."""
    for path in (CondOTPath(), AffineGaussianPath(LinearScheduler()), GeodesicSO3Path(ExponentialRateScheduler(3.0))):
        g = torch.Generator().manual_seed(8)
        x, x1_hat = _data(path, g), _data(path, g)
        landed = path.prediction_step().step(x, x1_hat, 0.7, 0.3, 1.0)
        torch.testing.assert_close(landed, x1_hat)
