"""The augmentation study: few-shot subsets, the perturbation sweep, the verdicts on made-up
results, the report's layout, and the study end to end (the scoring and the Gaussian are tested
with the library: test_metrics_moved.py, test_generators.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mnistlab.errors import DataError
from mnistlab.metrics import FewShotScorer, SetScores
from mnistlab.studies import augmentation as aug
from mnistlab.studies import scaffold


@pytest.mark.parametrize("n", [10, 100])
def test_few_shot_subset_has_exactly_n_images_of_the_digit(mnist, n):
    idx = aug.few_shot_indices(mnist.y_train, 3, n, seed=0)
    assert len(idx) == n and len(np.unique(idx)) == n
    assert (mnist.y_train[idx] == 3).all()
    np.testing.assert_array_equal(idx, aug.few_shot_indices(mnist.y_train, 3, n, seed=0))
    assert not np.array_equal(idx, aug.few_shot_indices(mnist.y_train, 3, n, seed=1))


def test_few_shot_subset_all_and_too_many(small):
    every = aug.few_shot_indices(small.y_train, 8, None, seed=0)
    assert len(every) == int((small.y_train == 8).sum())
    with pytest.raises(DataError, match="digit 8"):
        aug.few_shot_indices(small.y_train, 8, len(every) + 1, seed=0)


def test_too_many_shots_is_one_clear_line(capsys):
    from mnistlab import cli

    rc = cli.main(["study", "augmentation", "--shots", "100000", "--no-progress", "--out", "x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("mnistlab: error:") and "100000" in err and "\n" not in err


def test_perturbation_is_seeded_and_grows_with_the_scale(rng):
    z = rng.normal(size=(10, 8)).astype(np.float32)
    zp, src = aug.perturb(z, 0.0, 30, seed=1)
    np.testing.assert_allclose(zp, z[src])
    # Same seed, same directions: the displacement grows linearly with the scale.
    far1, src1 = aug.perturb(z, 1.0, 200, seed=1)
    far4, src4 = aug.perturb(z, 4.0, 200, seed=1)
    np.testing.assert_array_equal(src1, src4)
    np.testing.assert_allclose(far4 - z[src4], 4 * (far1 - z[src1]), rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(far1 - z[src1], axis=1).mean() > 0


def test_breaking_point_interpolates():
    assert aug.breaking_point([0, 1, 2], [1.0, 0.9, 0.7]) is None
    assert aug.breaking_point([0, 1, 2], [1.0, 0.6, 0.4]) == pytest.approx(1.5)
    assert aug.breaking_point([0, 1], [0.2, 0.1]) == 0.0


def test_perturbation_sweep_goes_on_until_recognition_breaks():
    seen = []

    def measure(i, s):
        seen.append((i, s))
        return {"scale": s, "recognised": 1.0 if s < 20 else 0.2}

    rows = aug.perturbation_sweep((0.0, 1.0, 4.0), measure)
    # 4 is still recognised: 8, 16 and 32 follow, and recognition breaks between 16 and 32.
    assert [r["scale"] for r in rows] == [0.0, 1.0, 4.0, 8.0, 16.0, 32.0]
    assert seen == list(enumerate([0.0, 1.0, 4.0, 8.0, 16.0, 32.0]))
    brk = aug.breaking_point([r["scale"] for r in rows], [r["recognised"] for r in rows])
    assert 16 < brk < 32
    # Never broken: the sweep stops at the cap; broken within the grid: no extra scale.
    always = aug.perturbation_sweep((0.0, 1.0), lambda i, s: {"scale": s, "recognised": 1.0})
    assert always[-1]["scale"] == aug.MAX_SCALE
    early = aug.perturbation_sweep((0.0, 1.0, 2.0), lambda i, s: {"scale": s, "recognised": 0.0})
    assert [r["scale"] for r in early] == [0.0, 1.0, 2.0]


@pytest.mark.slow
@pytest.mark.browser
def test_quick_study_end_to_end(quick_study):
    out, m = quick_study("augmentation")
    r = m["results"]
    settings = {s["N"]: s for s in r["settings"]}
    assert sorted(settings) == ["10", "100"]
    for s in settings.values():
        assert s["n_train"] == int(s["N"])
        g = s["gaussian"]
        assert 0 <= g["recognised"] <= 1 and 1 <= g["vendi"] <= g["n"]
        assert 0 <= g["novelty"] < 1
        assert 0.02 < g["ink"] < 0.5  # decoded digits: strokes on a dark ground
        # Trained on all N images: no validation split, so no validation loss.
        assert s["history"] and not any("val_loss" in h for h in s["history"])
        last = s["perturbation"][-1]
        assert last["recognised"] < 0.5 or last["scale"] == aug.MAX_SCALE
    # Ten images are memorised: their codes decode to recognisable digits, and pushed far
    # enough the latents stop making the digit.
    rec = [r["recognised"] for r in settings["10"]["perturbation"]]
    assert rec[0] >= 0.8 and rec[-1] < rec[0]
    runs = r["classifier"]["runs"]
    assert {r["arm"] for r in runs} == {"real only", "real + synthetic", "real + flow"}
    assert all(0.1 < r["accuracy"] <= 1 for r in runs)
    # Each arm with synthetic digits adds synthetic_ratio x N of each class to the same real ones.
    for run in runs:
        assert run["n_real"] == 10 * run["shots"]
        assert run["n_synthetic"] == (0 if run["arm"] == "real only" else 5 * 10 * run["shots"])
    assert "real + flow, N=10" in (out / "report.html").read_text()
    # The old judge (v1) scored the same real digits and Gaussian samples against the same N
    # training digits, side by side with v2.
    comparison = r["judge_comparison"]
    assert comparison["judge_version"] == "v1" and comparison["judge_id"] != m["judge"]["judge_id"]
    sets = [(row["N"], row["set"]) for row in comparison["rows"]]
    assert sets == [
        ("", "real test digits"),
        ("10", "Gaussian samples"),
        ("100", "Gaussian samples"),
    ]
    assert all(0 <= row["judge v1 recognised"] <= 1 for row in comparison["rows"])
    header = (out / "judges.csv").read_text().splitlines()[0]
    assert header == (
        "digit,N,set,judge v1 recognised,judge v2 recognised,judge v1 novelty,judge v2 novelty"
    )
    assert "The old judge beside the new" in (out / "report.html").read_text()
    assert list(scaffold.answers(m)) == QUESTIONS
    assert all(v["finding"] for v in m["verdicts"])

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(out / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures >= 4 and check.rendered == check.figures, check.problems


def test_study_all_links_the_four_reports(tmp_path, monkeypatch):
    """`study all` runs each study into its subfolder and links them from index.html.

    ``scaffold.execute`` is replaced by a stand-in here: each study's --quick run is tested in its
    own file, and running all four would take minutes.
    """
    from types import SimpleNamespace

    from mnistlab import cli

    seen = []

    def execute(study, config, data_dir=None, out=None, *, progress=True, judge="v2"):
        seen.append((study, config.quick, config.seed))
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.html").write_text("<html></html>")
        verdict = scaffold.Verdict("q", "yes", f"{study} says yes. More.")
        return scaffold.Outcome(SimpleNamespace(seconds=1.0), [verdict], out / "report.html")

    monkeypatch.setattr(scaffold, "execute", execute)
    out = tmp_path / "all"
    assert cli.main(["study", "all", "--quick", "--seed", "4", "--out", str(out)]) == 0
    assert [s[0] for s in seen] == ["generation", "latent", "denoising", "augmentation"]
    assert all(quick and seed == 4 for _, quick, seed in seen)
    index = (out / "index.html").read_text()
    for name in ("generation", "latent", "denoising", "augmentation"):
        assert f'href="{name}/report.html"' in index and (out / name / "report.html").is_file()
    assert "denoising says yes." in index


# ---- verdicts and layout on made-up results -------------------------------------------------

QUESTIONS = [
    "Does the judge recognise the synthetic digits?",
    "How diverse are they?",
    "Are the synthetic digits new?",
    "How far must the latents be pushed before the judge stops recognising the digit?",
    "Does augmentation help a classifier?",
    "Does augmentation with the latent flow help a classifier?",
]
TASK5 = QUESTIONS[3]


def _set(recognised=0.9, novelty=0.5, ink=0.13, vendi=2.0, ci=None):
    return SetScores(
        n=100, recognised=recognised, p_digit=recognised, diversity=5.0, vendi=vendi,
        novelty=novelty, nn_distance=5.0, ink=ink, ci=ci or {},
    )  # fmt: skip


def _row(scale, recognised, ink=0.13, novelty=None, ci=None):
    novelty = (0.1 if scale == 0 else 0.6) if novelty is None else novelty
    return {"scale": scale, "latent_distance": 5.0 * scale} | dataclasses.asdict(
        _set(recognised=recognised, novelty=novelty, ink=ink, ci=ci)
    )


def _shot(perturbation, breaking=None, gaussian=None, shots=10):
    return aug.ShotResult(
        digit=8, shots=shots, n_train=shots or 5000, model={"test": {"bce": 0.1}},
        history=[{"epoch": 1, "train_loss": 0.3}, {"epoch": 2, "train_loss": 0.2}],
        steps_per_epoch=1, training_set=_set(), gaussian=gaussian or _set(novelty=0.45),
        perturbation=perturbation, breaking_scale=breaking,
        breaking_distance=None if breaking is None else 10.0, latent_spread=4.0,
        gaussian_grid=np.zeros((1, 28, 28)), train_grid=np.zeros((1, 28, 28)),
        path_images=np.zeros((3, len(perturbation), 28, 28)),
        path_p_digit=np.zeros((3, len(perturbation))),
    )  # fmt: skip


def _classifier(gains, base=0.6, flow_gains=()):
    runs = []
    for seed, gain in enumerate(gains):
        runs.append({"shots": 10, "seed": seed, "arm": "real only", "accuracy": base})
        runs.append({"shots": 10, "seed": seed, "arm": "real + synthetic", "accuracy": base + gain})
    for seed, gain in enumerate(flow_gains):
        runs.append({"shots": 10, "seed": seed, "arm": "real + flow", "accuracy": base + gain})
    return runs


def made_up(shots=None, real=None, classifier=(0.02, 0.03)):
    """An AugmentationResult with small numbers, no model behind it."""
    shots = shots or [_shot([_row(0.0, 1.0), _row(1.0, 0.8), _row(2.0, 0.3)], breaking=1.5)]
    config = aug.AugmentationConfig(
        digits=(8,), shots=tuple(s.shots for s in shots), classifier_shots=(10,)
    )
    return aug.AugmentationResult(
        config=config, data_source="made up", data_checksum="0", judge={"judge_id": "made-up"},
        real={8: _set(ink=0.13, vendi=3.0)} if real is None else real, shots=shots,
        classifier=_classifier(classifier) if classifier else [], seconds=1.0,
    )  # fmt: skip


def test_verdicts_ask_the_same_questions_in_order():
    verdicts = aug.verdicts(made_up())  # no flow arm: no sixth question
    assert [v.question for v in verdicts] == QUESTIONS[:5]
    assert all(v.answer for v in verdicts)
    assert not [v.finding for v in verdicts if any(ch.isdigit() for ch in v.finding)]
    # Without classifier runs there is no fifth question.
    assert [v.question for v in aug.verdicts(made_up(classifier=()))] == QUESTIONS[:4]


def test_recognition_verdict_follows_the_share_recognised():
    seen = made_up(shots=[_shot([_row(0.0, 1.0)], gaussian=_set(recognised=0.9))])
    v = aug.recognition_verdict(seen)
    assert v.finding == "yes" and "digit 8: N=10 90%" in v.answer
    unseen = made_up(shots=[_shot([_row(0.0, 1.0)], gaussian=_set(recognised=0.2))])
    assert aug.recognition_verdict(unseen).finding == "no"
    mixed = made_up(
        shots=[
            _shot([_row(0.0, 1.0)], gaussian=_set(recognised=0.9)),
            _shot([_row(0.0, 1.0)], gaussian=_set(recognised=0.2), shots=100),
        ]
    )
    assert aug.recognition_verdict(mixed).finding == "partly"


def test_diversity_verdict_compares_with_real_digits():
    narrow = made_up(shots=[_shot([_row(0.0, 1.0)], gaussian=_set(vendi=1.5))])
    v = aug.diversity_verdict(narrow)
    assert v.finding == "less diverse than real digits"
    assert "digit 8: Vendi 1.5 (N=10) against 3.0 for 100 real test digits" in v.answer
    wide = made_up(shots=[_shot([_row(0.0, 1.0)], gaussian=_set(vendi=4.0))])
    assert aug.diversity_verdict(wide).finding == "as diverse as real digits"
    assert aug.diversity_verdict(made_up(real={})).finding == "no real reference"


def test_novelty_verdict_follows_the_reconstructions():
    newer = made_up(shots=[_shot([_row(0.0, 1.0, novelty=0.1)], gaussian=_set(novelty=0.45))])
    v = aug.novelty_verdict(newer)
    assert v.finding == "yes" and v.answer.startswith("Yes: the Gaussian samples lie further")
    assert "digit 8, N=10: 0.45 against 0.10 for the plain reconstructions" in v.answer
    older = made_up(shots=[_shot([_row(0.0, 1.0, novelty=0.5)], gaussian=_set(novelty=0.45))])
    v = aug.novelty_verdict(older)
    assert v.finding == "no" and v.answer.startswith("No: ")
    no_zero = made_up(shots=[_shot([_row(1.0, 1.0)])])  # no scale 0: nothing to compare with
    v = aug.novelty_verdict(no_zero)
    assert v.finding == "not measured" and v.answer.startswith("Only for some settings")


def test_novelty_verdict_weighs_the_spread():
    def shot(gaussian_ci, recon_ci):
        gaussian = _set(novelty=0.30, ci={"novelty": gaussian_ci})
        return _shot([_row(0.0, 1.0, novelty=0.25, ci={"novelty": recon_ci})], gaussian=gaussian)

    apart = aug.novelty_verdict(made_up(shots=[shot((0.28, 0.32), (0.23, 0.27))]))
    assert apart.finding == "yes" and "0.30 (0.28-0.32) against 0.25 (0.23-0.27)" in apart.answer
    # Higher, but inside the spread: not called newer.
    close = aug.novelty_verdict(made_up(shots=[shot((0.20, 0.40), (0.15, 0.35))]))
    assert close.finding == "no" and "or not by more than the spread" in close.answer


def test_few_shot_scores_carry_bootstrap_intervals(small, mnist):
    from mnistlab import store

    judge, _ = store.load_judge(mnist, progress=False)  # the shipped judge: nothing to train
    eights = small.x_train[small.y_train == 8]
    scorer = FewShotScorer(judge, 8, eights[:10], small.x_test[small.y_test == 8])
    copies = scorer.score(eights[:10])
    assert copies.novelty == 0 and copies.ci["novelty"] == (0.0, 0.0)
    fresh = scorer.score(small.x_test[small.y_test == 8])
    lo, hi = fresh.ci["novelty"]
    assert lo <= fresh.novelty <= hi and 0 < hi - lo < 0.5
    lo, hi = fresh.ci["recognised"]
    assert lo <= fresh.recognised <= hi <= 1


def test_task5_verdict_does_not_call_blobs_digits():
    for last_ink, says, finding in [
        (0.45, "saturated blobs", "never breaks (blobs)"),
        (0.14, "draws it from any code", "never breaks"),
    ]:
        result = made_up(shots=[_shot([_row(0.0, 1.0), _row(128.0, 0.7, last_ink)])])
        v = aug.breaking_verdict(result)
        assert says in v.answer and "128 sigma" in v.answer and v.finding == finding
        assert scaffold.findings(aug.verdicts(result))["Are the synthetic digits new?"] == "yes"


def test_task5_verdict_where_recognition_breaks_or_never_starts():
    broken = aug.breaking_verdict(made_up())
    assert broken.finding == "breaks"
    assert "digit 8, N=10: 1.50 sigma, a latent displacement of 10.00 (2.5 times" in broken.answer
    never = made_up(shots=[_shot([_row(0.0, 0.3), _row(1.0, 0.1)], breaking=0.0)])
    v = aug.breaking_verdict(never)
    assert v.finding == "not applicable" and "recognised only 30% of the time" in v.answer
    both = made_up(
        shots=[
            _shot([_row(0.0, 1.0), _row(2.0, 0.3)], breaking=1.5),
            _shot([_row(0.0, 0.3)], breaking=0.0, shots=100),
        ]
    )
    assert aug.breaking_verdict(both).finding == "breaks, not applicable"


def test_classifier_verdict_follows_every_seed():
    v = aug.classifier_verdict(made_up(classifier=(0.02, 0.03)))
    assert v.finding == "yes" and v.answer.startswith("Yes. N=10 per class: 60.0%")
    assert "paired gain +2.5 points (from +2.0 to +3.0 over 2 seeds): it helps" in v.answer
    assert aug.classifier_verdict(made_up(classifier=(-0.02, -0.01))).finding == "no"
    assert aug.classifier_verdict(made_up(classifier=(-0.02, 0.03))).finding == "not clearly"
    assert aug.classifier_verdict(made_up(classifier=())) is None


def test_flow_arm_has_its_own_verdict_on_its_own_seeds():
    result = made_up()
    result.classifier = _classifier((0.02, 0.03), flow_gains=(-0.01, 0.04))
    v = aug.flow_classifier_verdict(result)
    assert v.finding == "not clearly" and v.question == QUESTIONS[5]
    assert "61.5% (sd 3.5) with flow samples added" in v.answer
    assert "+1.5 points (from -1.0 to +4.0 over 2 seeds): unclear" in v.answer
    assert "the Gaussian samples' gain: +2.5" in v.answer
    assert aug.classifier_verdict(result).finding == "yes"  # the Gaussian arm's, as before
    row = aug.classifier_summary(result)[0]
    assert row["flow_gain_mean"] == pytest.approx(0.015)
    assert row["gain_mean"] == pytest.approx(0.025)
    # A flow run missing for one seed changes nothing of the Gaussian arm's figures.
    result.classifier = result.classifier[:-1]
    summary = aug.classifier_summary(result)[0]
    assert summary["flow_seeds"] == 1 and summary["seeds"] == 2
    assert {k: summary[k] for k in row if not k.startswith(("flow_", "with_flow"))} == {
        k: row[k] for k in row if not k.startswith(("flow_", "with_flow"))
    }
    result.classifier = _classifier((0.02, 0.03), flow_gains=(0.05, 0.06))
    assert aug.flow_classifier_verdict(result).finding == "yes"
    assert aug.flow_classifier_verdict(made_up()) is None  # no flow arm, no question


def test_numbers_tables_and_report_of_a_made_up_result():
    result = made_up()
    body = aug.numbers(result)
    assert set(body) == {"real_test_digits", "settings", "classifier", "judge_comparison"}
    assert body["judge_comparison"] is None  # no other judge: no side-by-side rows made up
    assert body["settings"][0]["N"] == "10" and body["classifier"]["summary"][0]["seeds"] == 2
    tables = aug.tables(result)
    assert set(tables) == {
        "sets", "perturbation", "breaking_point", "classifier", "history", "judges",
    }  # fmt: skip
    assert tables["judges"] == []
    assert len(tables["perturbation"]) == 3 and tables["history"][1]["step"] == 2
    html = aug.report(result, aug.verdicts(result)).to_html()
    for section in ("Answers", "The set-up", "Digit 8", "Pushing the latents", "help a classifier"):
        assert section in html
    assert "1.50 sigma" in html
