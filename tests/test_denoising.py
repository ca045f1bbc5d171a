"""The denoising study: the noise model, the seeded test noise, and the study end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlab import data as mdata
from mnistlab.studies import denoising


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


@pytest.mark.slow
@pytest.mark.browser
def test_quick_study_end_to_end(tmp_path):
    from mnistlab import cli

    out = tmp_path / "denoising"
    rc = cli.main(["study", "denoising", "--quick", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert (out / "report.html").is_file()
    assert (out / "cross_level.csv").is_file()
    m = json.loads((out / "metrics.json").read_text())
    levels = {lv["noise_factor"]: lv for lv in m["levels"]}
    assert sorted(levels) == [0.5, 0.7, 0.9]
    for lv in levels.values():
        # Denoising brings the images closer to the clean ones, on every measure.
        assert lv["denoised"]["bce"] < lv["noisy"]["bce"]
        assert lv["denoised"]["psnr"] > lv["noisy"]["psnr"]
        assert 0 <= lv["denoised"]["judge_accuracy"] <= 1
        assert lv["history"], "loss curve missing"
    assert len(m["cross_level"]) == 3 * 4  # trained at 3 levels, evaluated clean + 3 levels
    # At the highest level the structure comes back too, and the judge reads noisy digits worse
    # than clean ones and denoised ones better than noisy ones.
    hi = levels[0.9]
    assert hi["denoised"]["ssim"] > hi["noisy"]["ssim"]
    assert hi["noisy"]["judge_accuracy"] < m["clean_judge_accuracy"]
    assert hi["denoised"]["judge_accuracy"] > hi["noisy"]["judge_accuracy"]
    assert any("0.9" in q for q in m["verdicts"])

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(out / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures >= 3 and check.rendered == check.figures, check.problems
