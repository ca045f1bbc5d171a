"""Metrics on small real data: properties, reference implementations, bad inputs."""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import numpy as np
import prdc as prdc_package
import pytest
import scipy.linalg
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mnistlab import metrics, models, projection, store, tangent
from mnistlab.errors import DataError


class TinyJudge(nn.Module):
    """A deterministic stand-in for the judge: fixed seeded random ReLU features and a head.

    ``scale`` multiplies the features, to check that novelty does not depend on their units.
    """

    def __init__(self, seed: int = 0, scale: float = 1.0, feature_dim: int = 24) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(784, feature_dim)
        self.head = nn.Linear(feature_dim, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        self.scale = scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 28, 28) -> (N, feature_dim)."""
        return torch.relu(self.proj(x.flatten(1))) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def scorer(small):
    return metrics.Scorer(TinyJudge(), small, judge_id="tiny-0", progress=False)


# ---- inputs ---------------------------------------------------------------------------------


def test_check_images_accepts_both_shapes_and_dtypes(small):
    x = small.x_train[:5]
    as_uint8 = metrics.check_images(x)
    as_float = metrics.check_images((x / 255.0).reshape(5, 784))
    assert as_uint8.shape == as_float.shape == (5, 28, 28)
    assert as_uint8.dtype == np.float32
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-6)


BAD_IMAGES = {
    "dtype <U1": np.full((6, 784), "a"),
    "no images": np.zeros((0, 28, 28), np.float32),
    "expected shape": np.zeros((3, 27, 27), np.float32),
    "in \\[0, 255\\], found \\[300, 300\\]": np.full((6, 784), 300, np.int64),
    "NaN": np.full((3, 784), np.nan, np.float32),
    "must lie in": np.full((3, 28, 28), 1.5, np.float32),
}


@pytest.mark.parametrize("message", list(BAD_IMAGES))
def test_bad_images_raise_one_line_errors(scorer, message):
    with pytest.raises(DataError, match=message) as err:
        scorer.score(BAD_IMAGES[message])
    assert "\n" not in str(err.value)


def test_too_few_images(scorer, small):
    with pytest.raises(DataError, match="at least 6 images"):
        scorer.score(small.x_test[:5])


# ---- the single metrics -------------------------------------------------------------------


def test_quality_ends():
    sure, unsure = np.eye(10)[:3], np.full((2, 10), 0.1)
    np.testing.assert_allclose(metrics.quality(sure), 1.0)
    np.testing.assert_allclose(metrics.quality(unsure), 0.0, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1e6), min_size=10, max_size=10).filter(lambda v: sum(v) > 0))
def test_quality_lies_in_unit_interval(weights):
    probs = np.array([weights]) / sum(weights)
    q = metrics.quality(probs)
    assert 0.0 <= q[0] <= 1.0


def test_diversity_ends():
    assert metrics.diversity(np.full(100, 2)) == 0.0
    assert f"{metrics.diversity(np.full(100, 2)):.4f}" == "0.0000"  # not "-0.0000"
    assert metrics.diversity(np.arange(100) % 10) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(
    d=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e9)), min_size=1, max_size=20),
    ref=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=50),
    scale=st.floats(1e-3, 1e3),
)
def test_novelty_mapping(d, ref, scale):
    d, ref = np.array(d), np.array(ref)
    n = metrics.novelty(d, ref)
    assert ((n >= 0) & (n <= 1)).all()
    assert ((n == 0) == (d < metrics.COPY_TOLERANCE * np.median(ref))).all()
    assert (np.diff(n[np.argsort(d, kind="stable")]) >= 0).all()  # monotone
    assert (n[d > ref.max()] == 1).all()
    np.testing.assert_allclose(metrics.novelty(scale * d, scale * ref), n, rtol=1e-9, atol=1e-12)


def test_novelty_is_calibrated_on_real_digits(rng):
    ref = rng.gamma(4.0, 1.0, 5000)
    # The reference digits themselves score 0.5 on average, a uniform share of them below each
    # quantile; a distance at the 1% quantile scores 0.01.
    assert metrics.novelty(ref, ref).mean() == pytest.approx(0.5, abs=1e-3)
    assert metrics.novelty(np.quantile(ref, [0.01]), ref)[0] == pytest.approx(0.01, abs=1e-3)
    with pytest.raises(DataError):
        metrics.novelty(ref, np.zeros(3))


def fid_direct(a: np.ndarray, b: np.ndarray) -> float:
    """FID as pytorch-fid writes it, with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


