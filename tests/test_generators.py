"""Generators: the estimator contract, shapes, seeds, and the densities against slow references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KernelDensity
from torch import nn

from mnistlab import data, models
from mnistlab import generators as gen
from mnistlab.errors import DataError


class LinearAE(nn.Module):
    """Stand-in autoencoder: the top principal directions as encoder, a sigmoid decoder."""

    def __init__(self, images: np.ndarray, latent_dim: int = 4) -> None:
        super().__init__()
        x = images.reshape(len(images), -1).astype(np.float64) / 255  # (N, 784)
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))  # (784,)
        self.register_buffer("w", torch.tensor(vt[:latent_dim].T, dtype=torch.float32))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) @ self.w  # (N, 784) @ (784, d) -> (N, d)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z @ self.w.T + self.mean  # (N, 784)
        return torch.sigmoid(6 * (x - 0.5)).reshape(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def ae(small):
    return LinearAE(small.x_train)


FACTORIES = {
    "pixel-kde": lambda ae: gen.PixelKDE(bandwidth=0.1),
    "pca-kde": lambda ae: gen.PCAKDE(n_components=8, bandwidth="scott"),
    "pca-kde-whiten": lambda ae: gen.PCAKDE(n_components=8, bandwidth=0.3, whiten=True),
    "latent-kde": lambda ae: gen.LatentKDE(ae, bandwidth="silverman"),
    "latent-gmm": lambda ae: gen.LatentGMM(ae, n_components=3, random_state=0),
    "class-gaussians": lambda ae: gen.ClassConditionalGaussian(ae),
    "latent-gaussian": lambda ae: gen.LatentGaussian(ae),
    "vae-prior": lambda ae: gen.VAEPrior(ae, scale=0.8),
}
LATENT = ["latent-kde", "latent-gmm", "class-gaussians", "latent-gaussian", "vae-prior"]


_FITTED: dict[str, gen.Generator] = {}


def fitted(name, ae, small):
    """One fitted generator per name for the module (the PCA fits dominate the test time)."""
    if name not in _FITTED:
        _FITTED[name] = FACTORIES[name](ae).fit(small.x_train, small.y_train)
    return _FITTED[name]


def nearest_distance(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query (M, 784) to its nearest ref (N, 784), float64."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = refs.reshape(len(refs), -1).astype(np.float64)
    d2 = (q**2).sum(1)[:, None] + (r**2).sum(1)[None, :] - 2 * q @ r.T
    return np.sqrt(np.maximum(d2, 0).min(axis=1))


# ---- the estimator contract ----------------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_estimator_contract(name, ae, small):
    est = FACTORIES[name](ae)
    params = est.get_params(deep=False)
    assert not [k for k in vars(est) if k.endswith("_")], "learned state before fit"
    with pytest.raises(NotFittedError):
        est.sample(3, random_state=0)
    assert est.fit(small.x_train, small.y_train) is est
    assert [k for k in vars(est) if k.endswith("_")], "no learned state after fit"
    after = est.get_params(deep=False)
    assert after.keys() == params.keys()
    assert all(after[k] is params[k] for k in params), "fit changed a hyperparameter"
    fresh = clone(est)
    assert not [k for k in vars(fresh) if k.endswith("_")]


@pytest.mark.parametrize("name", FACTORIES)
def test_sample_shape_range_and_seeds(name, ae, small):
    est = fitted(name, ae, small)
    a = est.sample(37, random_state=0)
    assert a.shape == (37, 28, 28)
    assert a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, est.sample(37, random_state=0))
    np.testing.assert_array_equal(a, est.sample(37, np.random.default_rng(0)))
    assert not np.array_equal(a, est.sample(37, random_state=1))
    assert est.sample(1, random_state=5).shape == (1, 28, 28)


@pytest.mark.parametrize("name", FACTORIES)
def test_describe_is_json_and_names_the_space(name, ae, small):
    assert FACTORIES[name](ae).describe()["fitted"] is False
    est = fitted(name, ae, small)
    info = est.describe()
    json.dumps(info)
    assert info["space"] == est.space in ("pixel", "pca", "latent")
    assert info["fitted"] is True and info["name"] == est.name and isinstance(est.name, str)


@pytest.mark.parametrize("name", LATENT)
def test_latent_samples_are_the_decoded_latent_samples(name, ae, small):
    est = fitted(name, ae, small)
    z = est.sample_latents(25, random_state=3)
    assert z.shape == (25, 4) and z.dtype == np.float32
    expected = np.clip(models.decode(ae, z), 0, 1)
    np.testing.assert_allclose(est.sample(25, random_state=3), expected, atol=1e-6)


def test_fit_accepts_uint8_float_and_flat_images_alike(small):
    x = small.x_train
    a = gen.PixelKDE(0.05).fit(x).sample(10, 0)
    b = gen.PixelKDE(0.05).fit(x.reshape(len(x), 784).astype(np.float64) / 255).sample(10, 0)
    np.testing.assert_allclose(a, b, atol=1e-6)


# ---- pixel and PCA KDEs --------------------------------------------------------------------------


def test_pixel_kde_with_tiny_bandwidth_copies_training_digits(small):
    x = small.x_train.astype(np.float32) / 255
    samples = gen.PixelKDE(bandwidth=1e-3).fit(small.x_train).sample(100, random_state=0)
    to_train = nearest_distance(samples, x)
    spacing = nearest_distance(x[:50], x[50:])  # how far apart distinct real digits are
    assert to_train.max() < 0.05  # noise of norm ~ 1e-3 * sqrt(784)
    assert np.median(spacing) > 3.0
    blurred = gen.PixelKDE(bandwidth=0.3).fit(small.x_train).sample(100, random_state=0)
    assert nearest_distance(blurred, x).min() > 3.0


def test_pixel_kde_adds_noise_of_the_bandwidth(small):
    h = 0.05
    est = gen.PixelKDE(bandwidth=h).fit(small.x_train)
    samples = est.sample(200, random_state=0).reshape(200, 784)
    x = est.points_
    centre = x[np.argmin(((samples[:, None, :] - x[None]) ** 2).sum(-1), axis=1)]  # (200, 784)
    mid = (centre > 0.2) & (centre < 0.8)  # pixels the clipping cannot reach at 4 sigma
    assert abs(np.std(samples[mid] - centre[mid]) - h) < 0.1 * h


def test_pca_kde_decodes_with_inverse_transform(ae, small):
    est = fitted("pca-kde", ae, small).with_bandwidth(1e-6)
    assert est.points_.shape == (600, 8)
    recon = est.pca_.inverse_transform(est.points_)  # the training digits' reconstructions
    samples = est.sample(50, random_state=0)
    assert nearest_distance(samples, np.clip(recon, 0, 1)).max() < 1e-3


def slow_kde_loglik(queries: np.ndarray, centres: np.ndarray, h: float) -> np.ndarray:
    """Obviously-correct float64 Gaussian KDE log-density, one query at a time."""
    q, c = queries.astype(np.float64), centres.astype(np.float64)
    n, d = c.shape
    out = [logsumexp(-((c - x) ** 2).sum(1) / (2 * h * h)) for x in q]
    return np.array(out) - np.log(n) - d / 2 * np.log(2 * np.pi * h * h)


def test_pixel_kde_loglik_matches_slow_reference(small):
    est = gen.PixelKDE(bandwidth=0.1).fit(small.x_train)
    x_val = small.x_test[:20]
    ref = slow_kde_loglik(x_val.reshape(20, 784) / 255, est.points_, 0.1).mean()
    assert est.loglik(x_val) == pytest.approx(ref, rel=1e-5)


def test_pca_kde_loglik_matches_slow_reference(ae, small):
    est = fitted("pca-kde", ae, small).with_bandwidth(0.7)
    z_val = est.pca_.transform(small.x_test.reshape(200, 784) / 255)
    ref = slow_kde_loglik(z_val, est.points_, 0.7).mean()
    assert est.loglik(small.x_test) == pytest.approx(ref, rel=1e-6)


def test_loglik_sweep_equals_one_bandwidth_at_a_time(ae, small):
    est = fitted("pca-kde", ae, small)
    hs = [0.2, 0.5, 1.0, 3.0]
    sweep = gen.held_out_loglik_sweep(est, small.x_test, hs, max_samples=80, random_state=1)
    loop = [
        gen.held_out_loglik(est.with_bandwidth(h), small.x_test, max_samples=80, random_state=1)
        for h in hs
    ]
    np.testing.assert_allclose(sweep, loop, rtol=1e-9)
    assert np.argmax(sweep) not in (0, len(hs) - 1)  # too narrow and too wide both lose


def test_held_out_loglik_scores_a_seeded_subset(ae, small):
    est = fitted("pca-kde", ae, small).with_bandwidth(0.5)
    idx = np.sort(np.random.default_rng(4).choice(200, size=50, replace=False))
    expected = est.loglik(small.x_test[idx])
    got = gen.held_out_loglik(est, small.x_test, max_samples=50, random_state=4)
    assert got == pytest.approx(expected, rel=1e-12)
    kde = KernelDensity(bandwidth=0.5).fit(est.points_)
    z = est.pca_.transform(small.x_test.reshape(200, 784) / 255)
    assert gen.held_out_loglik(kde, z, max_samples=500) == pytest.approx(
        kde.score_samples(z).mean()
    )


def test_with_bandwidth_equals_a_fresh_fit_and_shares_the_data(small):
    est = gen.PixelKDE(bandwidth=0.1).fit(small.x_train)
    other = est.with_bandwidth(0.2)
    assert other.points_ is est.points_ and est.bandwidth_ == 0.1 and other.bandwidth == 0.2
    fresh = gen.PixelKDE(bandwidth=0.2).fit(small.x_train)
    np.testing.assert_array_equal(other.sample(20, 0), fresh.sample(20, 0))
    assert est.with_bandwidth("scott").bandwidth_ == pytest.approx(gen.scott(small.x_train))


# ---- bandwidth rules and cross-validation --------------------------------------------------


def test_scott_and_silverman_match_sklearn_on_standardised_data(rng):
    z = rng.normal(size=(500, 6)) * [1, 2, 3, 4, 5, 6] + 7
    z = (z - z.mean(0)) / z.std(0)  # unit variance per feature: sklearn's rule applies as is
    for rule, fn in (("scott", gen.scott), ("silverman", gen.silverman)):
        expected = KernelDensity(bandwidth=rule).fit(z).bandwidth_
        assert fn(z) == pytest.approx(expected, rel=1e-9)
        assert fn(3 * z) == pytest.approx(3 * expected, rel=1e-9)  # scales with the data
        assert fn(z) > 0


def test_bandwidth_grid_is_a_log_grid_around_the_rules(ae, small):
    z = fitted("pca-kde", ae, small).points_
    grid = gen.bandwidth_grid(z, n=10)
    assert grid.shape == (10,) and (grid > 0).all()
    ratios = grid[1:] / grid[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert ratios[0] > 1
    for h in (gen.scott(z), gen.silverman(z)):
        assert grid[0] < h < grid[-1]


def test_cv_scores_match_sklearn_on_the_documented_split(rng):
    z = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(4, 0.5, (150, 2))])
    hs = np.array([0.02, 0.1, 0.3, 1.0, 3.0])
    scores = gen.cv_scores(z, hs, random_state=7, val_fraction=0.25)
    train, val = data.train_val_split(len(z), 0.25, 7)
    ref = [slow_kde_loglik(z[val], z[train], h).mean() for h in hs]
    np.testing.assert_allclose(scores, ref, rtol=1e-7)
    # scikit-learn's tree-based KDE agrees where the density is not tiny (h >= 0.1 here)
    sk = [KernelDensity(bandwidth=h).fit(z[train]).score_samples(z[val]).mean() for h in hs[1:]]
    np.testing.assert_allclose(scores[1:], sk, rtol=1e-6)
    chosen = gen.cv_bandwidth(z, hs, random_state=7, val_fraction=0.25)
    assert chosen == hs[np.argmax(ref)]
    assert chosen in (0.1, 0.3, 1.0)


def test_cv_bandwidth_picks_a_sensible_value_for_a_gaussian(rng):
    z = rng.normal(size=(2000, 1))
    assert gen.cv_bandwidth(z, [0.01, 0.3, 10.0], random_state=0) == 0.3
    assert gen.cv(z, None, random_state=0) == pytest.approx(gen.cv_bandwidth(z, None, 0))


# ---- latent generators ---------------------------------------------------------------------


def test_class_conditional_gaussian_fits_one_gaussian_per_class(ae, small):
    est = gen.ClassConditionalGaussian(ae, reg_covar=1e-6).fit(small.x_train, small.y_train)
    z = gen.encode(ae, small.x_train).astype(np.float64)
    y = small.y_train
    assert est.classes_.tolist() == list(range(10))
    assert est.means_.shape == (10, 4) and est.covariances_.shape == (10, 4, 4)
    np.testing.assert_allclose(est.priors_, np.bincount(y) / len(y))
    for c in range(10):
        np.testing.assert_allclose(est.means_[c], z[y == c].mean(0), rtol=1e-5, atol=1e-6)
        cov = np.cov(z[y == c], rowvar=False, bias=True) + 1e-6 * np.eye(4)
        np.testing.assert_allclose(est.covariances_[c], cov, rtol=1e-5, atol=1e-7)


def test_class_conditional_gaussian_samples_one_digit_or_the_label_mix(ae, small):
    est = gen.ClassConditionalGaussian(ae).fit(small.x_train, small.y_train)
    eights = est.sample(500, random_state=0, digit=8)
    assert eights.shape == (500, 28, 28)
    images, labels = est.sample_with_labels(500, random_state=0, digit=8)
    np.testing.assert_array_equal(images, eights)
    assert (labels == 8).all()
    z8 = est.sample_latents(4000, random_state=1, digit=8).astype(np.float64)
    scale = np.sqrt(np.diag(est.covariances_[8]))
    assert np.all(np.abs(z8.mean(0) - est.means_[8]) < 0.1 * scale)
    np.testing.assert_allclose(
        np.cov(z8, rowvar=False), est.covariances_[8], atol=0.1 * scale.max() ** 2
    )
    _, mixed = est.sample_with_labels(5000, random_state=2)
    freq = np.bincount(mixed, minlength=10) / 5000
    assert np.abs(freq - est.priors_).max() < 0.03
    np.testing.assert_array_equal(est.sample(30, 2), est.sample_with_labels(30, 2)[0])


def test_class_conditional_gaussian_loglik_is_the_label_mixture(ae, small):
    est = gen.ClassConditionalGaussian(ae).fit(small.x_train, small.y_train)
    z = gen.encode(ae, small.x_test[:40]).astype(np.float64)
    dens = sum(
        p * multivariate_normal(m, c).pdf(z)
        for p, m, c in zip(est.priors_, est.means_, est.covariances_, strict=True)
    )
    assert est.loglik(small.x_test[:40]) == pytest.approx(np.log(dens).mean(), rel=1e-8)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_latent_gmm_samples_its_mixture(kind, ae, small):
    est = gen.LatentGMM(ae, n_components=3, covariance_type=kind).fit(small.x_train)
    gmm = est.gmm_
    z = gen.encode(ae, small.x_test).astype(np.float64)
    assert est.loglik(small.x_test) == pytest.approx(gmm.score(z))
    cov0 = est.cholesky_[0] @ est.cholesky_[0].T
    full0 = {
        "full": lambda c: c[0],
        "tied": lambda c: c,
        "diag": lambda c: np.diag(c[0]),
        "spherical": lambda c: c[0] * np.eye(4),
    }[kind](gmm.covariances_)
    np.testing.assert_allclose(cov0, full0, rtol=1e-8)
    draws = est.sample_latents(6000, random_state=0).astype(np.float64)
    mean = gmm.weights_ @ gmm.means_
    spread = draws.std(0)
    assert np.all(np.abs(draws.mean(0) - mean) < 0.08 * spread)


def test_vae_prior_draws_standard_normal_codes(ae, small):
    est = gen.VAEPrior(ae, scale=0.5).fit(small.x_train)
    assert est.latent_dim_ == 4
    z = est.sample_latents(20000, random_state=0)
    np.testing.assert_allclose(z.mean(0), 0, atol=0.02)
    np.testing.assert_allclose(z.std(0), 0.5, rtol=0.03)
    codes = gen.encode(ae, small.x_test[:30]).astype(np.float64)
    ref = multivariate_normal(np.zeros(4), 0.25 * np.eye(4)).logpdf(codes).mean()
    assert est.loglik(small.x_test[:30]) == pytest.approx(ref, rel=1e-9)


def test_fit_latents_skips_the_encoder(ae, small):
    z = gen.encode(ae, small.x_train)
    a = gen.LatentKDE(ae, bandwidth=0.2).fit(small.x_train)
    b = gen.LatentKDE(ae, bandwidth=0.2).fit_latents(z)
    np.testing.assert_array_equal(a.sample(15, 0), b.sample(15, 0))


# ---- the real models of mnistlab.models (untrained weights: shapes and seeds only) ---------------


def test_generators_on_the_real_autoencoder_and_vae(small):
    torch.manual_seed(0)
    ae_model = models.get_model("ae", latent_dim=4)
    vae = models.get_model("vae", latent_dim=4)
    x = small.x_train[:120]
    gens = [
        gen.LatentKDE(ae_model, bandwidth="scott").fit(x),
        gen.LatentGMM(ae_model, n_components=2).fit(x),
        gen.ClassConditionalGaussian(ae_model).fit(x, small.y_train[:120]),
        gen.LatentGMM(vae, n_components=2).fit(x),
        gen.VAEPrior(vae).fit(),
    ]
    assert gens[-1].latent_dim_ == 4
    for g in gens:
        a = g.sample(16, random_state=0)
        assert a.shape == (16, 28, 28) and a.dtype == np.float32
        assert a.min() >= 0 and a.max() <= 1
        np.testing.assert_array_equal(a, g.sample(16, random_state=0))
        assert not np.array_equal(a, g.sample(16, random_state=1))
        assert np.isfinite(g.loglik(small.x_test[:20]))


# ---- bad input -----------------------------------------------------------------------------


def _nan_images(small):
    x = small.x_train[:10].astype(np.float32) / 255
    x[3, 4, 5] = np.nan
    return x


@pytest.mark.parametrize(
    "make_x",
    [
        _nan_images,
        lambda s: s.x_train[:10, :27, :],  # wrong shape
        lambda s: s.x_train[:0],  # empty
        lambda s: s.x_train[:10].astype(np.float32),  # floats in [0, 255]
        lambda s: s.x_train[:10].astype(np.int64) * 2,  # integers beyond 255
        lambda s: None,
    ],
)
@pytest.mark.parametrize("name", ["pixel-kde", "pca-kde", "latent-kde", "class-gaussians"])
def test_bad_images_raise_data_error(name, make_x, ae, small):
    with pytest.raises(DataError):
        FACTORIES[name](ae).fit(make_x(small), small.y_train[:10])


@pytest.mark.parametrize("n", [0, -1, 2.5, True, None])
def test_bad_sample_sizes_raise_value_error(n, small):
    est = gen.PixelKDE(0.1).fit(small.x_train[:50])
    with pytest.raises(ValueError):
        est.sample(n, random_state=0)


def test_bad_settings_raise(ae, small):
    x, y = small.x_train[:100], small.y_train[:100]
    est = gen.PixelKDE(0.1).fit(x)
    with pytest.raises(ValueError):
        est.sample(5, random_state=None)  # a seed must be explicit
    for bad in (-1.0, 0.0, float("nan"), "wide"):
        broken = gen.PCAKDE(n_components=4, bandwidth=bad)
        with pytest.raises(ValueError):
            broken.fit(x)
        assert not [k for k in vars(broken) if k.endswith("_")]  # left unfitted
    with pytest.raises(ValueError):
        gen.PCAKDE(n_components=0).fit(x)
    with pytest.raises(ValueError):
        gen.ClassConditionalGaussian(ae).fit(x)  # no labels
    with pytest.raises(DataError):
        gen.ClassConditionalGaussian(ae).fit(x, y[:50])
    ccg = gen.ClassConditionalGaussian(ae).fit(x, y)
    with pytest.raises(ValueError):
        ccg.sample(5, random_state=0, digit=11)
    with pytest.raises(DataError):
        gen.scott(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(DataError):
        gen.bandwidth_grid(np.ones(5))  # not (n_samples, n_features)
    with pytest.raises(ValueError):
        gen.cv_bandwidth(np.random.default_rng(0).normal(size=(50, 2)), [-1.0], 0)


def test_latent_gaussian_is_numpys_eigh_gaussian_with_a_ridge(rng):
    """Ten codes in 8 dimensions: np.cov (N - 1) plus 1e-3 of the mean variance on the diagonal,
    and samples equal to numpy's multivariate_normal(method="eigh") to the last bit."""
    z = (rng.normal(size=(10, 8)) * [1, 2, 3, 4, 5, 6, 7, 8]).astype(np.float32)
    est = gen.LatentGaussian(None).fit_latents(z)
    cov = np.cov(z, rowvar=False)
    expected = cov + 1e-3 * np.trace(cov) / 8 * np.eye(8)
    np.testing.assert_allclose(est.covariance_, expected, rtol=1e-12)
    np.testing.assert_allclose(est.factor_ @ est.factor_.T, expected, rtol=1e-9, atol=1e-12)
    assert np.linalg.eigvalsh(est.covariance_).min() > 0  # 10 codes, yet every direction lives
    reference = np.random.default_rng(7).multivariate_normal(
        z.mean(0), expected, size=300, method="eigh"
    )
    np.testing.assert_array_equal(est.sample_latents(300, 7), reference.astype(np.float32))
    # Many samples: the mean and covariance come back.
    many = est.sample_latents(200_000, 1).astype(np.float64)
    sd = np.sqrt(np.diag(expected))  # sampling errors: sd_i / 450 and about sd_i sd_j / 300
    assert (np.abs(many.mean(0) - z.mean(0)) < 0.02 * sd).all()
    assert (np.abs(np.cov(many, rowvar=False) - expected) < 0.02 * np.outer(sd, sd)).all()
    with pytest.raises(DataError):
        gen.LatentGaussian(None).fit_latents(z[:1])  # one code has no spread
