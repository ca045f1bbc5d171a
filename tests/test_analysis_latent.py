"""``mnistlab.analysis``'s latent-space tools on small real data: projections, clusters, probes,
reconstruction errors (with ``metrics.reconstruction``)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mnistlab import data as mdata
from mnistlab import metrics
from mnistlab.analysis import clustering, probes, projections, reconstruction


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


# ---- reconstruction errors ----------------------------------------------------------------------


def test_reconstruction_per_image_matches_direct_numpy(small):
    x = small.x_test[:6]  # uint8 (6, 28, 28)
    rng = np.random.default_rng(0)
    target = x.astype(np.float64) / 255.0
    recon = np.clip(target + rng.normal(0, 0.1, target.shape), 0.0, 1.0).astype(np.float32)
    err = metrics.reconstruction(x, recon, per_image=True)

    diff = target - recon.astype(np.float64)
    mse = (diff**2).reshape(6, -1).mean(1)
    p = np.clip(recon.astype(np.float64), np.exp(-100), 1.0)
    q = np.clip(1.0 - recon.astype(np.float64), np.exp(-100), 1.0)
    bce = -(target * np.log(p) + (1 - target) * np.log(q)).reshape(6, -1).mean(1)
    assert all(v.shape == (6,) for v in err.values())
    np.testing.assert_allclose(err["mse"], mse, rtol=1e-5)
    np.testing.assert_allclose(err["bce"], bce, rtol=1e-4)
    np.testing.assert_allclose(err["psnr"], 10 * np.log10(1.0 / mse), rtol=1e-4)
    assert np.all((err["ssim"] > 0) & (err["ssim"] < 1))
    # Without per_image: the same numbers averaged, as floats.
    means = metrics.reconstruction(x, recon)
    assert means == pytest.approx({k: float(v.mean()) for k, v in err.items()}, rel=1e-12)
    # A perfect reconstruction: SSIM 1, MSE 0.
    same = metrics.reconstruction(x, target.astype(np.float32), per_image=True)
    np.testing.assert_allclose(same["ssim"], 1.0, atol=1e-4)
    np.testing.assert_allclose(same["mse"], 0.0, atol=1e-10)
    # Noisier reconstructions score worse on every metric.
    worse = np.clip(target + rng.normal(0, 0.3, target.shape), 0, 1).astype(np.float32)
    bad = metrics.reconstruction(x, worse, per_image=True)
    assert np.all(bad["mse"] > err["mse"]) and np.all(bad["ssim"] < err["ssim"])
    assert np.all(bad["psnr"] < err["psnr"])


def test_per_class_means_and_error_examples():
    labels = np.array([0, 0, 1, 1, 1, 2])
    values = {"mse": np.array([1.0, 3.0, 2.0, 4.0, 6.0, 5.0])}
    rows = reconstruction.per_class(values, labels)
    assert [r["digit"] for r in rows] == [0, 1, 2]
    assert [r["n"] for r in rows] == [2, 3, 1]
    assert [r["mse"] for r in rows] == [2.0, 4.0, 5.0]
    ex = reconstruction.error_examples(values["mse"], 2, random_state=0)
    assert ex["highest"].tolist() == [4, 5] and ex["lowest"].tolist() == [0, 2]
    assert len(set(ex["random"].tolist())) == 2
    again = reconstruction.error_examples(values["mse"], 2, 0)
    assert again["random"].tolist() == ex["random"].tolist()
    # More examples asked for than there are images: every image, once.
    assert sorted(reconstruction.error_examples(values["mse"], 10, 0)["random"]) == list(range(6))


# ---- projections --------------------------------------------------------------------------------


def test_one_thread_runs_blas_on_one_thread():
    @projections.one_thread
    def threads():
        return {p["num_threads"] for p in threadpool_info()}

    assert threads() <= {1}
    assert threads.__name__ == "threads"


def test_lda_projection_shapes_and_separation(pca_codes):
    ztr, ytr, zte, yte = pca_codes
    pts3, ratio = projections.lda_project(ztr, ytr, zte, 3)
    assert pts3.shape == (len(zte), 3) and ratio.shape == (3,)
    assert 0 < ratio.sum() <= 1
    pts2, _ = projections.lda_project(ztr, ytr, zte, 2)
    assert pts2.shape == (len(zte), 2)
    # LDA uses the labels: the digits are far better separated than in a random 2-d projection.
    rand = zte @ np.random.default_rng(0).normal(size=(zte.shape[1], 2))
    sil = projections.label_silhouette
    assert sil(pts2, yte) > sil(rand, yte) + 0.05
    with pytest.raises(ValueError, match="at most 2"):
        projections.lda_project(ztr[:, :2], ytr, zte[:, :2], 3)


def test_pca_projection_is_the_leading_principal_components(pca_codes):
    ztr, _, zte, _ = pca_codes
    pts = projections.pca_project(ztr, zte, 2, seed=0)
    centred = ztr - ztr.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = (zte - ztr.mean(0)) @ vt[:2].T  # up to the sign of each component
    np.testing.assert_allclose(np.abs(pts), np.abs(expected), rtol=1e-3, atol=1e-3)


def test_tsne_umap_embeddings_are_seeded(pca_codes):
    _, _, zte, yte = pca_codes
    z = zte[:150]
    t1 = projections.tsne_embed(z, seed=0, max_iter=250)
    t2 = projections.tsne_embed(z, seed=0, max_iter=250)
    assert t1.shape == (150, 2) and np.isfinite(t1).all()
    np.testing.assert_allclose(t1, t2)
    u1, u2 = projections.umap_embed(z, seed=0), projections.umap_embed(z, seed=0)
    assert u1.shape == (150, 2)
    np.testing.assert_allclose(u1, u2)
    # UMAP keeps real digits of one class together better than chance.
    assert projections.label_silhouette(u1, yte[:150]) > 0.0


# ---- clusters -----------------------------------------------------------------------------------


def test_clusters_recover_well_separated_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(10, 5))
    y = np.repeat(np.arange(10), 60)
    z = centres[y] + rng.normal(0, 0.3, size=(len(y), 5))
    res = clustering.cluster_latents(z, y, seed=0)
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
    res = clustering.cluster_latents(zte, yte, seed=0)
    assert res["k-means"].ari > 0.2  # random labels give ~0
    shuffled = clustering.cluster_latents(zte, np.random.default_rng(1).permutation(yte), seed=0)
    assert shuffled["k-means"].ari < 0.05
    for c in res.values():
        assert c.labels.shape == (len(zte),) and 0 <= c.noise_share <= 1


def test_score_clusters_by_hand():
    y = np.array([3, 3, 3, 5, 5, 5, 5, 7])
    labels = np.array([0, 0, 1, 1, 1, 1, -1, -1])  # cluster 0: two 3s; cluster 1: a 3, three 5s
    z = np.arange(16, dtype=np.float64).reshape(8, 2)
    res = clustering.score_clusters("hand", labels, y, z, {"k": 2})
    assert res.n_clusters == 2 and res.noise_share == 0.25
    assert res.majority == [3, 5] and res.purity == [1.0, 0.75]
    np.testing.assert_allclose(res.centers, [z[:2].mean(0), z[2:6].mean(0)])
    assert res.ari < 1 and res.params == {"k": 2}
    # The labels themselves as clusters: a perfect score, with or without the noise.
    perfect = clustering.score_clusters("labels", y, y, z, {})
    assert perfect.ari == perfect.nmi == perfect.ari_clustered == 1.0
    # No clusters: no centres, all noise, the clustered scores undefined.
    none = clustering.score_clusters("none", np.full(8, -1), y, z, {})
    assert none.n_clusters == 0 and none.centers.shape == (0, 2) and none.noise_share == 1
    assert np.isnan(none.ari_clustered)


def test_largest_share_counts_noise_in_the_total():
    assert clustering.largest_share(np.array([0, 0, 0, 1, -1, -1])) == 0.5
    assert clustering.largest_share(np.array([-1, -1])) == 0.0


def test_knee_eps_finds_the_jump():
    # 95 points at k-distance ~1 and 5 far outliers: the knee is at the end of the flat part.
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 0.2, size=(95, 2))
    far = rng.normal(0, 1, size=(5, 2)) + 50
    eps, kd = clustering.knee_eps(np.vstack([dense, far]), min_samples=4)
    assert np.all(np.diff(kd) >= 0)
    assert kd[0] <= eps < 5.0  # inside the dense part, below the outliers' distances


def test_outliers_are_noise_points_far_from_centres():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    z = np.where(y[:, None] == 0, -5.0, 5.0) + rng.normal(0, 0.3, (200, 2))
    z[0] = [0.0, 40.0]  # a far outlier
    res = clustering.cluster_latents(z, y, seed=0)
    idx, near = clustering.outlier_index(res["HDBSCAN"], z, 3)
    assert idx[0] == 0 and res["HDBSCAN"].labels[0] == -1
    assert near.shape == idx.shape


# ---- probes -------------------------------------------------------------------------------------


def test_linear_probes_on_real_codes(pca_codes):
    ztr, ytr, zte, yte = pca_codes
    for probe in probes.PROBES:
        res = probes.linear_probe(ztr, ytr, zte, yte, probe, features="pca16", seed=0)
        assert res.accuracy > 0.7  # chance is 0.1
        assert res.confusion.shape == (10, 10) and res.confusion.sum() == len(yte)
        assert np.trace(res.confusion) / len(yte) == pytest.approx(res.accuracy)
        assert set(map(str, range(10))) <= set(res.report)
        assert res.report["macro avg"]["f1-score"] > 0.6
        assert res.n_features == 16 and res.features == "pca16"
    # Labels that carry no information give chance accuracy: the probe can fail.
    shuffled = np.random.default_rng(0).permutation(ytr)
    bad = probes.linear_probe(ztr, shuffled, zte, yte, "logreg", seed=0)
    assert bad.accuracy < 0.3
    with pytest.raises(ValueError, match="probe must be"):
        probes.linear_probe(ztr, ytr, zte, yte, "mlp")


def test_baseline_probes_on_pixels_and_pca(small):
    x, y = small.x_train, small.y_train.astype(np.int64)
    xt, yt = small.x_test, small.y_test.astype(np.int64)
    out = probes.baseline_probes(x, y, xt, yt, pixel_train=300, pca_components=20, seed=0)
    assert set(out) == {
        "raw pixels logreg",
        "raw pixels linear_svm",
        "PCA logreg",
        "PCA linear_svm",
    }
    raw, pca = out["raw pixels logreg"], out["PCA logreg"]
    assert raw.n_train == 300 and raw.n_features == 784 and raw.features == "raw pixels"
    assert pca.n_train == len(x) and pca.n_features == 20
    assert pca.features == "PCA 20 components"
    assert all(r.accuracy > 0.6 and r.n_test == len(xt) for r in out.values())


def test_probe_differences_are_judged_against_their_spread(small):
    """A paired bootstrap over the same test digits: pixels against pixels with half the columns
    hidden differ beyond the spread; a probe against itself does not differ at all."""
    from mnistlab import data as mdata
    from mnistlab.analysis import probes

    xtr = mdata.to_float(small.x_train).reshape(len(small.x_train), -1)
    xte = mdata.to_float(small.x_test).reshape(len(small.x_test), -1)
    full = probes.linear_probe(xtr, small.y_train, xte, small.y_test, "logreg")
    hidden = probes.linear_probe(xtr[:, :200], small.y_train, xte[:, :200], small.y_test, "logreg")
    lo, hi = probes.difference_interval(full, hidden)
    assert lo > 0 and lo < full.accuracy - hidden.accuracy < hi
    assert probes.difference_interval(full, full) == (0.0, 0.0)
    a, b = full.interval
    assert a < full.accuracy < b
