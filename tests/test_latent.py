"""The latent study: its pieces on small real data, and ``study latent --quick`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlab import data as mdata
from mnistlab.studies import latent


@pytest.fixture(scope="module")
def pixels(small):
    """Small real MNIST as float pixels: train (600, 784), test (200, 784), and the labels."""
    xtr = mdata.to_float(small.x_train).reshape(len(small.x_train), -1)
    xte = mdata.to_float(small.x_test).reshape(len(small.x_test), -1)
    return xtr, small.y_train.astype(np.int64), xte, small.y_test.astype(np.int64)


@pytest.fixture(scope="module")
def pca_codes(pixels):
    """A 16-d stand-in latent: PCA codes of the small real digits (no training needed)."""
    from sklearn.decomposition import PCA

    xtr, ytr, xte, yte = pixels
    pca = PCA(16, random_state=0).fit(xtr)
    return pca.transform(xtr), ytr, pca.transform(xte), yte


# ---- reconstruction metrics against a direct computation ----------------------------------------


def test_reconstruction_errors_match_direct_numpy(small):
    x = small.x_test[:6]  # uint8 (6, 28, 28)
    rng = np.random.default_rng(0)
    target = x.astype(np.float64) / 255.0
    recon = np.clip(target + rng.normal(0, 0.1, target.shape), 0.0, 1.0).astype(np.float32)
    err = latent.reconstruction_errors(x, recon)

    diff = target - recon.astype(np.float64)
    mse = (diff**2).reshape(6, -1).mean(1)
    p = np.clip(recon.astype(np.float64), np.exp(-100), 1.0)
    q = np.clip(1.0 - recon.astype(np.float64), np.exp(-100), 1.0)
    bce = -(target * np.log(p) + (1 - target) * np.log(q)).reshape(6, -1).mean(1)
    np.testing.assert_allclose(err["mse"], mse, rtol=1e-5)
    np.testing.assert_allclose(err["bce"], bce, rtol=1e-4)
    np.testing.assert_allclose(err["psnr"], 10 * np.log10(1.0 / mse), rtol=1e-4)
    assert np.all((err["ssim"] > 0) & (err["ssim"] < 1))
    # A perfect reconstruction: SSIM 1, MSE 0.
    same = latent.reconstruction_errors(x, target.astype(np.float32))
    np.testing.assert_allclose(same["ssim"], 1.0, atol=1e-4)
    np.testing.assert_allclose(same["mse"], 0.0, atol=1e-10)
    # Noisier reconstructions score worse on every metric.
    worse = np.clip(target + rng.normal(0, 0.3, target.shape), 0, 1).astype(np.float32)
    bad = latent.reconstruction_errors(x, worse)
    assert np.all(bad["mse"] > err["mse"]) and np.all(bad["ssim"] < err["ssim"])
    assert np.all(bad["psnr"] < err["psnr"])


def test_per_class_means_and_error_examples():
    labels = np.array([0, 0, 1, 1, 1, 2])
    values = {"mse": np.array([1.0, 3.0, 2.0, 4.0, 6.0, 5.0])}
    rows = latent.per_class(values, labels)
    assert [r["digit"] for r in rows] == [0, 1, 2]
    assert [r["n"] for r in rows] == [2, 3, 1]
    assert [r["mse"] for r in rows] == [2.0, 4.0, 5.0]
    ex = latent.error_examples(values["mse"], 2, random_state=0)
    assert ex["highest"].tolist() == [4, 5] and ex["lowest"].tolist() == [0, 2]
    assert len(set(ex["random"].tolist())) == 2
    assert latent.error_examples(values["mse"], 2, 0)["random"].tolist() == ex["random"].tolist()


# ---- projections --------------------------------------------------------------------------------


def test_lda_projection_shapes_and_separation(pca_codes):
    ztr, ytr, zte, yte = pca_codes
    pts3, ratio = latent.lda_project(ztr, ytr, zte, 3)
    assert pts3.shape == (len(zte), 3) and ratio.shape == (3,)
    assert 0 < ratio.sum() <= 1
    pts2, _ = latent.lda_project(ztr, ytr, zte, 2)
    assert pts2.shape == (len(zte), 2)
    # LDA uses the labels: the digits are far better separated than in a random 2-d projection.
    rand = zte @ np.random.default_rng(0).normal(size=(zte.shape[1], 2))
    assert latent.label_silhouette(pts2, yte) > latent.label_silhouette(rand, yte) + 0.05
    with pytest.raises(ValueError, match="at most 2"):
        latent.lda_project(ztr[:, :2], ytr, zte[:, :2], 3)


def test_pca_tsne_umap_embeddings_are_seeded(pca_codes):
    _, _, zte, yte = pca_codes
    z = zte[:150]
    assert latent.pca_project(zte, z, 3, seed=0).shape == (150, 3)
    t1 = latent.tsne_embed(z, seed=0, max_iter=250)
    t2 = latent.tsne_embed(z, seed=0, max_iter=250)
    assert t1.shape == (150, 2) and np.isfinite(t1).all()
    np.testing.assert_allclose(t1, t2)
    u1, u2 = latent.umap_embed(z, seed=0), latent.umap_embed(z, seed=0)
    assert u1.shape == (150, 2)
    np.testing.assert_allclose(u1, u2)
    # UMAP keeps real digits of one class together better than chance.
    assert latent.label_silhouette(u1, yte[:150]) > 0.0


# ---- clusters -----------------------------------------------------------------------------------


def test_clusters_recover_well_separated_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(10, 5))
    y = np.repeat(np.arange(10), 60)
    z = centres[y] + rng.normal(0, 0.3, size=(len(y), 5))
    res = latent.cluster_latents(z, y, seed=0)
    assert res["k-means"].ari > 0.95 and res["k-means"].nmi > 0.95
    assert res["k-means"].n_clusters == 10
    assert res["HDBSCAN"].ari_clustered > 0.9
    assert res["DBSCAN"].params["min_samples"] == 10  # max(5, 2 * 5)
    # Centres come back in latent units (not standardised): close to the true blob centres.
    km = res["k-means"]
    err = [np.linalg.norm(km.centers - c, axis=1).min() for c in centres]
    assert max(err) < 0.5
    assert sorted(km.majority) == list(range(10)) and min(km.purity) > 0.95


def test_clusters_on_real_latents_beat_chance(pca_codes):
    _, _, zte, yte = pca_codes
    res = latent.cluster_latents(zte, yte, seed=0)
    assert res["k-means"].ari > 0.2  # random labels give ~0
    shuffled = latent.cluster_latents(zte, np.random.default_rng(1).permutation(yte), seed=0)
    assert shuffled["k-means"].ari < 0.05
    for c in res.values():
        assert c.labels.shape == (len(zte),) and 0 <= c.noise_share <= 1


def test_knee_eps_finds_the_jump():
    # 95 points at k-distance ~1 and 5 far outliers: the knee is at the end of the flat part.
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 0.2, size=(95, 2))
    far = rng.normal(0, 1, size=(5, 2)) + 50
    eps, kd = latent.knee_eps(np.vstack([dense, far]), min_samples=4)
    assert np.all(np.diff(kd) >= 0)
    assert kd[0] <= eps < 5.0  # inside the dense part, below the outliers' distances


def test_outliers_are_noise_points_far_from_centres():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    z = np.where(y[:, None] == 0, -5.0, 5.0) + rng.normal(0, 0.3, (200, 2))
    z[0] = [0.0, 40.0]  # a far outlier
    res = latent.cluster_latents(z, y, seed=0)
    idx, near = latent.outlier_index(res["HDBSCAN"], z, 3)
    assert idx[0] == 0 and res["HDBSCAN"].labels[0] == -1
    assert near.shape == idx.shape


# ---- probes -------------------------------------------------------------------------------------


def test_linear_probes_on_real_codes(pca_codes, pixels):
    ztr, ytr, zte, yte = pca_codes
    for probe in latent.PROBES:
        res = latent.linear_probe(ztr, ytr, zte, yte, probe, features="pca16", seed=0)
        assert res.accuracy > 0.7  # chance is 0.1
        assert res.confusion.shape == (10, 10) and res.confusion.sum() == len(yte)
        assert np.trace(res.confusion) / len(yte) == pytest.approx(res.accuracy)
        assert set(map(str, range(10))) <= set(res.report)
        assert res.report["macro avg"]["f1-score"] > 0.6
    # Labels that carry no information give chance accuracy: the probe can fail.
    shuffled = np.random.default_rng(0).permutation(ytr)
    bad = latent.linear_probe(ztr, shuffled, zte, yte, "logreg", seed=0)
    assert bad.accuracy < 0.3
    with pytest.raises(ValueError, match="probe must be"):
        latent.linear_probe(ztr, ytr, zte, yte, "mlp")


# ---- brief 001 ----------------------------------------------------------------------------------


class _PCAModel:
    """A stand-in "autoencoder" whose codes are PCA components (encode/decode in torch)."""

    def __init__(self, pixels_train: np.ndarray, d: int) -> None:
        import torch
        from sklearn.decomposition import PCA

        pca = PCA(d, random_state=0).fit(pixels_train)
        self.mean = torch.tensor(pca.mean_, dtype=torch.float32)
        self.comp = torch.tensor(pca.components_, dtype=torch.float32)  # (d, 784)
        self.training = False

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def encode(self, x):  # (B, 1, 28, 28) -> (B, d)
        return (x.flatten(1) - self.mean) @ self.comp.T

    def decode(self, z):  # (B, d) -> (B, 1, 28, 28)
        return (z @ self.comp + self.mean).clamp(0, 1).reshape(-1, 1, 28, 28)


class _PixelJudge:
    """A stand-in judge: nearest class mean in pixel space, as softmax-like probabilities."""

    def __init__(self, pixels_train: np.ndarray, y: np.ndarray) -> None:
        import torch

        self.means = torch.tensor(
            np.stack([pixels_train[y == d].mean(0) for d in range(10)]), dtype=torch.float32
        )
        self.training = False

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def features(self, x):
        return x.flatten(1)

    def head(self, f):
        return -20 * ((f[:, None, :] - self.means[None]) ** 2).mean(2)


def test_conditional_experiment_on_real_codes(pixels):
    xtr, ytr, xte, yte = pixels
    model = _PCAModel(xtr, 16)
    judge = _PixelJudge(xtr, ytr)
    from mnistlab import models

    ztr, zte = models.encode(model, xtr), models.encode(model, xte)
    res = latent.conditional_experiment(model, ztr, ytr, zte, yte, judge, 30, seed=0)
    assert res["counts"].sum() == 300 and res["matrix"].shape == (10, 10)
    assert res["matrix"].sum(1).tolist() == [30] * 10
    assert res["accuracy"] == pytest.approx(np.trace(res["matrix"]) / 300)
    assert res["accuracy"] > 0.3  # class Gaussians in a real code space hit their class often
    assert 0 < res["diversity"] <= 1 and res["top_share"] >= 0.1
    assert res["pooled_counts"].sum() == 300
    assert 0.3 < res["gaussian_classifier_accuracy"] <= 1
    assert res["samples"].shape == (100, 28, 28) and res["mean_images"].shape == (10, 28, 28)
    again = latent.conditional_experiment(model, ztr, ytr, zte, yte, judge, 30, seed=0)
    assert again["counts"].tolist() == res["counts"].tolist()


# ---- config and the CLI end to end --------------------------------------------------------------


def test_config_quick_preset_and_validation():
    q = latent.LatentConfig.for_quick(seed=3, latent_dims=None)
    assert q.quick and q.latent_dims == (2, 16) and q.seed == 3 and q.fit_images == 5_000
    assert latent.LatentConfig(latent_dims=(16, 2, 16)).latent_dims == (2, 16)
    assert latent.headline_dim(latent.LatentConfig(latent_dims=(2, 8, 32))) == 8
    with pytest.raises(ValueError):
        latent.LatentConfig(latent_dims=(0,))


def test_cli_rejects_bad_latent_dims(tmp_path, capsys):
    from mnistlab.cli import main

    code = main(["study", "latent", "--latent-dims", "2,x", "--out", str(tmp_path)])
    assert code != 0
    assert "latent-dims" in capsys.readouterr().err.lower() or code == 2
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path):
    from mnistlab.cli import main

    out = tmp_path / "latent"
    assert main(["study", "latent", "--quick", "--out", str(out), "--no-progress"]) == 0
    report, metrics_path = out / "report.html", out / "metrics.json"
    assert report.is_file() and metrics_path.is_file()
    m = json.loads(metrics_path.read_text())
    assert m["study"] == "latent" and m["config"]["quick"] is True
    assert set(m["spaces"]) == {"ae 2-d", "ae 16-d", "vae 2-d", "vae 16-d", "sae 16-d"}
    # The supervised autoencoder's code is trained with the labels: its probe beats the plain
    # autoencoder's, and the verdict names it as the labelled reference.
    sae_acc = m["spaces"]["sae 16-d"]["probes"]["logreg"]["accuracy"]
    assert sae_acc > m["spaces"]["ae 16-d"]["probes"]["logreg"]["accuracy"]
    assert "supervised autoencoder" in m["verdict"]["Linear probes"]
    s = m["spaces"]["ae 16-d"]
    assert set(s["reconstruction"]) >= {"mse", "bce", "psnr", "ssim", "judge_accuracy"}
    assert len(s["reconstruction_per_class"]) == 10
    assert set(s["projections"]) >= {"PCA 2-D", "LDA 2-D", "LDA 3-D", "t-SNE", "UMAP"}
    assert set(s["clusters"]) == {"k-means", "DBSCAN", "HDBSCAN"}
    assert set(s["probes"]) == {"logreg", "linear_svm"}
    assert s["probes"]["logreg"]["accuracy"] > 0.5  # even 2 epochs on 5,000 digits: >> chance
    assert len(s["probes"]["logreg"]["confusion_matrix"]) == 10
    assert 0 <= s["conditional"]["accuracy"] <= 1 and sum(s["conditional"]["counts"]) > 0
    assert set(m["baselines"]) == {
        "raw pixels logreg", "raw pixels linear_svm", "PCA logreg", "PCA linear_svm",
    }  # fmt: skip
    assert "Verdict" in m["verdict"] and m["seconds"] > 0
    for name in ("reconstruction.csv", "clusters.csv", "probes.csv", "conditional.csv"):
        assert (out / name).is_file()
    assert list((out / "figures").glob("*.png"))
    html = report.read_text()
    assert "LDA 3-D" in html and "plotly" in html

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(report)
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures > 0 and check.rendered == check.figures, check.problems
    assert check.n_plotly >= 3  # the per-digit error curve and the two 16-d LDA 3-D plots
