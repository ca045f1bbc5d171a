"""The denoising study: the noise model, the seeded test noise, the verdicts on made-up results,
the report's layout, and the study end to end."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab import data as mdata
from mnistlab import spread
from mnistlab.studies import denoising, scaffold


def test_noise_statistics_match_the_model():
    """clip(x + f * N(0, 1), 0, 1): mean and spread as the formula says where clipping is rare."""
    x = np.full((200, 28, 28), 0.5, dtype=np.float32)
    noisy = mdata.add_noise(x, 0.1, random_state=0)
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    # 0.5 is five sigma from either bound: clipping touches about 6e-7 of the pixels.
    assert abs(float(noisy.mean()) - 0.5) < 2e-3
    assert abs(float(noisy.std()) - 0.1) < 2e-3


def test_noise_is_clipped_to_the_unit_interval(small):
    x = small.x_test[:100]
    noisy = mdata.add_noise(x, 2.0, random_state=1)
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    # A black pixel (0) plus 2 * N(0, 1) is clipped to 0 half the time, never below.
    black = mdata.to_float(x).reshape(x.shape) == 0
    share_zero = float((noisy[black] == 0).mean())
    assert 0.47 < share_zero < 0.53
    # And with a factor 2, a white pixel (1) stays at exactly 1 about half the time.
    white = mdata.to_float(x).reshape(x.shape) == 1
    assert 0.4 < float((noisy[white] == 1).mean()) < 0.6


def test_noise_uint8_and_float_inputs_agree(small):
    x = small.x_train[:10]
    a = mdata.add_noise(x, 0.5, random_state=3)
    b = mdata.add_noise(x.astype(np.float32) / 255.0, 0.5, random_state=3)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_test_noise_is_seeded_by_seed_and_level(small):
    x = small.x_test[:50]
    a = denoising.noisy_test_images(x, 0.7, seed=0)
    np.testing.assert_array_equal(a, denoising.noisy_test_images(x, 0.7, seed=0))
    assert not np.array_equal(a, denoising.noisy_test_images(x, 0.7, seed=1))
    assert not np.array_equal(a, denoising.noisy_test_images(x, 0.5, seed=0))
    # Level 0 is the clean image itself.
    clean = denoising.noisy_test_images(x, 0.0, seed=0)
    np.testing.assert_allclose(clean * 255, x, atol=1e-4)
    # More noise, further from the clean image.
    err = [
        float(np.abs(denoising.noisy_test_images(x, f, seed=0) - clean).mean())
        for f in (0.5, 0.7, 0.9)
    ]
    assert err[0] < err[1] < err[2]


def test_one_of_each_digit(small):
    idx = denoising.one_of_each_digit(small.y_test)
    assert small.y_test[idx].tolist() == list(range(10))


def test_config_validates_noise_factors():
    with pytest.raises(ValueError):
        denoising.DenoisingConfig(noise_factors=(0.0,))
    # Sorted and deduplicated: the verdicts read the first level as the lowest.
    assert denoising.DenoisingConfig(noise_factors=(1, 0.5, 1)).eval_levels == (0.0, 0.5, 1.0)


# ---- verdicts and layout on made-up results -------------------------------------------------

QUESTIONS = [
    "Do we do at least as well as brief 003?",
    "Can you still read it at noise 0.9?",
    "How does the noise level matter?",
    "Does a denoiser trained at one level work at another?",
]


def _figures(bce, judge_accuracy, psnr=20.0, ssim=0.8):
    return {
        "bce": bce,
        "mse": bce / 10,
        "psnr": psnr,
        "ssim": ssim,
        "judge_accuracy": judge_accuracy,
    }


def made_up(
    bce=(0.09, 0.12, 0.14),
    noisy_accuracy=0.5,
    denoised_accuracy=0.9,
    clean_accuracy=0.99,
    own_level_best=True,
    factors=(0.5, 0.7, 0.9),
    flips=None,
):
    """A DenoisingResult with small numbers, no model behind it."""
    config = denoising.DenoisingConfig(noise_factors=factors)
    levels = [
        denoising.LevelResult(
            noise_factor=f,
            model={"test": {"loss": b}},
            history=[{"epoch": 1, "train_loss": 0.2, "val_loss": 0.21}],
            noisy=_figures(1.5, noisy_accuracy, psnr=10.0, ssim=0.3),
            denoised=_figures(b, denoised_accuracy),
            judge_flips=flips or {},
        )
        for f, b in zip(config.noise_factors, bce, strict=True)
    ]
    cross = []
    for a in config.noise_factors:
        for b in config.eval_levels:
            # Own level best: the error grows with the distance between the levels; otherwise
            # the model trained at the highest level wins everywhere.
            err = 0.1 + abs(a - b) if own_level_best else 0.1 + (1 - a)
            cross.append({"trained_at": a, "evaluated_at": b, **_figures(err, 0.9)})
    grid = np.zeros((10, 28, 28), dtype=np.float32)
    return denoising.DenoisingResult(
        config=config, data_source="made up", data_checksum="0", judge={"judge_id": "made-up"},
        n_test=1000, clean_accuracy=clean_accuracy, levels=levels, cross=cross, grid_clean=grid,
        grid_noisy={f: grid for f in config.noise_factors},
        grid_denoised={f: grid for f in config.noise_factors}, seconds=1.0,
    )  # fmt: skip


def test_verdicts_ask_the_same_questions_in_order():
    verdicts = denoising.verdicts(made_up())
    assert [v.question for v in verdicts] == QUESTIONS
    assert all(v.answer for v in verdicts)
    assert not [v.finding for v in verdicts if any(ch.isdigit() for ch in v.finding)]


def test_brief_verdict_follows_the_bce():
    beat = denoising.brief_verdict(made_up(bce=(0.09, 0.12, 0.14)))
    assert beat.finding == "yes" and beat.answer.startswith("Yes: at noise 0.5 our denoised")
    assert "0.0900 against the brief's 0.10" in beat.answer and "1,000 test images" in beat.answer
    missed = denoising.brief_verdict(made_up(bce=(0.11, 0.12, 0.14)))
    assert missed.finding == "no" and missed.answer.startswith("No: ")
    # No level that the brief reports: no such question.
    assert denoising.brief_verdict(made_up(bce=(0.1,), factors=(0.7,))) is None
    assert len(denoising.verdicts(made_up(bce=(0.1,), factors=(0.7,)))) == 3


def test_readable_verdict_follows_the_accuracies():
    helps = denoising.readable_verdict(made_up(noisy_accuracy=0.5, denoised_accuracy=0.9))
    assert helps.finding == "denoising helps"
    assert "wins back 82% of the accuracy the noise took" in helps.answer  # 0.4 / 0.49
    assert "50.0% of the noisy ones at noise 0.9" in helps.answer
    worse = denoising.readable_verdict(made_up(noisy_accuracy=0.5, denoised_accuracy=0.4))
    assert worse.finding == "denoising does not help"
    free = denoising.readable_verdict(made_up(noisy_accuracy=0.99, clean_accuracy=0.99))
    assert free.finding == "noise costs nothing"
    # On 1,000 images, 50.0% against 51.5% is inside the spread: the verdict does not call it.
    # The same 1,000 images read twice: 55 right only once denoised, 40 only while noisy is
    # within the spread (McNemar's exact p = 0.15); 410 against 10 is not.
    flips = {"noisy_only": 40, "denoised_only": 55}
    close = denoising.readable_verdict(
        made_up(noisy_accuracy=0.5, denoised_accuracy=0.515, flips=flips)
    )
    assert close.finding == "too close to tell" and "+1.5 points" in close.answer
    assert "McNemar's p = 0.15" in close.answer
    flips = {"noisy_only": 10, "denoised_only": 410}
    apart = denoising.readable_verdict(made_up(flips=flips))
    assert apart.finding == "denoising helps" and "p = 3.2e-107" in apart.answer


def test_mcnemar_counts_only_the_discordant_pairs():
    assert spread.mcnemar(0, 0) == 1.0
    assert spread.mcnemar(40, 55) == spread.mcnemar(55, 40) == pytest.approx(0.150, abs=0.001)
    assert spread.mcnemar(0, 10) == pytest.approx(2 * 0.5**10)  # all ten flips one way


def test_level_verdict_follows_the_order_of_the_bces():
    assert (
        scaffold.findings(denoising.verdicts(made_up(bce=(0.09, 0.12, 0.14))))[QUESTIONS[2]]
        == "steadily worse"
    )
    v = denoising.level_verdict(made_up(bce=(0.09, 0.15, 0.14)))
    assert v.finding == "not steadily worse"
    assert v.answer.startswith("The denoised images do not get steadily worse")
    assert "from 0.0900 at noise 0.5 to 0.1400 at 0.9" in v.answer
    assert denoising.level_verdict(made_up(bce=(0.1,), factors=(0.7,))).finding == "one level"


def test_cross_verdict_names_the_best_model_per_level():
    own = denoising.cross_verdict(made_up(own_level_best=True))
    assert own.finding == "each level's own model is best"
    assert "at noise 0.5 the best model is the one trained at 0.5" in own.answer
    other = denoising.cross_verdict(made_up(own_level_best=False))
    assert other.finding == "another level's model is best somewhere"
    assert "at noise 0.5 the best model is the one trained at 0.9" in other.answer


def test_numbers_tables_and_report_of_a_made_up_result():
    result = made_up()
    body = denoising.numbers(result)
    assert body["clean_judge_accuracy"] == 0.99 and len(body["levels"]) == 3
    assert len(body["cross_level"]) == 3 * 4 and len(body["brief_003"]) == 2
    assert "verdicts" not in body and "config" not in body  # the envelope's
    t = denoising.tables(result)
    assert set(t) == {"levels", "cross_level", "history", "judges"} and len(t["levels"]) == 3
    assert t["judges"] == []  # a result without the other judge's rows
    verdicts = denoising.verdicts(result)
    html = denoising.report(result, verdicts).to_html()
    for section in ("Answers", "The set-up", "Every noise level", "Loss curves", "Cross-level"):
        assert section in html
    assert "wins back 82%" in html


@pytest.mark.slow
@pytest.mark.browser
def test_quick_study_end_to_end(quick_study):
    out, m = quick_study("denoising")
    assert (out / "cross_level.csv").is_file()
    r = m["results"]
    levels = {lv["noise_factor"]: lv for lv in r["levels"]}
    assert sorted(levels) == [0.5, 0.7, 0.9]
    for lv in levels.values():
        # Denoising brings the images closer to the clean ones, on every measure.
        assert lv["denoised"]["bce"] < lv["noisy"]["bce"]
        assert lv["denoised"]["psnr"] > lv["noisy"]["psnr"]
        assert 0 <= lv["denoised"]["judge_accuracy"] <= 1
        assert lv["history"], "loss curve missing"
    assert len(r["cross_level"]) == 3 * 4  # trained at 3 levels, evaluated clean + 3 levels
    # At the highest level the structure comes back too, and the judge reads noisy digits worse
    # than clean ones and denoised ones better than noisy ones.
    hi = levels[0.9]
    assert hi["denoised"]["ssim"] > hi["noisy"]["ssim"]
    assert hi["noisy"]["judge_accuracy"] < r["clean_judge_accuracy"]
    assert hi["denoised"]["judge_accuracy"] > hi["noisy"]["judge_accuracy"]
    assert list(scaffold.answers(m)) == QUESTIONS
    assert all(v["finding"] for v in m["verdicts"])
    # The old judge (v1) read the same images: it too reads noise worse and denoised digits
    # better, and the report shows both judges' accuracies side by side.
    comparison = r["judge_comparison"]
    assert comparison["version"] == "v1" and comparison["judge_id"] != m["judge"]["judge_id"]
    old = {row["images"]: row["accuracy"] for row in comparison["rows"]}
    levels_asked = [f"{k} {a:g}" for a in (0.5, 0.7, 0.9) for k in ("noisy", "denoised")]
    assert list(old) == ["clean", *levels_asked]
    assert old["noisy 0.9"] < old["clean"] and old["denoised 0.9"] > old["noisy 0.9"]
    header = (out / "judges.csv").read_text().splitlines()[0]
    assert header == "images,judge v1 accuracy,judge v2 accuracy"
    assert "The old judge beside the new" in (out / "report.html").read_text()

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(out / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures >= 3 and check.rendered == check.figures, check.problems
