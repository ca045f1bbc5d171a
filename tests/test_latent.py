"""The latent study: its verdicts on made-up results, brief 001's experiment on small real data,
and ``study latent --quick`` end to end."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from mnistlab import data as mdata
from mnistlab import generators
from mnistlab.analysis.clustering import ClusterResult
from mnistlab.analysis.probes import ProbeResult
from mnistlab.studies import latent, scaffold


@pytest.fixture(scope="module")
def pixels(small):
    """Small real MNIST as float pixels: train (600, 784), test (200, 784), and the labels."""
    xtr = mdata.to_float(small.x_train).reshape(len(small.x_train), -1)
    xte = mdata.to_float(small.x_test).reshape(len(small.x_test), -1)
    return xtr, small.y_train.astype(np.int64), xte, small.y_test.astype(np.int64)


# ---- verdicts on made-up results ----------------------------------------------------------------


def _probe(accuracy: float) -> ProbeResult:
    report = {"macro avg": {"precision": accuracy, "recall": accuracy, "f1-score": accuracy}}
    return ProbeResult("made up", "logreg", accuracy, report, np.eye(10), 100, 100, 16, True, 0.0)


def _clusters(ari: float) -> dict[str, ClusterResult]:
    def one(method: str, ari: float) -> ClusterResult:
        labels = np.repeat(np.arange(10), 10)  # ten clusters of ten, no noise
        return ClusterResult(method, labels, ari, ari, ari, ari, 10, 0.0, {}, np.zeros((10, 2)),
                             list(range(10)), [1.0] * 10)  # fmt: skip

    return {
        "k-means": one("k-means", ari),
        "DBSCAN": one("DBSCAN", 0.1),
        "HDBSCAN": one("HDBSCAN", 0.2),
    }


def _conditional(collapse: bool) -> dict:
    matrix = 90 * np.eye(10, dtype=np.int64) + 1  # rows: intended digit, columns: judged
    if collapse:
        matrix[:, 2] += 200  # most samples read as 2
    counts = matrix.sum(0)
    return {
        "counts": counts,
        "matrix": matrix,
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "top_share": float(counts.max() / counts.sum()),
        "top_class": int(counts.argmax()),
        "diversity": 0.9,
        "quality": 0.8,
        "mean_judged": np.arange(10),
        "gaussian_classifier_accuracy": 0.9,
        "pooled_top_share": 0.15,
        "pooled_top_class": 1,
        "pooled_diversity": 0.95,
        "pooled_counts": np.full(10, 100),
        "pooled_quality": 0.7,
    }


def _space(model, dim, *, mse=0.03, probe=0.9, ari=0.5, umap=0.3, collapse=False):
    per_class = [{"digit": d, "mse": mse * (1 + d / 10)} for d in range(10)]
    return latent.SpaceResult(
        model=model,
        dim=dim,
        meta={},
        recon={"mse": mse, "bce": 0.1, "psnr": 15.0, "ssim": 0.5, "judge_accuracy": 0.9},
        recon_per_class=per_class,
        errors={"mse": np.full(100, mse)},
        gallery=np.zeros((10, 28, 28)),
        examples={},
        projections={},
        projection_scores={"UMAP": {"silhouette": umap}, "LDA 2-D": {"silhouette": umap / 2}},
        clusters=_clusters(ari),
        cluster_info={},
        outliers={k: np.zeros(3) for k in latent.OUTLIER_KEYS},
        probes={"logreg": _probe(probe), "linear_svm": _probe(probe - 0.01)},
        conditional=_conditional(collapse),
    )


def _result(*spaces, dims=(7, 16)) -> latent.LatentResult:
    return latent.LatentResult(
        config=latent.LatentConfig(latent_dims=dims),
        data_source="made up",
        data_checksum="0",
        judge={},
        n_eval=100,
        gallery_index=np.arange(10),
        gallery_images=np.zeros((10, 28, 28), np.uint8),
        embed_index=np.arange(50),
        scatter_index=np.arange(50),
        cluster_index=np.arange(50),
        labels=np.repeat(np.arange(10), 10),
        spaces=list(spaces),
        baselines={"raw pixels logreg": _probe(0.92), "PCA logreg": _probe(0.93)},
        seconds=1.0,
    )


def _findings(result: latent.LatentResult) -> dict[str, str]:
    return scaffold.findings(latent.verdicts(result))


QUESTIONS = [
    "Verdict",
    "Reconstruction",
    "Linear probes",
    "Clusters",
    "Projections",
    latent.COLLAPSE_QUESTION,
]


def test_verdicts_ask_the_same_questions_in_order():
    res = _result(_space("ae", 16), _space("vae", 16))
    got = latent.verdicts(res)
    assert [v.question for v in got] == QUESTIONS
    for v in got:
        assert v.answer and v.finding and not re.search(r"\d\.\d", v.finding)  # no figures
    assert latent.verdicts(_result()) == []


def test_reconstruction_finding_follows_the_mse():
    good_ae = _result(_space("ae", 16, mse=0.02), _space("vae", 16, mse=0.04))
    good_vae = _result(_space("ae", 16, mse=0.04), _space("vae", 16, mse=0.02))
    assert _findings(good_ae)["Reconstruction"] == "ae 16-d"
    assert _findings(good_vae)["Reconstruction"] == "vae 16-d"
    answer = latent.reconstruction_verdict(good_ae.spaces).answer
    assert answer.startswith("The ae 16-d reconstructs best (test MSE 0.0200")
    assert "9 is the hardest digit" in answer and "0 the easiest" in answer


def test_probe_target_met_or_missed():
    met = _result(_space("ae", 16, probe=0.985), _space("vae", 16))
    missed = _result(_space("ae", 16, probe=0.95), _space("vae", 16))
    assert _findings(met)["Linear probes"] == "target met"
    assert _findings(missed)["Linear probes"] == "target missed"
    assert "missed by 0.0300" in scaffold.answers(_metrics(missed))["Linear probes"]
    assert _findings(_result(_space("ae", 7), _space("vae", 7)))["Linear probes"] == "not measured"


def test_the_supervised_space_is_a_reference_not_a_winner():
    res = _result(
        _space("ae", 16, probe=0.9), _space("vae", 16, probe=0.8), _space("sae", 16, probe=0.99)
    )
    assert "classification: ae 16-d" in _findings(res)["Verdict"]
    probe = {v.question: v.answer for v in latent.verdicts(res)}["Linear probes"]
    assert "supervised autoencoder's 16-d code" in probe and "0.9900" in probe


def test_cluster_and_projection_findings_follow_the_scores():
    a = _result(_space("ae", 16, ari=0.7, umap=0.2), _space("vae", 16, ari=0.4, umap=0.5))
    b = _result(_space("ae", 16, ari=0.4, umap=0.5), _space("vae", 16, ari=0.7, umap=0.2))
    assert _findings(a)["Clusters"] == "k-means on the ae 16-d"
    assert _findings(b)["Clusters"] == "k-means on the vae 16-d"
    assert _findings(a)["Projections"] == "vae 16-d" and _findings(b)["Projections"] == "ae 16-d"


def test_collapse_finding_is_yes_partly_or_no():
    def finding(ae: bool, vae: bool) -> str:
        res = _result(
            _space("ae", 7, collapse=ae),
            _space("vae", 7, collapse=vae),
            _space("ae", 16, collapse=True),
        )
        return _findings(res)[latent.COLLAPSE_QUESTION]

    assert finding(False, False) == "no"
    assert finding(True, False) == "partly"
    assert finding(True, True) == "yes"
    # The 16-d space collapses too, but brief 001's question is asked of the 7-d latents.
    no = _result(_space("ae", 7), _space("vae", 7), _space("ae", 16, collapse=True))
    answer = {v.question: v.answer for v in latent.verdicts(no)}[latent.COLLAPSE_QUESTION]
    assert "So the samples do not collapse" in answer and "ae 16-d" in answer


def _metrics(result: latent.LatentResult) -> dict:
    return scaffold.envelope("latent", result, latent.verdicts(result), latent.numbers(result))


def test_numbers_and_tables_of_a_made_up_result():
    res = _result(_space("ae", 16), _space("vae", 16))
    body = latent.numbers(res)
    assert set(body["spaces"]) == {"ae 16-d", "vae 16-d"} and body["data"]["n_eval"] == 100
    tables = latent.tables(res)
    assert set(tables) == {
        "reconstruction", "reconstruction_per_class", "projections", "clusters", "probes",
        "probe_per_class", "conditional", "judges",
    }  # fmt: skip
    assert tables["judges"] == []  # no other judge: no side-by-side rows made up
    assert len(tables["clusters"]) == 6 and len(tables["conditional"]) == 4
    assert len(latent.summary(res)) == 1 + 2 + 2 + 1  # head, spaces, baselines, time


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


def test_class_gaussians_classify_by_bayes_rule(pixels):
    """``predict_latents`` against scipy's densities, one code at a time."""
    from scipy.stats import multivariate_normal

    xtr, ytr, xte, _ = pixels
    model = _PCAModel(xtr, 8)
    from mnistlab import models

    ztr, zte = models.encode(model, xtr), models.encode(model, xte[:40])
    ccg = generators.ClassConditionalGaussian(model).fit_latents(ztr, ytr)
    slow = [
        ccg.classes_[
            np.argmax(
                [
                    np.log(p) + multivariate_normal(m, c).logpdf(z)
                    for p, m, c in zip(ccg.priors_, ccg.means_, ccg.covariances_, strict=True)
                ]
            )
        ]
        for z in zte.astype(np.float64)
    ]
    assert ccg.predict_latents(zte).tolist() == slow
    assert ccg.predict(xte[:40]).tolist() == slow  # images: encoded first
    # A code at a class mean belongs to that class.
    assert ccg.predict_latents(ccg.means_).tolist() == ccg.classes_.tolist()


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
    assert "other_judge" not in res
    # A second judge reads the very same samples: the same judge twice gives the same figures.
    both = latent.conditional_experiment(
        model, ztr, ytr, zte, yte, judge, 30, seed=0, other_judge=judge
    )
    assert both["other_judge"]["conditional_accuracy"] == pytest.approx(res["accuracy"])
    assert both["other_judge"]["conditional_quality"] == pytest.approx(res["quality"])


