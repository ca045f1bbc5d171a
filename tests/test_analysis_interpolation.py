"""``mnistlab.analysis.interpolation`` on small real data: the four kinds of path between digits,
the example strips, and what the shipped judge reads along random pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistlab import metrics, models, store
from mnistlab.analysis import interpolation as interp


@pytest.fixture(scope="module")
def coders():
    """An untrained small autoencoder and VAE: the paths' geometry does not need training."""
    torch.manual_seed(0)
    return models.get_model("ae", latent_dim=4), models.get_model("vae", latent_dim=4)


@pytest.fixture(scope="module")
def judge(mnist):
    return store.load_judge(mnist, progress=False)[0]


def test_slerp_keeps_the_ends_and_the_norm():
    a = np.array([3.0, 0.0, 0.0])
    b = np.array([0.0, 3.0, 0.0])
    t = np.linspace(0, 1, 5)
    path = interp.slerp(a, b, t)
    np.testing.assert_allclose(path[0], a)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)
    # Between orthogonal vectors of one norm the arc is cos/sin of a quarter turn.
    expected = np.cos(np.pi / 2 * t)[:, None] * a + np.sin(np.pi / 2 * t)[:, None] * b
    np.testing.assert_allclose(path, expected, atol=1e-12)
    # Vectors that point the same way: the straight line.
    np.testing.assert_allclose(interp.slerp(a, 2 * a, t), (1 + t)[:, None] * a)


def test_paths_run_from_one_digit_to_the_other(small, coders):
    ae, vae = coders
    xa, xb = small.x_test[:3], small.x_test[3:6]  # uint8 (3, 28, 28)
    t = np.linspace(0.0, 1.0, 5)
    out = interp.paths(xa, xb, ae, vae, t)
    assert tuple(out) == interp.PATHS
    for images in out.values():
        assert images.shape == (3, 5, 28, 28) and images.dtype == np.float32
        assert 0.0 <= images.min() <= images.max() <= 1.0
    fa, fb = xa / np.float32(255), xb / np.float32(255)
    pixel = out[interp.PIXEL]
    np.testing.assert_allclose(pixel[:, 0], fa, atol=1e-6)
    np.testing.assert_allclose(pixel[:, -1], fb, atol=1e-6)
    np.testing.assert_allclose(pixel[:, 2], (fa + fb) / 2, atol=1e-6)
    # A latent path starts and ends at the decoder's reconstructions of the two digits.
    recon = models.decode(ae, models.encode(ae, xa))
    np.testing.assert_allclose(out[interp.AE_LATENT][:, 0], recon, atol=1e-5)
    # Linear and spherical VAE paths share their ends and part in between.
    lin, sph = out[interp.VAE_LINEAR], out[interp.VAE_SPHERICAL]
    np.testing.assert_allclose(lin[:, [0, -1]], sph[:, [0, -1]], atol=1e-5)
    assert np.abs(lin[:, 2] - sph[:, 2]).max() > 1e-4


def test_interpolate_strips_start_at_the_first_digit_of_each_class(small, coders, judge):
    ae, vae = coders
    rows = interp.interpolate(small.x_test, small.y_test, [(0, 1), (7, 2)], ae, vae, judge, 5)
    assert [(r["pair"], r["path"]) for r in rows] == [
        (pair, path) for pair in ("0->1", "7->2") for path in interp.PATHS
    ]
    first_zero = small.x_test[np.flatnonzero(small.y_test == 0)[0]]
    np.testing.assert_allclose(rows[0]["images"][0], first_zero / 255.0, atol=1e-6)
    for r in rows:
        assert r["images"].shape == (5, 28, 28) and r["t"] == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert len(r["quality"]) == len(r["predicted"]) == 5
        probs, _ = models.judge_outputs(judge, r["images"])
        np.testing.assert_allclose(r["quality"], metrics.quality(probs))
    # The judge reads the real end digits of the pixel path as themselves.
    assert rows[0]["predicted"][0] == 0 and rows[0]["predicted"][-1] == 1


def test_random_pairs_are_seeded_and_mix_classes(small):
    y = small.y_test
    ia, ib = interp.random_pairs(y, 30, seed=3)
    assert len(ia) == len(ib) == 30 and (y[ia] != y[ib]).all()
    again = interp.random_pairs(y, 30, seed=3)
    assert np.array_equal(ia, again[0]) and np.array_equal(ib, again[1])
    assert not np.array_equal(ia, interp.random_pairs(y, 30, seed=4)[0])
    # One class only: no pair of two classes exists.
    assert len(interp.random_pairs(np.zeros(50, np.int64), 10, seed=0)[0]) == 0


def _path_stats_slow(quality, predicted, ya, yb):
    """One pair at a time, as the definitions read."""
    ends, lows, dips, third = [], [], [], []
    for q, p, a, b in zip(quality, predicted, ya, yb, strict=True):
        end, low = min(q[0], q[-1]), min(q[1:-1])
        ends.append(end)
        lows.append(low)
        dips.append(end - low)
        third += [int(c != a and c != b) for c in p[1:-1]]
    return {
        "pairs": len(quality),
        "end_quality": np.mean(ends),
        "min_quality": np.mean(lows),
        "dip": np.mean(dips),
        "third_digit": np.mean(third),
    }


def test_path_stats_match_a_pair_by_pair_reference(rng):
    quality = rng.uniform(0, 1, (20, 7))
    predicted = rng.integers(0, 10, (20, 7))
    ya, yb = rng.integers(0, 10, 20), rng.integers(0, 10, 20)
    got = interp.path_stats(quality, predicted, ya, yb)
    assert got == pytest.approx(_path_stats_slow(quality, predicted, ya, yb), rel=1e-12)
    # A path that stays at its ends' quality and class never dips and meets no third digit.
    flat = interp.path_stats(np.full((3, 5), 0.9), np.zeros((3, 5), int), np.zeros(3), np.ones(3))
    assert flat["dip"] == 0.0 and flat["third_digit"] == 0.0


def test_interpolation_stats_on_real_digits(small, coders, judge):
    ae, vae = coders
    stats = interp.interpolation_stats(
        small.x_test, small.y_test, ae, vae, judge, pairs=12, steps=5, seed=0
    )
    assert tuple(stats) == interp.PATHS
    for v in stats.values():
        assert v["pairs"] == 12 and 0.0 <= v["third_digit"] <= 1.0
        assert 0.0 <= v["min_quality"] <= 1.0 and 0.0 <= v["end_quality"] <= 1.0
        assert v["dip"] == pytest.approx(v["end_quality"] - v["min_quality"])
    # The pixel path's ends are real test digits: the shipped judge is sure of them.
    assert stats[interp.PIXEL]["end_quality"] > 0.8
    again = interp.interpolation_stats(
        small.x_test, small.y_test, ae, vae, judge, pairs=12, steps=5, seed=0
    )
    assert again == stats