@pytest.mark.parametrize(("d", "shift"), [(4, 0.0), (16, 0.5), (64, 2.0)])
def test_fid_matches_scipy_sqrtm(rng, d, shift):
    a = rng.standard_normal((500, d))
    b = rng.standard_normal((400, d)) @ rng.uniform(0.5, 1.5, (d, d)) / np.sqrt(d) + shift
    assert metrics.fid(a, b) == pytest.approx(fid_direct(a, b), rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prdc_matches_the_prdc_package(seed, capsys):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((300, 8)).astype(np.float32)
    fake = (rng.standard_normal((250, 8)) * 1.2 + 0.3).astype(np.float32)
    ours = metrics.prdc(real, fake, k=5, chunk=64)
    theirs = prdc_package.compute_prdc(real, fake, nearest_k=5)
    capsys.readouterr()  # the package prints the sizes
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-12), key
    radii = metrics.knn_radii(real, 5)
    assert metrics.prdc(real, fake, real_radii=radii) == ours


def _prdc_brute_force(real, fake, k):
    """PRDC from the whole float64 distance matrix, each distance from its differences."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = np.sqrt(((real[:, None, :] - fake[None, :, :]) ** 2).sum(-1))
    inside_real = d < metrics.knn_radii(real, k)[:, None]
    inside_fake = d < metrics.knn_radii(fake, k)[None, :]
    balls = inside_real.sum(0)
    return {
        "precision": (balls > 0).mean(),
        "recall": inside_fake.any(1).mean(),
        "density": balls.sum() / (k * len(fake)),
        "coverage": inside_real.any(1).mean(),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_prdc_settles_pairs_on_the_radius_exactly(seed):
    # Fakes put on the sphere of a real point's k-NN radius (or a hair inside or outside), all
    # far from the origin: float32 alone cannot tell these pairs apart.
    rng = np.random.default_rng(seed)
    real = (rng.standard_normal((600, 16)) + 100).astype(np.float32)
    radii = metrics.knn_radii(real, 5)
    picked = rng.integers(0, len(real), 500)
    step = rng.standard_normal((500, 16))
    step *= radii[picked, None] / np.linalg.norm(step, axis=1, keepdims=True)
    hair = 1 + rng.choice([-1e-7, 0.0, 1e-7], size=(500, 1))
    fake = (real[picked] + step * hair).astype(np.float32)
    ours = metrics.prdc(real, fake, k=5, chunk=128)
    assert ours == pytest.approx(_prdc_brute_force(real, fake, 5), abs=0, rel=0)
    # The other way round, the spheres lie on the fakes' radii: recall's pair tests.
    assert metrics.prdc(fake, real, k=5, chunk=128) == _prdc_brute_force(fake, real, 5)
    # Duplicated fakes, and fakes that are real points: ties at distance 0.
    fake = np.concatenate([real[:100], real[:100], fake[:100]])
    assert metrics.prdc(real, fake, k=5) == _prdc_brute_force(real, fake, 5)


# ---- the scorer on real digits ------------------------------------------------------------


def test_scores_lie_in_range(scorer, small):
    s = scorer.score(small.x_test[:150])
    d = s.as_dict()
    assert list(d) == [*metrics.SCORE_KEYS, "ci"]
    assert d["n"] == 150
    for key, (lo, hi) in d["ci"].items():
        assert lo <= d[key] <= hi, key
    for key in ("quality", "novelty", "diversity", "precision", "recall", "coverage"):
        assert 0.0 <= d[key] <= 1.0, key
    assert 0.0 <= d["near_copy_rate"] <= 1.0
    assert d["fid"] >= 0.0 and d["density"] >= 0.0
    for key in ("quality", "novelty", "nn_distance"):
        values = s.per_image[key]
        assert values.shape == (150,) and (values >= 0).all()
    assert ((s.per_image["novelty"] >= 0) & (s.per_image["novelty"] <= 1)).all()
    assert set(np.unique(s.per_image["predicted"])) <= set(range(10))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 599), min_size=6, max_size=40, unique=True))
def test_copies_of_training_images_have_novelty_zero(scorer, small, picked):
    images = small.x_train[picked].astype(np.float32) / 255.0  # float copies of the uint8 images
    s = scorer.score(images)
    assert s.novelty == 0.0
    assert s.near_copy_rate == 1.0
    np.testing.assert_array_equal(s.per_image["nn_distance"], 0.0)


def test_copies_have_novelty_zero_with_the_classifier(small):
    """The real judge architecture (seeded, untrained): a CNN with BatchNorm, batched inference."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        judge = models.get_model("classifier")
    scorer = metrics.Scorer(judge, small, judge_id="classifier-seed-0", progress=False)
    s = scorer.score(small.x_train[[5, 17, 99, 300, 301, 599]])
    assert s.novelty == 0.0
    np.testing.assert_array_equal(s.per_image["nn_index"], [5, 17, 99, 300, 301, 599])


