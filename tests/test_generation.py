"""The generation study: the verdicts on made-up results, the typed generators, a user's own
generator, and --quick end to end with its outputs and its report in Chromium."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mnistlab import metrics
from mnistlab.analysis import selection
from mnistlab.catalog import FLOW_AE, FLOW_DIGIT_GUIDANCE
from mnistlab.cli import main
from mnistlab.studies import generation as study
from mnistlab.studies import scaffold

SCORE_KEYS = set(metrics.SCORE_KEYS) - {"n", "near_copy_rate"}
QUESTIONS = [
    "Does the KDE copy?",
    "Does the autoencoder help?",
    "Which bandwidth?",
    "Which generator is closest to real digits?",
    "Can we interpolate in latent space?",
    "Does a flow pass for real?",
]


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
    """The quick study with a user's generator registered, run as ``mnistlab.run_study`` runs it."""
    out = tmp_path_factory.mktemp("generation")
    study.register_generator(
        "my noisy copies", lambda d, s: NoisyCopies(s).fit(d.x_train), settings=[0.05, 0.3]
    )
    try:
        config = study.GenerationConfig.for_quick()
        outcome = scaffold.execute("generation", config, out=out, progress=False)
    finally:
        study.unregister_generator("my noisy copies")
    assert outcome.folder == out
    return outcome


def _metrics(outcome):
    return json.loads((outcome.folder / "metrics.json").read_text())


@pytest.mark.slow
def test_a_users_generator_is_swept_scored_and_reported(quick_run):
    results = _metrics(quick_run)["results"]
    mine = [r for r in results["settings"] if r["generator"] == "my noisy copies"]
    assert [r["setting"] for r in mine] == ["0.05", "0.3"]
    # Copies with a little noise are near-copies; the judge sees it.
    assert mine[0]["near_copy_rate"] > 0.5 and mine[0]["novelty"] < mine[1]["novelty"]
    html = (quick_run.folder / "report.html").read_text()
    assert html.count("my noisy copies") >= 3  # headline table, sample grids, full table
    spec = study.settings_of(quick_run.result, "my noisy copies")[0].spec
    assert spec.family == "user" and spec not in study.BUILT_IN
    assert any(line.startswith("my noisy copies") for line in study.summary(quick_run.result))


@pytest.mark.slow
def test_the_old_judge_scores_the_same_headline_images(quick_run):
    run = _metrics(quick_run)
    comparison = run["results"]["judge_comparison"]
    assert comparison["version"] == "v1" and comparison["judge_id"] != run["judge"]["judge_id"]
    rows = {r["images"]: r for r in comparison["rows"]}
    # Real digits first: a training digit is a copy of itself under either judge.
    assert rows["real: train vs itself"]["novelty"] == 0.0
    assert 0.35 < rows["real: test vs train"]["novelty"] < 0.65
    # Every generator at the setting this run's judge (v2) found best, scored again by v1.
    best = {g.label: study.best_setting(quick_run.result, g) for g in study.BUILT_IN}
    for label, b in best.items():
        assert rows[label]["setting"] == b.setting, label
        assert 0.0 <= rows[label]["quality"] <= 1.0 and rows[label]["fid"] >= 0.0
    # Two different instruments: their numbers on the same images are not the same.
    assert any(rows[k]["quality"] != best[k].scores["quality"] for k in best)
    header = (quick_run.folder / "judges.csv").read_text().splitlines()[0]
    assert header.startswith("images,setting,quality v1,quality v2,novelty v1,novelty v2")
    assert "The old judge beside the new" in (quick_run.folder / "report.html").read_text()


def test_no_side_by_side_where_the_old_judge_is_not_shipped(mnist):
    context = scaffold.Context("generation", progress=False)
    context.__dict__["data"] = mnist.subset(n_train=500, n_test=200)  # not the bundled MNIST
    result = study.GenerationResult(
        config=study.GenerationConfig.for_quick(),
        data_source="elsewhere",
        data_checksum="0",
        judge={"judge_version": "v2"},
        calibration={},
        settings=[],
    )
    assert study.judge_comparison(result, [], context) is None
    assert "judge_and_meta" not in context.__dict__  # nothing loaded, nothing trained
    assert context.other_judge is None
    assert study.judge_rows(result) == []