# ---- config, the digits drawn, and the CLI end to end -------------------------------------------


def test_config_quick_preset_and_validation():
    q = latent.LatentConfig.for_quick(seed=3, latent_dims=None)
    assert q.quick and q.latent_dims == (2, 16) and q.seed == 3 and q.fit_images == 5_000
    assert latent.LatentConfig(latent_dims=(16, 2, 16)).latent_dims == (2, 16)
    assert latent.headline_dim(latent.LatentConfig(latent_dims=(2, 8, 32))) == 8
    with pytest.raises(ValueError):
        latent.LatentConfig(latent_dims=(0,))


def test_digits_are_drawn_once_per_seed(small):
    config = latent.LatentConfig(eval_images=150, probe_train=300, embed_points=40,
                                 scatter_points=50, cluster_points=60)  # fmt: skip
    d = latent.draw_digits(config, small)
    assert d.x_eval.shape == (150, 28, 28) and d.x_probe.shape == (300, 28, 28)
    assert len(d.embed_index) == 40 and len(d.scatter_index) == 50 and len(d.cluster_index) == 60
    assert np.all(np.diff(d.cluster_index) > 0) and d.cluster_index.max() < 150
    assert d.y_eval[d.gallery_index].tolist() == list(range(10))
    again = latent.draw_digits(config, small)
    assert again.cluster_index.tolist() == d.cluster_index.tolist()
    other = latent.draw_digits(dataclasses.replace(config, seed=1), small)
    assert other.cluster_index.tolist() != d.cluster_index.tolist()