def test_novelty_ignores_the_feature_scale(small):
    images = small.x_test[:60]
    base = metrics.Scorer(TinyJudge(), small, judge_id="tiny", progress=False).score(images)
    scaled = metrics.Scorer(TinyJudge(scale=37.5), small, judge_id="tiny", progress=False)
    np.testing.assert_allclose(
        scaled.score(images).per_image["novelty"], base.per_image["novelty"], rtol=1e-5
    )


def test_local_scale_is_the_kth_nearest_other_row(rng):
    from sklearn.neighbors import NearestNeighbors

    refs = rng.normal(size=(300, 8)).astype(np.float32)
    want = NearestNeighbors(n_neighbors=6).fit(refs).kneighbors(refs)[0][:, 5]  # 0th: itself
    np.testing.assert_allclose(metrics.local_scale(refs), want, rtol=1e-5)
    # k is capped by the set; duplicates (radius 0) take the smallest positive radius.
    few = np.array([[0.0], [0.0], [1.0], [3.0]], dtype=np.float32)
    np.testing.assert_allclose(metrics.local_scale(few, k=1), [1.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(metrics.local_scale(few, k=9), [3.0, 3.0, 2.0, 3.0])
    with pytest.raises(DataError, match="at least 2"):
        metrics.local_scale(few[:1])
    with pytest.raises(DataError, match="no scale"):
        metrics.local_scale(np.zeros((5, 2), dtype=np.float32))


def test_novelty_measures_a_distance_in_its_sources_neighbourhood(scorer, small):
    """The same step away from a training digit in a crowded part of the set and in a sparse
    one: measured in the source's local scale, the step in the sparse part reads as less new."""
    scale = scorer.train_scale_
    np.testing.assert_allclose(scale, metrics.local_scale(scorer.train_descriptors_))
    crowded, sparse = int(np.argmin(scale)), int(np.argmax(scale))
    desc = scorer.train_descriptors_[[crowded, sparse]]
    # Less than half way to either digit's nearest other digit: each stays its step's source.
    r1 = metrics.nearest(desc, scorer.train_descriptors_, 2)[0][:, 1]
    step = 0.4 * float(r1.min())
    away = desc + step * np.eye(desc.shape[1], dtype=np.float32)[:1]
    d, idx = scorer._nn_distance(away, scorer.train_descriptors_)
    np.testing.assert_array_equal(idx, [crowded, sparse])
    np.testing.assert_allclose(d, step / scale[[crowded, sparse]], rtol=1e-4)
    assert d[1] < d[0]


def test_noise_is_newer_and_worse_than_real_digits(scorer, small, rng):
    real = scorer.score(small.x_test[:100])
    noise = scorer.score(rng.uniform(0.0, 1.0, (100, 784)).astype(np.float32))
    assert noise.novelty > real.novelty
    assert noise.fid > real.fid
    assert noise.precision < real.precision


def test_seeded_runs_are_identical(scorer, small):
    a, b = scorer.score(small.x_test[:50]), scorer.score(small.x_test[:50])
    assert a.as_dict() == b.as_dict()


def test_image_scores_are_the_per_image_scores_of_a_set(scorer, small):
    images = np.concatenate([small.x_test[:30], small.x_train[:10]])  # copies among them
    whole, each = scorer.score(images), scorer.image_scores(images)
    for key, values in whole.per_image.items():
        np.testing.assert_array_equal(each[key], values, err_msg=key)
    assert each["near_copy"].mean() == whole.near_copy_rate >= 10 / 40
    assert set(np.unique(each["near_copy"])) == {0.0, 1.0}
    assert scorer.image_scores(images[:1])["novelty"].shape == (1,)  # no PRDC, so one will do


def test_kept_descriptors_are_made_once_per_key(scorer, small):
    made = []

    def images():
        made.append(1)
        return small.x_train[:40]

    first = scorer.kept_descriptors("recon-test-1", images)
    np.testing.assert_array_equal(first, scorer.descriptors(small.x_train[:40]))
    again = scorer.kept_descriptors("recon-test-1", images)  # from the disk, images not made
    np.testing.assert_array_equal(again, first)
    assert len(made) == 1
    other = scorer.kept_descriptors("recon-test-2", lambda: small.x_train[40:50])
    assert other.shape == (10, first.shape[1])
    # Kept with another number of rows than the caller now has: made again.
    longer = scorer.kept_descriptors("recon-test-2", lambda: small.x_train[40:60], rows=20)
    assert longer.shape == (20, first.shape[1])
    # A damaged entry is made again, and a key that could leave the folder is refused.
    (kept,) = scorer._features_path().parent.glob("*-descriptors-recon-test-1.npy")
    for damaged in (b"not an array", b""):
        kept.write_bytes(damaged)
        np.testing.assert_array_equal(scorer.kept_descriptors("recon-test-1", images), first)
    assert len(made) == 3
    for bad in ("", "../x", "a b"):
        with pytest.raises(ValueError, match="key"):
            scorer.kept_descriptors(bad, images)


def test_support_radii_drop_the_balls_that_hold_the_origin():
    real = np.array([[3.0, 0.0], [0.0, 3.0], [2.0, 2.0], [10.0, 10.0]])
    radii = np.array([4.0, 2.0, 3.0, 1.0])  # the first and third balls reach the origin
    kept = metrics.support_radii(real, radii)
    assert kept.tolist() == [0.0, 2.0, 0.0, 1.0]
    assert metrics.support_radii(real[:1], [3.0]).tolist() == [3.0]  # the origin on its edge
    blank = np.zeros((3, 2))  # what outlier exposure makes of a blank page: no feature on
    assert metrics.prdc(real, blank, k=1, real_radii=radii)["precision"] == 1.0
    dropped = metrics.prdc(real, blank, k=1, real_radii=kept)
    assert dropped["precision"] == dropped["density"] == dropped["coverage"] == 0.0
    near = np.array([[0.5, 3.5], [0.0, 2.0], [9.5, 10.0]])  # inside the balls that stay
    full = metrics.prdc(real, near, k=1, real_radii=kept, per_sample=True)
    assert full["precision"] == 1.0
    # Without recall: no k-NN radii of the fakes (one fake will do), the other figures as before.
    alone = metrics.prdc(real, near, k=1, real_radii=kept, per_sample=True, recall=False)
    assert np.isnan(alone["recall"]) and np.isnan(alone["per_real"]["recall"]).all()
    for key in ("precision", "density", "coverage"):
        assert alone[key] == full[key]
    np.testing.assert_array_equal(alone["per_fake"]["density"], full["per_fake"]["density"])
    one = metrics.prdc(real, near[:1], k=1, real_radii=kept, recall=False)
    assert one["precision"] == 1.0 and one["density"] == 1.0


def test_a_second_scorer_starts_from_what_the_first_kept(small):
    # The test digits' k-NN radii and nearest-training distances are kept on disk: a second
    # Scorer reads them (a damaged or missing one is made again) and scores the same.
    judge = TinyJudge(seed=5)
    first = metrics.Scorer(judge, small, judge_id="t5", progress=False)
    np.testing.assert_array_equal(first.test_radii_, metrics.knn_radii(first.test_features_))
    made = first._nn_distance(first.test_descriptors_, first.train_descriptors_)[0]
    np.testing.assert_array_equal(first.reference_distances_, np.sort(made))
    kept = sorted(first._features_path().parent.glob(f"{first._cache_key}-*.npy"))
    names = {p.name.split("-", 2)[-1] for p in kept}
    assert {"radii5.npy", "scale5.npy"} <= names
    assert any(name.startswith("test-nn5-") for name in names)  # named by the scale's digest
    made_again = AssertionError("made again")
    with (
        mock.patch.object(metrics, "knn_radii", side_effect=made_again),
        mock.patch.object(metrics.Scorer, "_nn_distance", side_effect=made_again),
    ):
        second = metrics.Scorer(judge, small, judge_id="t5", progress=False)
    np.testing.assert_array_equal(second.test_radii_, first.test_radii_)
    np.testing.assert_array_equal(second.reference_distances_, first.reference_distances_)
    assert second.score(small.x_test[:40]).as_dict() == first.score(small.x_test[:40]).as_dict()
    for path in kept:
        path.write_bytes(b"not an array")
    third = metrics.Scorer(judge, small, judge_id="t5", progress=False)
    np.testing.assert_array_equal(third.test_radii_, first.test_radii_)
    np.testing.assert_array_equal(third.reference_distances_, first.reference_distances_)
    # The test digits' distances are in units of the training scale: a scale kept under other
    # values (here doubled) is not read with the distances measured in the old one.
    scale_path = next(p for p in kept if p.name.endswith("-scale5.npy"))
    np.save(scale_path, 2 * np.load(scale_path))
    fourth = metrics.Scorer(judge, small, judge_id="t5", progress=False)
    np.testing.assert_allclose(fourth.reference_distances_, first.reference_distances_ / 2)


def test_calibration_rows_are_cached_per_bootstrap(small):
    plain = metrics.Scorer(TinyJudge(seed=3), small, judge_id="t", progress=False, bootstrap=0)
    rows = plain.calibration_summary(n=100)
    assert all("ci" not in row for row in rows.values())
    again = plain.calibration_summary(n=100)  # from the disk (FID is NaN for "test vs train")
    assert json.dumps(again, sort_keys=True) == json.dumps(rows, sort_keys=True)
    boot = metrics.Scorer(TinyJudge(seed=3), small, judge_id="t", progress=False, bootstrap=20)
    with_ci = boot.calibration_summary(n=100)  # not the rows cached without intervals
    assert all("ci" in row for row in with_ci.values())
    assert with_ci["test vs train"]["novelty"] == rows["test vs train"]["novelty"]
    # Rows cached under other settings of the novelty opinions are not read: they are made again.
    made = mock.MagicMock(side_effect=plain.calibration)
    with mock.patch.object(plain, "calibration", made):
        plain.calibration_summary(n=100)
        assert made.call_count == 0  # the same settings: read from the disk
        with mock.patch.object(metrics.tangent, "KEPT", "tangent-other"):
            plain.calibration_summary(n=100)
        assert made.call_count == 1
        with mock.patch.object(metrics.projection, "KEPT", "projection-other"):
            plain.calibration_summary(n=100)
        assert made.call_count == 2
        # nor rows calibrated on other test distances (a training scale made anew)
        with mock.patch.object(plain, "reference_distances_", 2 * plain.reference_distances_):
            plain.calibration_summary(n=100)
        assert made.call_count == 3


def test_calibration_rows(scorer, small):
    rows = scorer.calibration(n=200, seed=0)
    assert list(rows) == ["train vs itself", "half vs half", "test vs train"]
    own, halves, test = rows["train vs itself"], rows["half vs half"], rows["test vs train"]
    assert own.novelty == 0.0 and own.near_copy_rate == 1.0
    assert own.n == halves.n == test.n == 200
    # Real test digits sit around 0.5 by construction of d_ref (the median).
    assert 0.35 < test.novelty < 0.65
    assert test.near_copy_rate <= 0.02
    # The test set is FID's and PRDC's reference: scoring it against itself is not defined.
    assert np.isnan(test.fid) and np.isnan(test.precision) and np.isnan(test.coverage)
    assert halves.novelty > 0.0
    # half vs half: each neighbour comes from the other half of the training set.
    nn_index = halves.per_image["nn_index"]
    assert len(np.unique(nn_index)) > 1 and nn_index.max() < len(small.x_train)
    again = scorer.calibration(n=200, seed=0)["half vs half"]
    np.testing.assert_array_equal(again.per_image["nn_index"], nn_index)


# ---- reconstruction metrics ---------------------------------------------------------------


def ssim_direct(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two (28, 28) images: Gaussian window 11 / sigma 1.5, borders reflect-padded."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / g.sum() ** 2

    def blur(a):
        return scipy.signal.correlate2d(np.pad(a, 5, mode="reflect"), w, mode="valid")

    mx, my = blur(x), blur(y)
    vx, vy = np.maximum(blur(x * x) - mx**2, 0), np.maximum(blur(y * y) - my**2, 0)
    cxy = blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def test_reconstruction_metrics_match_direct_formulas(small, rng):
    target = small.x_test[:4].astype(np.float64) / 255.0
    pred = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0.0, 1.0)
    pred = pred.astype(np.float32).astype(np.float64)  # what the metrics see
    err = ((target - pred) ** 2).reshape(4, -1).mean(1)
    np.testing.assert_allclose(metrics.mse(target, pred), err, rtol=1e-5)
    np.testing.assert_allclose(metrics.psnr(target, pred), 10 * np.log10(1.0 / err), rtol=1e-5)
    with np.errstate(divide="ignore"):  # log 0 = -inf, clamped at -100 as torch does
        log_p, log_q = np.maximum(np.log(pred), -100), np.maximum(np.log(1 - pred), -100)
    ce = -(target * log_p + (1 - target) * log_q).reshape(4, -1).mean(1)
    np.testing.assert_allclose(metrics.bce(target, pred), ce, rtol=1e-4)
    want = [ssim_direct(target[i], pred[i]) for i in range(4)]
    np.testing.assert_allclose(metrics.ssim(target, pred), want, rtol=1e-4)
    means = metrics.reconstruction(target, pred)
    assert means["ssim"] == pytest.approx(np.mean(want), rel=1e-4)


def test_identical_reconstructions(small):
    x = small.x_test[:3]
    assert (metrics.mse(x, x) == 0).all()
    assert (metrics.psnr(x, x) == metrics.PSNR_CAP).all()
    np.testing.assert_allclose(metrics.ssim(x, x), 1.0, atol=1e-6)
    with pytest.raises(DataError, match="3 target images but 2"):
        metrics.mse(x, x[:2])


def test_the_indexes_kept_on_disk_are_the_ones_a_fit_gives(mnist, small):
    # Judge v2's second opinion keeps its stroke index beside the judge's features; a second
    # scorer loads it, and it is the index of the training digits, basis and codes together;
    judge, meta = store.load_judge(mnist, progress=False)
    first = metrics.Scorer(judge, small, judge_id=meta["judge_id"], progress=False)
    again = metrics.Scorer(judge, small, judge_id=meta["judge_id"], progress=False)
    fitted = tangent.StrokeIndex.fit(first.train_images_, small.y_train)
    for name in ("mean", "components", "codes", "labels"):
        kept, loaded = getattr(first.train_strokes_, name), getattr(again.train_strokes_, name)
        np.testing.assert_array_equal(kept, loaded)
        np.testing.assert_allclose(kept, getattr(fitted, name), rtol=1e-5, atol=1e-5)
    # and its projection index, basis, codes and units together
    fitted = projection.ProjectionIndex.fit(small.x_train, small.y_train)
    for name in ("mean", "components", "codes", "scale", "labels"):
        kept, loaded = (
            getattr(first.train_projection_, name),
            getattr(again.train_projection_, name),
        )
        np.testing.assert_array_equal(kept, loaded)
        np.testing.assert_allclose(kept, getattr(fitted, name), rtol=1e-5, atol=1e-5)


def test_a_blank_page_among_the_test_digits_or_the_samples_is_no_obstacle(mnist, small):
    # A page with no ink is a copy of nothing: tangent distance puts it tangent.NO_INK units
    # away, a finite value, so that a data set whose test digits hold one still calibrates the
    # opinion, and per-image scores stay valid JSON.
    x_test = small.x_test.copy()
    x_test[0] = 0
    data = dataclasses.replace(small, x_test=x_test, checksum="a-blank-test-page")
    judge, meta = store.load_judge(mnist, progress=False)
    scorer = metrics.Scorer(judge, data, judge_id=meta["judge_id"], progress=False)
    assert scorer.tangent_reference_[-1] == tangent.NO_INK
    images = np.concatenate([np.zeros((4, 28, 28), np.uint8), small.x_train[:8]])
    each = scorer.image_scores(images)
    assert (each["tangent_distance"][:4] == tangent.NO_INK).all()
    assert (each["near_copy"] == [0] * 4 + [1] * 8).all()
    json.dumps(scorer.score(images).as_dict(per_image=True), allow_nan=False)


def test_a_projected_training_digit_is_named_a_copy_of_its_source(mnist, small):
    # Judge v2's third opinion: training digits projected on 24 principal components (fitted on
    # other training digits) lose the detail the descriptor compares; the projection distance
    # names their source and lowers their novelty (measured: 88% near-copies, 10% by the
    # descriptor alone; their source named for 96%; fresh digits' projections 0.5%).
    from sklearn.decomposition import PCA

    judge, meta = store.load_judge(mnist, progress=False)
    scorer = metrics.Scorer(judge, small, judge_id=meta["judge_id"], progress=False)
    pca = PCA(24, random_state=0).fit(mnist.x_train[5000:10000].reshape(-1, 784) / 255.0)

    def projected(images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), 784) / 255.0
        return np.clip(pca.inverse_transform(pca.transform(flat)), 0, 1).astype(np.float32)

    source = np.arange(0, 600, 3)
    copies = scorer.score(projected(small.x_train[source]))
    fresh = scorer.score(projected(small.x_test))
    per = copies.per_image
    assert copies.near_copy_rate >= 0.8 and fresh.near_copy_rate <= 0.05
    assert (per["nn_index"] == source).mean() >= 0.9
    assert (per["projection_novelty"] <= scorer.fused_threshold_).mean() >= 0.8
    by_descriptor = metrics.novelty(per["nn_distance"], scorer.reference_distances_)
    assert (by_descriptor <= scorer.fused_threshold_).mean() <= 0.3
    assert np.all(per["novelty"] <= by_descriptor)
