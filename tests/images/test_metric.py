"""Frechet distance (closed forms), the Inception-v3 loader, the cached classifier metric."""

import numpy as np
import pytest
import torch

from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.images.classifier import train_or_load_classifier
from multiflow_gm.images.datasets import ImageData
from multiflow_gm.images.frechet import FeatureStats, feature_stats, frechet_distance
from multiflow_gm.images.inception import FEATURE_DIM, FIDInceptionV3, load_fid_inception


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    # For commuting covariances: ||mu_a - mu_b||^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a = FeatureStats(np.array([0.0, 1.0, 2.0]), np.diag([1.0, 4.0, 0.25]), 10)
    b = FeatureStats(np.array([1.0, 1.0, 0.0]), np.diag([9.0, 1.0, 0.25]), 10)
    assert frechet_distance(a, b) == pytest.approx(1 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0, rel=1e-10)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_general_covariances_match_a_rotation_invariance():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    cov_a, cov_b = m @ m.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 0.0])   # one singular covariance
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = FeatureStats(np.zeros(4), cov_a, 5), FeatureStats(np.ones(4), cov_b, 5)
    rot = lambda s: FeatureStats(q @ s.mean, q @ s.cov @ q.T, 5)  # noqa: E731
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(rot(a), rot(b)), rel=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)
    # 1-D check against the scalar formula.
    s = lambda mu, var: FeatureStats(np.array([mu]), np.array([[var]]), 5)  # noqa: E731
    assert frechet_distance(s(1.0, 4.0), s(-1.0, 1.0)) == pytest.approx(4 + (2 - 1) ** 2)


def test_feature_stats_and_sample_estimate():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]) + 3
    stats = feature_stats(x)
    assert np.allclose(stats.mean, 3, atol=0.05) and np.allclose(np.diag(stats.cov), [1, 4, 0.25], rtol=0.05)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_stats(torch.zeros(1, 3))


def test_inception_loads_a_pytorch_fid_state_dict_and_gives_2048_features(tmp_path):
    model = FIDInceptionV3()
    state = model.state_dict()
    # A pytorch-fid file also holds the 1008-way classifier; it is ignored.
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path)
    with torch.no_grad():
        grey = loaded(torch.rand(2, 1, 28, 28) * 2 - 1)
    assert grey.shape == (2, FEATURE_DIM) and torch.isfinite(grey).all()
    assert sum(p.numel() for p in loaded.parameters()) == pytest.approx(21.8e6, rel=0.02)


def test_inception_errors_say_what_is_missing(tmp_path):
    with pytest.raises(MissingResourceError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_fid_inception(tmp_path / "absent.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="not a pytorch-fid Inception-v3 state dict"):
        load_fid_inception(bad)


def _toy_data(n=200):
    """Two classes that differ in brightness of the left half: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    images[labels == 1, :, :, :4] += 180
    return ImageData("toy", images[:150], labels[:150], images[150:], labels[150:], 2)


def test_classifier_is_trained_once_then_loaded_from_cache(tmp_path):
    data = _toy_data()
    cache = tmp_path / "classifier_toy.pt"
    first = train_or_load_classifier(data, cache, feature_dim=8, steps=40, batch_size=32)
    assert not first.from_cache and first.test_accuracy > 0.95 and cache.is_file()
    second = train_or_load_classifier(data, cache, feature_dim=8, steps=40, batch_size=32)
    assert second.from_cache and second.test_accuracy == first.test_accuracy
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(first.model.features(x), second.model.features(x))
    # Other settings: retrained, not silently reused.
    third = train_or_load_classifier(data, cache, feature_dim=8, steps=41, batch_size=32)
    assert not third.from_cache


def test_flattened_curve_detection():
    from multiflow_gm.images.curves import stopped_improving

    assert not stopped_improving([100, 80, 60, 50, 40])          # still improving
    assert stopped_improving([100, 60, 50, 50.5, 49.8, 51])      # last three within 2% of the best
    assert not stopped_improving([100, 60, 50])                  # too few points to tell


def test_late_gain_is_judged_against_its_paired_interval(tmp_path):
    """A late best whose images equal the earlier best's is flat; one whose images sit much
    closer to the reference is still improving."""
    from multiflow_gm.images.curves import curve_summary, features_path
    from multiflow_gm.images.metric import save_features

    rng = np.random.default_rng(0)
    reference = feature_stats(rng.normal(size=(4000, 4)))
    base = rng.normal(size=(400, 4)) + 0.5                          # the earlier best, off by 0.5
    sets = {1: base + 1.0, 2: base, 3: base.copy(), 4: base + 0.2, 5: base + 0.1}
    points = []
    for step, features in sets.items():
        save_features(features_path(tmp_path, "flow", step), features)
        points.append({"step": step, "distance": float(((features.mean(0)) ** 2).sum()),
                       "held_out_loss": {"total": 1.0}})
    flat = curve_summary({"flow": points}, out_dir=tmp_path, reference=reference)["flow"]
    assert flat["distance_flat_rule"] == "paired interval" and flat["distance_flat"]
    assert flat["late_gain"][0] == pytest.approx(0.0, abs=1e-9) and flat["late_gain"][1] <= 0 <= flat["late_gain"][2]

    save_features(features_path(tmp_path, "flow", 5), base - 0.45)            # now close to the reference
    points[-1]["distance"] = 0.0
    moving = curve_summary({"flow": points}, out_dir=tmp_path, reference=reference)["flow"]
    assert not moving["distance_flat"] and moving["late_gain"][2] < 0
    # Without features the relative tolerance decides.
    assert curve_summary({"flow": points})["flow"]["distance_flat_rule"] == "2% tolerance"


def test_dither_stays_in_the_bin_with_the_uniform_spread():
    from multiflow_gm.images.dither import dither_std, dither_to_bins

    g = torch.Generator().manual_seed(0)
    values = torch.cat([torch.full((20000,), -1.0), torch.full((20000,), 1.0), torch.rand(20000, generator=g) * 2 - 1])
    out = dither_to_bins(values, 64, g)
    width = 2 / 64
    index = torch.clamp(((values + 1) / width).floor(), 0, 63)
    assert bool(((out >= index * width - 1) & (out <= (index + 1) * width - 1)).all())   # never leaves its bin
    assert dither_std(64) == pytest.approx(0.00902, abs=1e-5)
    # Within the bin the draw is uniform: its std about the bin centre is width / sqrt(12).
    offset = out - (index * width - 1 + width / 2)
    assert float(offset.std()) == pytest.approx(dither_std(64), rel=0.02)
    assert float(dither_to_bins(values, 128, g).sub(values).abs().max()) <= 2 / 128