def test_cli_rejects_bad_latent_dims(tmp_path, capsys):
    from mnistlab.cli import main

    code = main(["study", "latent", "--latent-dims", "2,x", "--out", str(tmp_path)])
    assert code != 0
    assert "latent-dims" in capsys.readouterr().err.lower() or code == 2
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_quick_study_end_to_end(quick_study):
    out, m = quick_study("latent")
    report = out / "report.html"
    r = m["results"]
    assert set(r["spaces"]) == {"ae 2-d", "ae 16-d", "vae 2-d", "vae 16-d", "sae 16-d"}
    # The supervised autoencoder's code is trained with the labels: its probe beats the plain
    # autoencoder's, and the verdict names it as the labelled reference.
    sae_acc = r["spaces"]["sae 16-d"]["probes"]["logreg"]["accuracy"]
    assert sae_acc > r["spaces"]["ae 16-d"]["probes"]["logreg"]["accuracy"]
    answers = scaffold.answers(m)
    assert list(answers) == QUESTIONS
    assert "supervised autoencoder" in answers["Linear probes"]
    assert all(v["finding"] for v in m["verdicts"])
    s = r["spaces"]["ae 16-d"]
    assert set(s["reconstruction"]) >= {"mse", "bce", "psnr", "ssim", "judge_accuracy"}
    assert len(s["reconstruction_per_class"]) == 10
    assert set(s["projections"]) >= {"PCA 2-D", "LDA 2-D", "LDA 3-D", "t-SNE", "UMAP"}
    assert set(s["clusters"]) == {"k-means", "DBSCAN", "HDBSCAN"}
    assert set(s["probes"]) == {"logreg", "linear_svm"}
    assert s["probes"]["logreg"]["accuracy"] > 0.5  # even 2 epochs on 5,000 digits: >> chance
    assert len(s["probes"]["logreg"]["confusion_matrix"]) == 10
    assert 0 <= s["conditional"]["accuracy"] <= 1 and sum(s["conditional"]["counts"]) > 0
    assert set(r["baselines"]) == {
        "raw pixels logreg", "raw pixels linear_svm", "PCA logreg", "PCA linear_svm",
    }  # fmt: skip
    assert m["seconds"] > 0
    for name in ("reconstruction.csv", "clusters.csv", "probes.csv", "conditional.csv"):
        assert (out / name).is_file()
    assert list((out / "figures").glob("*.png"))
    html = report.read_text()
    assert "LDA 3-D" in html and "plotly" in html
    # The old judge (v1) read the same reconstructions and samples, side by side with v2.
    assert r["other_judge"]["judge_version"] == "v1"
    old = s["other_judge"]
    assert set(old) == {"reconstruction_accuracy", "conditional_accuracy", "conditional_quality"}
    assert all(0 <= v <= 1 for v in old.values())
    header = (out / "judges.csv").read_text().splitlines()[0]
    assert header.startswith("latent space,judge v1 reads the reconstruction,judge v2 reads")
    assert len((out / "judges.csv").read_text().splitlines()) == 1 + len(r["spaces"])
    assert "The old judge beside the new" in html

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(report)
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures > 0 and check.rendered == check.figures, check.problems
    assert check.n_plotly >= 3  # the per-digit error curve and the two 16-d LDA 3-D plots