@pytest.mark.slow
def test_quick_study_writes_every_output(quick_run):
    folder = quick_run.folder
    for name in ("report.html", "metrics.json", "settings.csv", "calibration.csv"):
        assert (folder / name).is_file(), name
    assert list((folder / "figures").glob("*.png"))
    metrics = _metrics(quick_run)
    assert metrics["schema"] == scaffold.SCHEMA and metrics["study"] == "generation"
    assert metrics["judge"]["judge_id"].startswith("judge-mnist-")
    results = metrics["results"]
    names = {row["generator"] for row in results["settings"]}
    assert names == {g.label for g in study.BUILT_IN} | {"my noisy copies"}
    assert results["flow"]["autoencoder"]["latent_dim"] == FLOW_AE["latent_dim"]
    assert set(results["conditional_flow"]) == {"w=1", "w=2"}
    for row in results["settings"]:
        for key in SCORE_KEYS - {"fid", "density"} | {"near_copy_rate"}:
            assert 0.0 <= row[key] <= 1.0, (row["generator"], key, row[key])
        # FID is a distance; density (Naeem et al.) is about 1 for real data, unbounded above.
        assert row["fid"] >= 0.0 and row["density"] >= 0.0
    # Latent generators are compared with their own decoder's reconstructions too; the pixel and
    # PCA KDEs (and the user's generator) have none.
    with_decoder = {g.label for g in study.BUILT_IN if g.decoder}
    for row in results["settings"]:
        has_recon = row["generator"] in with_decoder
        assert ("recon_near_copy_rate" in row) == has_recon, row["generator"]
        if has_recon:
            assert 0.0 <= row["recon_near_copy_rate"] <= 1.0
    # The real-data rows: a training digit against its own set is a copy; a test digit is not.
    cal = results["calibration"]
    assert cal["train vs itself"]["novelty"] == 0.0
    assert 0.35 < cal["test vs train"]["novelty"] < 0.65
    assert list(scaffold.answers(metrics)) == QUESTIONS
    assert all(v["finding"] and v["finding"] != study.NOT_MEASURED for v in metrics["verdicts"])
    # The held-out log-likelihood stands beside every KDE setting.
    for row in results["settings"]:
        if row["generator"].endswith("KDE"):
            assert np.isfinite(row["held_out_loglik"]), row
    # Interpolation: four strips of four paths each, and the statistics over random pairs.
    interp = results["interpolation"]
    assert len(interp) == 16 and {r["path"] for r in interp} == {
        "pixel",
        "AE latent",
        "VAE latent (linear)",
        "VAE latent (spherical)",
    }
    assert all(len(r["quality"]) == 7 and 0 <= min(r["quality"]) <= 1 for r in interp)
    stats = results["interpolation_stats"]
    assert set(stats) == {r["path"] for r in interp}
    for v in stats.values():
        assert v["pairs"] == 40 and 0 <= v["third_digit"] <= 1
        assert v["dip"] == pytest.approx(v["end_quality"] - v["min_quality"])
    # Conditional sampling: a share per digit, most read as the digit asked for.
    cond = results["conditional_sampling"]
    assert len(cond["accuracy_per_digit"]) == 10 and np.mean(cond["accuracy_per_digit"]) > 0.5
    assert (folder / "interpolation.csv").is_file()
    # The sweep's headline: real digits, then one row per generator.
    rows = study.headline(results)
    assert [r["images"] for r in rows][-len(names) :] == list(dict.fromkeys(
        r["generator"] for r in results["settings"]))  # fmt: skip


