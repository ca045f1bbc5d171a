"""The generation study: --quick end to end through the CLI, its outputs, its report in Chromium."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

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


class NoisyCopies:
    """A generator of a user's own: training digits plus noise (anything with fit/sample)."""

    def __init__(self, noise: float) -> None:
        self.noise = noise

    def fit(self, x):
        self.x_ = x
        return self

    def sample(self, n, random_state):
        rng = np.random.default_rng(random_state)
        picks = self.x_[rng.integers(0, len(self.x_), n)] / 255.0
        return np.clip(picks + self.noise * rng.standard_normal(picks.shape), 0, 1)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("generation")
    study.register_generator(
        "my noisy copies", lambda d, s: NoisyCopies(s).fit(d.x_train), settings=[0.05, 0.3]
    )
    try:
        code = main(["study", "generation", "--quick", "--out", str(out), "--no-progress"])
    finally:
        study.unregister_generator("my noisy copies")
    assert code == 0
    return out


@pytest.mark.slow
def test_a_users_generator_is_swept_scored_and_reported(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    mine = [r for r in metrics["settings"] if r["generator"] == "my noisy copies"]
    assert [r["setting"] for r in mine] == ["0.05", "0.3"]
    # Copies with a little noise are near-copies; the judge sees it.
    assert mine[0]["near_copy_rate"] > 0.5 and mine[0]["novelty"] < mine[1]["novelty"]
    html = (quick_run / "report.html").read_text()
    assert html.count("my noisy copies") >= 3  # headline table, sample grids, full table


@pytest.mark.slow
def test_quick_study_writes_every_output(quick_run):
    for name in ("report.html", "metrics.json", "settings.csv", "calibration.csv"):
        assert (quick_run / name).is_file(), name
    assert list((quick_run / "figures").glob("*.png"))
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["study"] == "generation"
    assert metrics["judge"]["judge_id"].startswith("judge-mnist-")
    names = {row["generator"] for row in metrics["settings"]}
    assert names == {
        "pixel KDE",
        "PCA + KDE",
        "AE latent + KDE",
        "AE latent + GMM",
        "AE latent + class Gaussians",
        "VAE prior",
        "VAE latent + GMM",
        "AE latent + flow",
        "my noisy copies",  # the user's generator registered by the fixture
    }
    assert metrics["flow"]["autoencoder"]["latent_dim"] == 32
    assert set(metrics["conditional_flow"]) == {"w=1", "w=2"}
    for row in metrics["settings"]:
        for key in SCORE_KEYS - {"fid", "density"} | {"near_copy_rate"}:
            assert 0.0 <= row[key] <= 1.0, (row["generator"], key, row[key])
        # FID is a distance; density (Naeem et al.) is about 1 for real data, unbounded above.
        assert row["fid"] >= 0.0 and row["density"] >= 0.0
    # The real-data rows: a training digit against its own set is a copy; a test digit is not.
    # Latent generators are compared with their own decoder's reconstructions too; the pixel and
    # PCA KDEs have none.
    for row in metrics["settings"]:
        has_recon = row["generator"] in study.RECONSTRUCTIONS_OF
        assert ("recon_near_copy_rate" in row) == has_recon, row["generator"]
        if has_recon:
            assert 0.0 <= row["recon_near_copy_rate"] <= 1.0
    cal = metrics["calibration"]
    assert cal["train vs itself"]["novelty"] == 0.0
    assert 0.35 < cal["test vs train"]["novelty"] < 0.65
    assert set(metrics["verdicts"]) >= {"Does the KDE copy?", "Which bandwidth?"}
    # The held-out log-likelihood stands beside every KDE setting.
    for row in metrics["settings"]:
        if row["generator"].endswith("KDE"):
            assert np.isfinite(row["held_out_loglik"]), row
    # Interpolation: four strips of four paths each, and the statistics over random pairs.
    interp = metrics["interpolation"]
    assert len(interp) == 16 and {r["path"] for r in interp} == {
        "pixel",
        "AE latent",
        "VAE latent (linear)",
        "VAE latent (spherical)",
    }
    assert all(len(r["quality"]) == 7 and 0 <= min(r["quality"]) <= 1 for r in interp)
    stats = metrics["interpolation_stats"]
    assert set(stats) == {r["path"] for r in interp}
    for v in stats.values():
        assert v["pairs"] == 40 and 0 <= v["third_digit"] <= 1
        assert v["dip"] == pytest.approx(v["end_quality"] - v["min_quality"])
    # Conditional sampling: a share per digit, most read as the digit asked for.
    cond = metrics["conditional_sampling"]
    assert len(cond["accuracy_per_digit"]) == 10 and np.mean(cond["accuracy_per_digit"]) > 0.5
    assert (quick_run / "interpolation.csv").is_file()


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


def test_config_refuses_settings_the_study_cannot_run():
    with pytest.raises(ValueError, match="interpolation_steps"):
        study.GenerationConfig(interpolation_steps=2)
    with pytest.raises(ValueError, match="samples"):
        study.GenerationConfig(samples=5)


def test_quick_preset_takes_overrides():
    cfg = study.GenerationConfig.for_quick(samples=200, seed=3, retrain=None)
    assert cfg.quick and cfg.samples == 200 and cfg.seed == 3 and cfg.n_bandwidths == 3


def test_bad_data_folder_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["study", "generation", "--quick", "--data", str(tmp_path / "nope")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnistlab: error: data folder not found")


# ---- verdicts on made-up results: the words follow the numbers ---------------------------------


def _setting(generator, h, quality, novelty, fid=10.0, near_copy=0.0):
    scores = dict.fromkeys(SCORE_KEYS, 0.5) | {
        "quality": quality,
        "novelty": novelty,
        "fid": fid,
        "near_copy_rate": near_copy,
    }
    return study.SettingResult(
        generator=generator,
        setting=f"h={h:g}",
        bandwidth=h,
        scores=scores,
        loglik=None,
        seconds=0.0,
        grid=np.zeros((1, 28, 28), np.float32),
        nearest=np.zeros((1, 28, 28), np.uint8),
    )


def _result(settings):
    calibration = {"test vs train": {"quality": 0.99, "novelty": 0.5}}
    return study.GenerationResult(
        config=study.GenerationConfig(),
        data_source="made up",
        data_checksum="",
        judge={},
        models={},
        calibration=calibration,
        settings=settings,
        interpolation=[],
        verdicts={},
        seconds=0.0,
    )


def _sweep(name, qualities, novelties, fid=10.0):
    hs = [0.01, 0.1, 1.0, 10.0][: len(qualities)]
    return [
        _setting(name, h, q, n, fid=fid, near_copy=1.0 if n < 0.1 else 0.0)
        for h, q, n in zip(hs, qualities, novelties, strict=True)
    ]


def test_verdicts_read_the_trade_off_and_the_copies_off_the_numbers():
    settings = (
        _sweep("pixel KDE", [0.99, 0.97, 0.9, 0.6], [0.01, 0.3, 0.5, 0.7])
        + _sweep("PCA + KDE", [0.98, 0.95, 0.85, 0.5], [0.2, 0.4, 0.55, 0.7], fid=20.0)
        + _sweep("AE latent + KDE", [0.99, 0.98, 0.95, 0.8], [0.3, 0.45, 0.5, 0.6], fid=5.0)
    )
    v = study.verdicts(_result(settings))
    assert v["Does the KDE copy?"].startswith("Yes")
    assert "quality falls and novelty rises" in v["Which bandwidth?"]
    assert "trade-off" in v["Which bandwidth?"]
    assert v["Does the autoencoder help?"].startswith("Yes, on both counts")
    assert v["Which generator is closest to real digits?"].startswith(
        "By FID in the judge's feature space, AE latent + KDE"
    )


def test_verdicts_say_so_when_the_numbers_disagree_with_the_textbook():
    # Novelty does not rise with the bandwidth, the KDE never copies, and the autoencoder is
    # worse on both counts: the verdicts must not repeat the expected story.
    settings = (
        _sweep("pixel KDE", [0.9, 0.9, 0.9, 0.9], [0.6, 0.5, 0.6, 0.5])
        + _sweep("PCA + KDE", [0.99, 0.98, 0.97, 0.96], [0.5, 0.5, 0.5, 0.5], fid=5.0)
        + _sweep("AE latent + KDE", [0.6, 0.5, 0.4, 0.3], [0.2, 0.2, 0.2, 0.2], fid=30.0)
    )
    v = study.verdicts(_result(settings))
    assert v["Does the KDE copy?"].startswith("Not at the bandwidths tried")
    assert "trade-off" not in v["Which bandwidth?"]
    assert v["Does the autoencoder help?"].startswith("No, on both counts")
    # The best balance of the AE sweep is at the grid's smallest bandwidth, and still changing
    # there: said so.
    assert "smallest bandwidth of the grid: the optimum may lie beyond it" in v["Which bandwidth?"]


def test_interpolation_verdict_follows_the_measured_dips():
    def stats(pixel_dip, latent_dip):
        row = {"pairs": 200, "end_quality": 0.9, "min_quality": 0.5, "third_digit": 0.1}
        return {
            "pixel": row | {"dip": pixel_dip},
            "AE latent": row | {"dip": latent_dip},
            "VAE latent (linear)": row | {"dip": latent_dip},
        }

    settings = _sweep("pixel KDE", [0.99, 0.9], [0.1, 0.6])
    cases = [
        (0.4, 0.1, "Yes"),
        (0.34, 0.32, "About equally"),
        (0.30, 0.31, "About equally"),
        (0.1, 0.4, "Not by this judge"),
    ]
    for pixel, latent, lead in cases:
        result = _result(settings)
        result.extras["interpolation_stats"] = stats(pixel, latent)
        answer = study.verdicts(result)["Can we interpolate in latent space?"]
        assert answer.startswith(lead) and "200 random pairs" in answer
    # Deeper than one latent path by far, shallower than another by far: neither yes nor no.
    result = _result(settings)
    result.extras["interpolation_stats"] = stats(0.3, 0.1) | {
        "VAE latent (linear)": stats(0.3, 0.5)["AE latent"]
    }
    answer = study.verdicts(result)["Can we interpolate in latent space?"]
    assert answer.startswith("Mixed")


def test_study_with_no_name_runs_the_generation_study_into_runs(monkeypatch, tmp_path):
    # `mnistlab study` is the main job of `make run`: the generation study with its defaults,
    # written to runs/<timestamp>-generation/ under the current folder.
    from mnistlab.commands import study_cmd
    from mnistlab.fileio import OutputFolder

    calls = []
    monkeypatch.setattr(study_cmd, "generation", lambda **kw: calls.append(kw))
    assert main(["study"]) == 0
    assert calls == [
        {"data": None, "out": None, "quick": False, "samples": None, "seed": 0, "retrain": False}
    ]
    monkeypatch.chdir(tmp_path)
    folder = OutputFolder(None, "generation")
    with folder:
        pass
    out = folder.path
    assert out.parent == Path("runs") and out.name.endswith("-generation")
    assert len(out.name) == len("20261124-060000-generation")
    assert out.is_dir()


def _flow_result(scores_by_w, floor=None, accuracy=None):
    settings = []
    for w, sc in scores_by_w.items():
        s = _setting(study.FLOW, 1.0, sc["quality"], sc["novelty"], sc["fid"], sc["near_copy"])
        s = dataclasses.replace(s, setting=f"w={w}", bandwidth=None)
        s.scores |= {"precision": sc["precision"], "recall": sc["recall"]}
        settings.append(s)
    result = _result(settings)
    result.calibration = {
        "test vs train": {"quality": 0.975, "novelty": 0.5, "near_copy_rate": 0.01},
        "half vs half": {"fid": 0.13},
    }
    result.extras["flow"] = {"floor": floor} if floor else {}
    if accuracy is not None:
        result.extras["conditional_flow"] = {
            f"w={w}": {"accuracy_per_digit": accuracy, "samples_per_digit": 500}
            for w in scores_by_w
        }
    return result


def test_flow_verdict_says_yes_only_when_every_target_is_met():
    good = {"quality": 0.97, "novelty": 0.52, "fid": 0.5, "near_copy": 0.015, "precision": 0.92,
            "recall": 0.9}  # fmt: skip
    answer = study.flow_verdict(_flow_result({"1": good}, accuracy=[0.99] * 10))
    assert answer.startswith("Yes at its best setting (w=1)") and "99.0% to 99.0%" in answer
    blurry = good | {"fid": 3.8, "precision": 0.85, "recall": 0.82}
    floor = {"fid": 3.96, "precision": 0.914, "recall": 0.879}
    answer = study.flow_verdict(_flow_result({"1": blurry}, floor=floor))
    assert answer.startswith("Not yet: 3 of 6 targets missed")
    assert "FID 3.80 (<= 5 x real half vs half 0.13)" in answer
    assert "needs a sharper decoder, not a better flow" in answer
    # The best setting is the one that meets the most targets.
    answer = study.flow_verdict(_flow_result({"1": blurry, "1.5": good}))
    assert "(w=1.5)" in answer
    assert study.flow_verdict(_result([])) == ""
