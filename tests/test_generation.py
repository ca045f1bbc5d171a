"""The generation study: --quick end to end through the CLI, its outputs, its report in Chromium."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.studies import generation as study

SCORE_KEYS = {
    "quality",
    "novelty",
    "diversity",
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("generation")
    code = main(["study", "generation", "--quick", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


@pytest.mark.slow
def test_quick_study_writes_every_output(quick_run):
    for name in ("report.html", "metrics.json", "settings.csv", "calibration.csv"):
        assert (quick_run / name).is_file(), name
    assert list((quick_run / "figures").glob("*.png"))
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["study"] == "generation"
    assert metrics["judge"]["judge_id"].startswith("classifier-mnist-")
    names = {row["generator"] for row in metrics["settings"]}
    assert names == {
        "pixel KDE",
        "PCA + KDE",
        "AE latent + KDE",
        "AE latent + GMM",
        "AE latent + class Gaussians",
        "VAE prior",
        "VAE latent + GMM",
    }
    for row in metrics["settings"]:
        for key in SCORE_KEYS - {"fid", "density"} | {"near_copy_rate"}:
            assert 0.0 <= row[key] <= 1.0, (row["generator"], key, row[key])
        # FID is a distance; density (Naeem et al.) is about 1 for real data, unbounded above.
        assert row["fid"] >= 0.0 and row["density"] >= 0.0
    # The real-data rows: a training digit against its own set is a copy; a test digit is not.
    cal = metrics["calibration"]
    assert cal["train vs itself"]["novelty"] == 0.0
    assert 0.35 < cal["test vs train"]["novelty"] < 0.65
    assert set(metrics["verdicts"]) >= {"Does the KDE copy?", "Which bandwidth?"}


@pytest.mark.slow
def test_quick_study_sweeps_the_bandwidth(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    pixel = [r for r in metrics["settings"] if r["generator"] == "pixel KDE" and not r["rule"]]
    assert len(pixel) == 3
    pixel.sort(key=lambda r: r["bandwidth"])
    # The smallest bandwidth returns training digits with a little noise: near-copies;
    # the largest drowns them: newer but worse.
    assert pixel[0]["novelty"] < pixel[-1]["novelty"]
    assert pixel[0]["quality"] > pixel[-1]["quality"]
    assert pixel[0]["near_copy_rate"] > pixel[-1]["near_copy_rate"]


@pytest.mark.slow
@pytest.mark.browser
def test_quick_report_renders_offline_in_chromium(quick_run):
    from mnistlab.report import browser

    check = browser.check(quick_run / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.failed_requests == []
    assert check.n_images > 10 and check.n_images_rendered == check.n_images
    assert check.n_plotly >= 2 and check.n_plotly_rendered == check.n_plotly


def test_slerp_keeps_the_ends_and_the_norm():
    a = np.array([3.0, 0.0, 0.0])
    b = np.array([0.0, 3.0, 0.0])
    path = study._slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)


def test_balance_is_high_only_when_both_are():
    assert study.balance(1.0, 0.5, 0.5) == 1.0
    assert study.balance(1.0, 0.0, 0.5) == 0.0
    assert study.balance(0.9, 0.05, 0.5) < study.balance(0.6, 0.3, 0.5)
    # Novelty beyond that of real digits earns nothing more.
    assert study.balance(0.9, 0.9, 0.5) == study.balance(0.9, 0.5, 0.5)


def test_quick_preset_takes_overrides():
    cfg = study.GenerationConfig.for_quick(samples=200, seed=3, retrain=None)
    assert cfg.quick and cfg.samples == 200 and cfg.seed == 3 and cfg.n_bandwidths == 3


def test_bad_data_folder_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["study", "generation", "--quick", "--data", str(tmp_path / "nope")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnistlab: error: data folder not found")