@pytest.mark.slow
def test_quick_study_sweeps_the_bandwidth(quick_run):
    settings = _metrics(quick_run)["results"]["settings"]
    pixel = [r for r in settings if r["generator"] == "pixel KDE" and not r["rule"]]
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

    check = browser.check(quick_run.folder / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.failed_requests == []
    assert check.n_images > 10 and check.n_images_rendered == check.n_images
    assert check.n_plotly >= 2 and check.n_plotly_rendered == check.n_plotly


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


def test_study_with_no_name_runs_the_generation_study_into_runs(monkeypatch, tmp_path):
    # `mnistlab study` is the main job of `make run`: the generation study with its defaults,
    # written to runs/<timestamp>-generation/ under the current folder.
    from mnistlab.commands import study_cmd
    from mnistlab.fileio import OutputFolder

    calls = []
    monkeypatch.setattr(study_cmd, "run_command", lambda name, **kw: calls.append((name, kw)))
    assert main(["study"]) == 0
    assert calls == [("generation", {"data": None, "out": None, "quick": False, "seed": 0})]
    monkeypatch.chdir(tmp_path)
    folder = OutputFolder(None, "generation")
    with folder:
        pass
    out = folder.path
    assert out.parent == Path("runs") and out.name.endswith("-generation")
    assert len(out.name) == len("20261124-060000-generation")
    assert out.is_dir()


# ---- the generators: typed entries -------------------------------------------------------------


def test_built_in_generators_are_the_catalogs():
    from mnistlab.catalog import CATALOG

    assert set(study.GENERATORS) == set(CATALOG)
    for key, spec in study.GENERATORS.items():
        assert spec.key == key and spec.label == CATALOG[key].label
    assert study.KDES == (study.PIXEL_KDE, study.PCA_KDE, study.AE_KDE)


def test_register_generator_refuses_built_in_names():
    for taken in ("", "pixel KDE", "AE latent + flow", "flow", "pca-kde"):
        with pytest.raises(ValueError, match="built in"):
            study.register_generator(taken, lambda d, s: None)
    study.register_generator("mine", lambda d, s: None, settings=[1, 2])
    try:
        assert study.USER_GENERATORS["mine"].spec == study.GeneratorSpec(
            "user:mine", "mine", "user"
        )
        assert [r.setting for r in study.user_plan(None)] == ["1", "2"]
    finally:
        study.unregister_generator("mine")
    assert "mine" not in study.USER_GENERATORS and study.user_plan(None) == []


# ---- verdicts on made-up results: the words follow the numbers ---------------------------------


def _setting(spec, h, quality, novelty, fid=10.0, near_copy=0.0):
    scores = dict.fromkeys(SCORE_KEYS, 0.5) | {
        "quality": quality,
        "novelty": novelty,
        "fid": fid,
        "near_copy_rate": near_copy,
    }
    return study.SettingResult(
        spec=spec,
        setting=f"h={h:g}",
        bandwidth=h,
        scores=scores,
        loglik=None,
        seconds=0.0,
        grid=np.zeros((10, 28, 28), np.float32),
        nearest=np.zeros((10, 28, 28), np.uint8),
    )


def _result(settings):
    calibration = {"test vs train": {"quality": 0.99, "novelty": 0.5}}
    return study.GenerationResult(
        config=study.GenerationConfig(),
        data_source="made up",
        data_checksum="",
        judge={},
        calibration=calibration,
        settings=settings,
    )


def _sweep(spec, qualities, novelties, fid=10.0):
    hs = [0.01, 0.1, 1.0, 10.0][: len(qualities)]
    return [
        _setting(spec, h, q, n, fid=fid, near_copy=1.0 if n < 0.1 else 0.0)
        for h, q, n in zip(hs, qualities, novelties, strict=True)
    ]


def _textbook():
    """The expected story: copies at small bandwidths, a trade-off, the AE ahead of the PCA."""
    return (
        _sweep(study.PIXEL_KDE, [0.99, 0.97, 0.9, 0.6], [0.01, 0.3, 0.5, 0.7])
        + _sweep(study.PCA_KDE, [0.98, 0.95, 0.85, 0.5], [0.2, 0.4, 0.55, 0.7], fid=20.0)
        + _sweep(study.AE_KDE, [0.99, 0.98, 0.95, 0.8], [0.3, 0.45, 0.5, 0.6], fid=5.0)
    )


def _contrary():
    """Novelty does not rise with the bandwidth, the KDE never copies, the AE is worse."""
    return (
        _sweep(study.PIXEL_KDE, [0.9, 0.9, 0.9, 0.9], [0.6, 0.5, 0.6, 0.5])
        + _sweep(study.PCA_KDE, [0.99, 0.98, 0.97, 0.96], [0.5, 0.5, 0.5, 0.5], fid=5.0)
        + _sweep(study.AE_KDE, [0.6, 0.5, 0.4, 0.3], [0.2, 0.2, 0.2, 0.2], fid=30.0)
    )


def test_verdicts_read_the_trade_off_and_the_copies_off_the_numbers():
    v = {x.question: x for x in study.verdicts(_result(_textbook()))}
    assert list(v) == QUESTIONS
    assert v["Does the KDE copy?"].finding == "yes"
    assert v["Does the KDE copy?"].answer.startswith("Yes")
    assert v["Which bandwidth?"].finding == "quality falls, novelty rises"
    assert "quality falls and novelty rises" in v["Which bandwidth?"].answer
    assert "trade-off" in v["Which bandwidth?"].answer
    assert v["Does the autoencoder help?"].finding == "yes"
    assert v["Does the autoencoder help?"].answer.startswith("Yes, on both counts")
    closest = v["Which generator is closest to real digits?"]
    assert closest.finding == "AE latent + KDE"
    assert closest.answer.startswith("By FID in the judge's feature space, AE latent + KDE")


def test_verdicts_say_so_when_the_numbers_disagree_with_the_textbook():
    v = {x.question: x for x in study.verdicts(_result(_contrary()))}
    assert v["Does the KDE copy?"].finding == "no"
    assert v["Does the KDE copy?"].answer.startswith("Not at the bandwidths tried")
    assert "trade-off" not in v["Which bandwidth?"].answer
    assert v["Which bandwidth?"].finding != "quality falls, novelty rises"
    assert v["Does the autoencoder help?"].finding == "no"
    assert v["Does the autoencoder help?"].answer.startswith("No, on both counts")
    assert v["Which generator is closest to real digits?"].finding == "PCA + KDE"
    # The best balance of the AE sweep is at the grid's smallest bandwidth, and still changing
    # there: said so.
    assert (
        "smallest bandwidth of the grid: the optimum may lie beyond it"
        in v["Which bandwidth?"].answer
    )


def test_autoencoder_verdict_is_mixed_when_fid_and_balance_disagree():
    settings = _textbook()
    for s in settings:
        if s.spec == study.AE_KDE:
            s.scores["fid"] = 50.0  # the AE keeps its better balance but loses on FID
    v = study.autoencoder_verdict(_result(settings))
    assert v.finding == "mixed: better balance, worse FID" and v.answer.startswith("Mixed")


def test_a_verdict_whose_generator_is_absent_says_so():
    only_pixel = _result(_sweep(study.PIXEL_KDE, [0.99, 0.9], [0.1, 0.6]))
    v = study.autoencoder_verdict(only_pixel)
    assert v.finding == study.NOT_MEASURED
    assert v.answer == "Not measured: this run has no PCA + KDE and AE latent + KDE."
    flow = study.flow_verdict(only_pixel)
    assert flow.finding == study.NOT_MEASURED and "AE latent + flow" in flow.answer
    interp = study.interpolation_verdict(only_pixel)
    assert interp.finding == study.NOT_MEASURED
    # Every question is still asked, in order: none vanishes.
    assert [x.question for x in study.verdicts(only_pixel)] == QUESTIONS
    empty = _result([])
    assert {x.finding for x in study.verdicts(empty)} == {study.NOT_MEASURED}
    # A user's generator labelled like a built-in one's would not stand in for it: the verdicts
    # look generators up by their entry, not by their label.
    impostor = study.GeneratorSpec("user:x", "PCA + KDE", "user")
    fake = _result(_sweep(study.AE_KDE, [0.9], [0.4]) + _sweep(impostor, [0.9], [0.4]))
    assert study.autoencoder_verdict(fake).finding == study.NOT_MEASURED


def test_best_setting_is_the_library_rule_on_the_rows_scores():
    result = _result(_textbook())
    rows = study.settings_of(result, study.AE_KDE)
    best = study.best_setting(result, study.AE_KDE)
    pick = selection.best_setting({s.setting: s.scores for s in rows}, study.novelty_ref(result))
    assert best.setting == pick == "h=1"  # quality 0.95 at real novelty
    assert study.best_setting(result, "AE latent + KDE") is best  # by label, as callers did
    assert study.best_setting(result, study.FLOW) is None


def test_interpolation_verdict_follows_the_measured_dips():
    def stats(pixel_dip, latent_dip):
        row = {"pairs": 200, "end_quality": 0.9, "min_quality": 0.5, "third_digit": 0.1}
        return {
            "pixel": row | {"dip": pixel_dip},
            "AE latent": row | {"dip": latent_dip},
            "VAE latent (linear)": row | {"dip": latent_dip},
        }

    settings = _sweep(study.PIXEL_KDE, [0.99, 0.9], [0.1, 0.6])
    cases = [
        (0.4, 0.1, "Yes", "yes"),
        (0.34, 0.32, "About equally", "about equally"),
        (0.30, 0.31, "About equally", "about equally"),
        (0.1, 0.4, "Not by this judge", "no"),
    ]
    for pixel, latent, lead, finding in cases:
        result = _result(settings)
        result.interpolation_stats = stats(pixel, latent)
        v = study.interpolation_verdict(result)
        assert v.answer.startswith(lead) and "200 random pairs" in v.answer
        assert v.finding == finding
    # Deeper than one latent path by far, shallower than another by far: neither yes nor no.
    result = _result(settings)
    result.interpolation_stats = stats(0.3, 0.1) | {
        "VAE latent (linear)": stats(0.3, 0.5)["AE latent"]
    }
    v = study.interpolation_verdict(result)
    assert v.answer.startswith("Mixed") and v.finding == "mixed"


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
    result.flow = study.FlowFit(floor=floor)
    if accuracy is not None:
        result.conditional_flow = {
            f"w={w}": study.Conditional(np.zeros((10, 1, 28, 28)), accuracy, 500)
            for w in scores_by_w
        }
    return result


def test_flow_verdict_says_yes_only_when_every_target_is_met():
    good = {"quality": 0.97, "novelty": 0.52, "fid": 0.5, "near_copy": 0.015, "precision": 0.92,
            "recall": 0.9}  # fmt: skip
    v = study.flow_verdict(_flow_result({"1": good}, accuracy=[0.99] * 10))
    assert v.finding == "meets all targets"
    assert v.answer.startswith("Yes at its best setting (w=1)") and "99.0% to 99.0%" in v.answer
    blurry = good | {"fid": 3.8, "precision": 0.85, "recall": 0.82}
    floor = {"fid": 3.96, "precision": 0.914, "recall": 0.879}
    v = study.flow_verdict(_flow_result({"1": blurry}, floor=floor))
    assert v.finding == "misses some targets"
    assert v.answer.startswith("Not yet: 3 of 6 targets missed")
    assert "FID 3.80 (<= 5 x real half vs half 0.13)" in v.answer
    assert "needs a sharper decoder, not a better flow" in v.answer
    # The best setting is the one that meets the most targets.
    v = study.flow_verdict(_flow_result({"1": blurry, "1.5": good}))
    assert "(w=1.5)" in v.answer and v.finding == "meets all targets"
    assert "The FID target is met at w=1.5" not in v.answer  # the sharpest is the best
    # Sharp but unsure at w=1, sure but blurrier at w=1.25: guidance is in the way, not the
    # decoder, though the sharpest flow is as close as the decoder's reconstructions.
    sharp = good | {"fid": 0.64, "precision": 0.87, "quality": 0.94}
    guided = good | {"fid": 0.94}
    floor = {"fid": 0.66, "precision": 0.997, "recall": 0.999}
    v = study.flow_verdict(_flow_result({"1": sharp, "1.25": guided}, floor=floor))
    assert "at its best setting (w=1.25)" in v.answer
    assert "The FID target is met at w=1 but not at w=1.25: guidance" in v.answer
    assert "sharper decoder" not in v.answer


def test_best_samples_keeps_what_best_setting_chooses():
    # The pixel KDE's best (0.9, 0.5) tied by two later settings: the first one is kept.
    settings = _textbook() + _sweep(study.PIXEL_KDE, [0.9, 0.9], [0.5, 0.5])
    result = _result(settings)
    best = study.BestSamples(study.novelty_ref(result))
    for i, s in enumerate(settings):
        best.offer(s, np.full((3, 28, 28), i, np.float32))
    for spec in study.KDES:
        chosen = study.best_setting(result, spec)
        kept = best.images(spec, chosen.setting)
        assert kept is not None and settings[int(kept[0, 0, 0])] is chosen
        others = [s.setting for s in study.settings_of(result, spec) if s is not chosen]
        assert all(best.images(spec, other) is None for other in others)
    assert best.images(study.FLOW, "w=1") is None
    assert best.images(study.PIXEL_KDE, "h=1")[0, 0, 0] == 2  # not the ties (rows 12 and 13)


def test_flow_verdict_names_the_lowest_guidance_that_gives_every_digit_on_demand():
    good = {"quality": 0.97, "novelty": 0.52, "fid": 0.5, "near_copy": 0.015, "precision": 0.92,
            "recall": 0.9}  # fmt: skip
    result = _flow_result({"1": good, "1.5": good, "2": good})
    hardest = {"w=1": 0.88, "w=1.5": 0.972, "w=2": 0.994}
    result.conditional_flow = {
        w: study.Conditional(np.zeros((10, 1, 28, 28)), [low] + [1.0] * 9, 500)
        for w, low in hardest.items()
    }
    answer = study.flow_verdict(result).answer
    assert "reach the target from w=2 on (99.4% for the hardest digit)" in answer
    assert f"--digit D` uses w={FLOW_DIGIT_GUIDANCE:g}" in answer
    result.conditional_flow["w=2"].accuracy_per_digit[0] = 0.97  # met at 1.5 only: not "on"
    result.conditional_flow["w=1.5"].accuracy_per_digit[0] = 0.985
    answer = study.flow_verdict(result).answer
    assert "reach the target from w=1.5 (98.5%" in answer
    result.conditional_flow.pop("w=2")
    result.conditional_flow["w=1.5"].accuracy_per_digit[0] = 0.972
    answer = study.flow_verdict(result).answer
    assert "No guidance scale reaches 98% for every digit (best: 97.2%" in answer
    assert "at w=1.5)" in answer


def test_catalog_defaults_differ_for_digits_on_demand():
    from mnistlab.catalog import CATALOG, FLOW_GUIDANCE

    flow = CATALOG["flow"]
    assert flow.default_for(None) == FLOW_GUIDANCE and flow.default_for(8) == FLOW_DIGIT_GUIDANCE
    assert FLOW_DIGIT_GUIDANCE > FLOW_GUIDANCE  # surer digits cost recall, asked for or not
    gaussians = CATALOG["ae-class-gaussians"]
    assert gaussians.default_for(8) is gaussians.default_for(None) is None


def test_numbers_tables_and_report_of_a_made_up_result():
    result = _result(_textbook())
    result.interpolation_stats = {
        p: {"pairs": 3, "end_quality": 0.9, "min_quality": 0.5, "dip": 0.4, "third_digit": 0.0}
        for p in ("pixel", "AE latent")
    }
    body = study.numbers(result)
    assert "verdicts" not in body and "config" not in body  # the envelope's
    assert len(body["settings"]) == 12 and body["conditional_sampling"] == {}
    best = max(
        body["settings"], key=lambda r: r["balance"] if r["generator"] == "pixel KDE" else -1
    )
    assert best["setting"] == study.best_setting(result, study.PIXEL_KDE).setting
    t = study.tables(result)
    assert set(t) == {"settings", "calibration", "interpolation", "judges"}
    assert len(t["settings"]) == 12 and t["judges"] == []  # no other judge's rows made up
    lines = study.summary(result)
    assert lines[1].startswith("real: test vs train") and lines[-1].startswith("AE latent + KDE")
    verdicts = study.verdicts(result)
    html = study.report(result, verdicts).to_html()
    for section in ("At a glance", "Answers", "The bandwidth sweeps", "Interpolation", "Models"):
        assert section in html
    assert "KDE mostly returns its training digits" in html


def test_comparisons_say_whether_the_difference_is_beyond_one_runs_spread():
    """The closest-generator answer compares the two best FIDs by their bootstrap intervals."""

    def with_ci(s, lo, hi):
        s.scores["ci"] = {"fid": [lo, hi]}
        return s

    apart = [
        with_ci(_setting(study.AE_KDE, 1.0, 0.9, 0.5, fid=2.0), 1.9, 2.1),
        with_ci(_setting(study.PCA_KDE, 1.0, 0.9, 0.5, fid=5.0), 4.8, 5.2),
    ]
    answer = study.closest_verdict(_result(apart)).answer
    assert "larger than the spread of one run" in answer
    close = [
        with_ci(_setting(study.AE_KDE, 1.0, 0.9, 0.5, fid=2.0), 1.6, 2.4),
        with_ci(_setting(study.PCA_KDE, 1.0, 0.9, 0.5, fid=2.2), 1.9, 2.6),
    ]
    answer = study.closest_verdict(_result(close)).answer
    assert "cannot tell these two apart" in answer
