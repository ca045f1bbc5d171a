"""The judge against sets whose right answer is known (issue: "A judge that can tell").

The shipped judge is scored on a seeded subsample of every set of ``judge_check``; the targets
are asserted where the judge meets them, and the misses are pinned to what was measured so that a
judge that gets worse fails.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mnistlab import judge_check, metrics, perturb, projection, store, tangent
from mnistlab.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def v2_scorer(mnist):
    judge, meta = store.load_judge(mnist, progress=False)
    return metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)


@pytest.fixture(scope="module")
def v2_result(v2_scorer):
    return judge_check.check(v2_scorer, n=400, seed=1)  # the strength sweep: 100 a point


@pytest.fixture(scope="module")
def v2_check(v2_result):
    return {r.name: r for r in v2_result.rows}


def test_real_test_digits_are_sure_and_new(v2_check):
    real = v2_check["real test digits"]
    assert real.quality >= judge_check.REAL_QUALITY_MIN
    assert judge_check.REAL_NOVELTY[0] <= real.novelty <= judge_check.REAL_NOVELTY[1]
    assert real.near_copy_rate <= judge_check.REAL_RATE_MAX


@pytest.mark.parametrize(
    "kind", ["uniform noise", "gaussian noise", "blank", "near-blank", "blobs"]
)
def test_what_is_not_a_digit_gets_low_quality(v2_check, kind):
    assert v2_check[f"non-digit: {kind}"].quality <= judge_check.NON_DIGIT_QUALITY_MAX


def test_every_kind_of_non_digit_scores_far_below_real_digits(v2_check):
    real = v2_check["real test digits"].quality
    for name, row in v2_check.items():
        if row.group.startswith("non-digit"):
            # Letters (never seen in training) score 0.41 at n = 2,000: the 0.2 target is missed
            # for them, yet they stay at less than half the quality of real digits.
            assert row.quality < 0.5 * real, name


def test_copies_that_the_canonical_form_undoes_are_copies(v2_check):
    for name in ("identical", "moved 1 px", "moved 2 px", "contrast x0.7", "contrast x0.5"):
        row = v2_check[f"copy: {name}"]
        assert row.novelty <= judge_check.COPY_NOVELTY_MAX, name
        assert row.near_copy_rate >= judge_check.COPY_RATE_MIN, name


def test_blurred_copies_are_copies(v2_check):
    light, strong = v2_check["copy: blurred (sigma 0.7)"], v2_check["copy: blurred (sigma 1.0)"]
    assert light.novelty <= judge_check.COPY_NOVELTY_MAX
    assert light.near_copy_rate >= judge_check.COPY_RATE_MIN
    # sigma 1.0 meets the 0.9 target with 2,000 copies (0.913) by less than this subsample's
    # spread (400 copies, seed 1: 0.89): its novelty target is asserted, its rate pinned near it.
    assert strong.novelty <= judge_check.COPY_NOVELTY_MAX
    assert strong.near_copy_rate >= 0.85


def test_projected_copies_are_copies(v2_check):
    # PCA-50 at n = 2,000: 0.942 near-copies with the projection distance's opinion (0.667
    # without it, 0.518 with the descriptor alone).
    projected = v2_check["copy: PCA 50 components"]
    assert projected.near_copy_rate >= judge_check.COPY_RATE_MIN
    assert projected.novelty <= judge_check.COPY_NOVELTY_MAX


# At n = 2,000: turned 0.938 and noisy 0.948 near-copies (0.844 and 0.885 with one tangent step
# and every pixel kept, 0.505 and 0.890 with the descriptor alone); thicker 0.998 and thinner
# 0.979, found through the stroke index and compared in their own stroke width (0.617 and
# 0.793 with the descriptor's candidates only).
@pytest.mark.parametrize("name", ["turned 10 deg", "noise (sigma 0.1)", "thicker", "thinner"])
def test_turned_noisy_thicker_and_thinner_copies_are_copies(v2_check, name):
    row = v2_check[f"copy: {name}"]
    assert row.near_copy_rate >= judge_check.COPY_RATE_MIN
    assert row.novelty <= judge_check.COPY_NOVELTY_MAX


def _drawn(images: np.ndarray, width: float, height: float) -> np.ndarray:
    """uint8 digits (N, 28, 28) drawn at ``width`` and ``height`` times their size about the
    centre (bilinear), as the check's held-out sets draw them: float32 (N, 28, 28)."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    return perturb.warp(x, width=width, height=height)[:, 0].numpy()


def test_copies_drawn_smaller_or_squeezed_are_copies(mnist, v2_scorer):
    # Two of the check's held-out changes (``--held-out``), on other digits. A digit drawn
    # smaller has less ink, which tangent distance's stroke matching read as a thinner stroke:
    # its source drawn thinner matched it worse than the source as drawn. Measured (400 a set,
    # seed 1): drawn at 0.9 of its size 0.840 -> 0.955 near-copies, squeezed to 0.85 of its
    # height 0.738 -> 0.860 (still short of 0.9: pinned), fresh digits so changed 0.8% -> 1.3%
    # and 1.3% -> 1.5% (seeds 2 and 3: up to 3.8%, against the 2% of real test digits).
    rng = np.random.default_rng(1)
    src = mnist.x_train[rng.choice(len(mnist.x_train), 400, replace=False)]
    fresh = mnist.x_test[rng.choice(len(mnist.x_test), 400, replace=False)]
    for (width, height), least in (((0.9, 0.9), judge_check.COPY_RATE_MIN), ((1.0, 0.85), 0.8)):
        copies = v2_scorer.image_scores(_drawn(src, width, height))["near_copy"].mean()
        others = v2_scorer.image_scores(_drawn(fresh, width, height))["near_copy"].mean()
        assert copies >= least and others <= 0.03, (width, height, copies, others)


def test_copies_under_changes_no_setting_was_chosen_on(mnist, v2_scorer):
    # ``HELD_OUT_CHANGES``: every copy reads as less new than a fresh digit under the same
    # change, and fresh digits so changed stay new; where the judge generalises, the copy
    # targets hold. Measured (100 a set, seed 1): copies at least 0.35 less new than fresh digits
    # (dilated 2 x 2: 0.115 against 0.470; an erased patch, 0.550 against 0.686 before session
    # 29's ``tangent.hole_look``), fresh digits at most 4% near-copies; (400, seed 1)
    # near-copies: gamma 0.5 0.950, 4 grey levels 0.998, JPEG 50 1.000, moved 0.5 px 0.995,
    # sheared 0.940, drawn at 0.9 0.958.
    sets = judge_check.held_out_sets(mnist, n=100, seed=1)
    for name in judge_check.HELD_OUT_CHANGES:
        copies = v2_scorer.image_scores(sets[f"copy, held out: {name}"][1])
        fresh = v2_scorer.image_scores(sets[f"fresh, held out: {name}"][1])
        assert copies["novelty"].mean() < fresh["novelty"].mean(), name
        assert fresh["near_copy"].mean() <= 0.05, name
    assert len(judge_check.HELD_OUT_CHANGES) == 36  # as the CLI's help and the README say
    met = ["gamma 0.5", "4 grey levels", "JPEG quality 50", "moved 0.5 px on each axis (bilinear)"]
    met += ["sheared 0.15", "drawn at 0.9 of its size"]
    sets = judge_check.held_out_sets(mnist, n=400, seed=1, names=met)
    for name in met:
        copies = v2_scorer.image_scores(sets[f"copy, held out: {name}"][1])
        assert copies["near_copy"].mean() >= judge_check.COPY_RATE_MIN, name
        assert copies["novelty"].mean() <= judge_check.COPY_NOVELTY_MAX, name
    with pytest.raises(ValueError, match="no held-out change"):
        judge_check.held_out_sets(mnist, n=10, names=["turned 90 deg"])


def test_copies_that_lost_ink_pixels_are_caught_at_tangent_distances_second_look(
    monkeypatch, mnist, v2_scorer
):
    # A tenth of a copy's ink cleared (the held-out "pepper"): tangent distance looks again at
    # its nearest candidate with both mended (``tangent.SECOND_LOOK``). Measured (400, seed 1):
    # near-copies 0.753 without it (for these images; the calibration keeps it) -> 0.860 (seed
    # 2: 0.730 -> 0.815), fresh digits so changed 0% and 0.25% either way; since session 29's
    # ``tangent.hole_look``, which sees some of them too, 0.763 -> 0.868, fresh 0%. Short of 0.9:
    # pinned.
    sets = judge_check.held_out_sets(mnist, n=400, seed=1, names=["pepper (10% of ink)"])
    copies, fresh = (sets[f"{g}, held out: pepper (10% of ink)"][1] for g in ("copy", "fresh"))
    caught = v2_scorer.image_scores(copies)["near_copy"].mean()
    assert caught >= 0.82 and v2_scorer.image_scores(fresh)["near_copy"].mean() <= 0.02
    monkeypatch.setattr(tangent, "SECOND_LOOK", False)
    assert v2_scorer.image_scores(copies)["near_copy"].mean() <= caught - 0.07


def test_copies_with_a_patch_of_ink_erased_are_caught_at_the_hole_look(
    monkeypatch, mnist, v2_scorer
):
    # A 4 x 4 patch of a copy's ink erased (the held-out "a 4 x 4 patch erased"): tangent
    # distance compares each query with its nearest candidate and the projection's nearest once
    # more without the window of most missing ink (``tangent.hole_look``). Measured (400, seed
    # 1): near-copies 0.158 without it (for these images; the calibration keeps it) -> 0.845,
    # fresh digits so changed 0% -> 0.25% (seed 2: 0.158 -> 0.810, 0.5% either way). Short of
    # 0.9 (the source is among the two candidates for about 84% of such copies): pinned.
    name = "a 4 x 4 patch erased"
    sets = judge_check.held_out_sets(mnist, n=400, seed=1, names=[name])
    copies, fresh = (sets[f"{g}, held out: {name}"][1] for g in ("copy", "fresh"))
    caught = v2_scorer.image_scores(copies)["near_copy"].mean()
    assert caught >= 0.75 and v2_scorer.image_scores(fresh)["near_copy"].mean() <= 0.02
    monkeypatch.setattr(tangent, "HOLE_SHARE", -1.0)  # no refit is kept (but an exact match)
    assert v2_scorer.image_scores(copies)["near_copy"].mean() <= caught - 0.4


@pytest.mark.parametrize("sd, floor", [(0.2, 0.85), (0.3, 0.65)])
def test_noisy_copies_are_caught_with_what_their_noise_adds_taken_out(
    monkeypatch, mnist, v2_scorer, sd, floor
):
    # Training digits under noise of sd 0.2 (twice the check's) and 0.3 (what the pixel KDE
    # samples at bandwidths of 0.2 and 0.3): tangent distance takes what the noise adds out of
    # every distance (``tangent.NOISE_SHARE``), projection distance the noise's haze and spread
    # (``projection.NOISE_SHARE``). Measured (400, seed 1), near-copies with neither / tangent
    # distance's alone / both: sd 0.2 0.580 / 0.713 / 0.883 (seed 2: 0.613 / 0.760 / 0.930), sd
    # 0.3 0.078 / 0.085 / 0.700 (0.090 / 0.093 / 0.725); fresh digits so changed at most 0.25%
    # with neither, 1.0% with both. Short of 0.9: pinned.
    rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(1)
    picked = (x[rng.choice(len(x), 400, replace=False)] for x in (mnist.x_train, mnist.x_test))
    copies, fresh = (
        perturb.noise(torch.from_numpy(x.astype(np.float32) / 255.0)[:, None], gen, sd).numpy()
        for x in picked
    )
    caught = v2_scorer.image_scores(copies)["near_copy"].mean()
    assert caught >= floor and v2_scorer.image_scores(fresh)["near_copy"].mean() <= 0.015
    monkeypatch.setattr(projection, "noise_sd", lambda level: np.zeros(len(level)))
    tangent_alone = v2_scorer.image_scores(copies)["near_copy"].mean()
    assert tangent_alone <= caught - 0.1
    monkeypatch.setattr(tangent, "NOISE_SHARE", 0.0)
    if sd == 0.2:  # at sd 0.3 tangent distance's share adds less than 1%
        assert v2_scorer.image_scores(copies)["near_copy"].mean() <= tangent_alone - 0.1


def test_typeset_digits_are_read_as_their_digit_and_as_new(v2_scorer):
    # Fresh digits of a kind no judge saw: typeset, drawn MNIST-style as the letters are.
    # Measured (50 a digit, seeds 1-10): read right 94.8%, novelty 0.570, 0.6% near-copies; the
    # judge is less sure of them than of handwritten digits, quality 0.680 (real test digits
    # 0.97, letters 0.31): pinned.
    typeset = np.concatenate([judge_check.letters(50, 1 + d, chars=str(d)) for d in range(10)])
    each = v2_scorer.image_scores(typeset)
    assert (each["predicted"] == np.repeat(np.arange(10), 50)).mean() >= 0.9
    assert each["near_copy"].mean() <= judge_check.REAL_RATE_MAX
    assert each["novelty"].mean() >= judge_check.REAL_NOVELTY[0]
    assert each["quality"].mean() >= 0.6
    with pytest.raises(ValueError, match="at least one character"):
        judge_check.letters(5, 0, chars="")


def test_a_grey_page_costs_v2_quality_as_the_haze_note_says(mnist, v2_scorer):
    # The figures of metrics.HAZE's comment (test digits 0.961 at 0, 0.953 at +0.01, 0.869 at
    # +0.05, the first 1,000): on the first 300, the note's "about a point per 0.01" and "9
    # points at 0.05", with room for a smaller sample.
    x = mnist.x_test[:300] / 255.0
    q = [v2_scorer.image_scores(np.clip(x + b, 0, 1))["quality"].mean() for b in (0, 0.01, 0.05)]
    assert 0.003 <= q[0] - q[1] <= 0.02
    assert 0.05 <= q[0] - q[2] <= 0.15
    assert metrics.haze_note(np.clip(x + 0.012, 0, 1), mnist.x_test, "v2") is not None
    assert metrics.haze_note(np.clip(x + 0.005, 0, 1), mnist.x_test, "v2") is None


@pytest.mark.parametrize("judge", ["v1", "v2"])
def test_digits_in_negative_are_named_inverted_with_either_judge(mnist, judge):
    # Dark digits on a white page, as other tools often save them: v2 reads them as no digit,
    # v1 as fairly sure ones (quality 0.0002 and 0.75), so the note names the slip for both.
    x = mnist.x_test[:300]
    note = metrics.haze_note(255 - x, mnist.x_test, judge)
    assert note is not None and "inverted" in note and "255 - x" in note
    assert metrics.haze_note(x, mnist.x_test, judge) is None
    assert metrics.haze_note(1 - x / 255.0, mnist.x_test, judge) == note


def test_binary_samples_are_named_with_the_quality_of_binarised_test_digits(mnist, v2_scorer):
    # Binary digits (a Bernoulli decoder's samples, binarised MNIST) lack grey edges, and v2
    # reads them as less sure: test digits 0.965 as they are, 0.840 thresholded at 0.5, 0.573
    # sampled pixel by pixel. The note gives those figures, and they foretell the quality of
    # training digits so binarised: what a perfect generator of digits so binarised scores.
    x = mnist.x_train[:300] / 255.0
    thresholded = (x > 0.5).astype(np.float32)
    note = metrics.binary_note(thresholded, v2_scorer)
    assert note is not None and "binary" in note
    assert metrics.binary_note((thresholded * 255).astype(np.uint8), v2_scorer) == note
    as_is, by_threshold, sampled = (
        float(v)
        for v in re.findall(
            r"quality ([0-9.]+) as they are, ([0-9.]+) thresholded "
            r"at 0.5 and ([0-9.]+) sampled",
            note,
        )[0]
    )
    assert as_is >= 0.95 and by_threshold <= as_is - 0.08 and sampled <= by_threshold - 0.15
    quality = v2_scorer.image_scores(thresholded)["quality"].mean()
    assert abs(quality - by_threshold) <= 0.05
    bernoulli = (np.random.default_rng(1).random(x.shape) < x).astype(np.float32)
    assert abs(v2_scorer.image_scores(bernoulli)["quality"].mean() - sampled) <= 0.06
    # Not binary, or a blank page, or a data set of binary digits (its judge knows them): none
    assert metrics.binary_note(x, v2_scorer) is None
    assert metrics.binary_note(np.zeros((50, 28, 28), np.float32), v2_scorer) is None
    binary_data = SimpleNamespace(data=SimpleNamespace(x_test=(mnist.x_test[:100] > 127) * 255))
    assert metrics.binary_note(thresholded, binary_data) is None
    assert metrics.sample_note(thresholded, v2_scorer, "v2") == note
    # Binary digits stored as the integers 0 and 1 read as an almost black page: named as such
    as_ints = metrics.binary_note(thresholded.astype(np.uint8), v2_scorer)
    assert as_ints is not None and "0 or 1/255" in as_ints and "multiply them by 255" in as_ints
    # Where binarising costs real digits less than BINARY_GAP, nothing to say
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "BINARY_GAP", 0.5)
        assert metrics.binary_note(thresholded, v2_scorer) is None


def test_fresh_digits_drawn_smaller_are_not_taken_for_copies_more_often(mnist, v2_scorer):
    # A digit drawn smaller has less ink, so a smaller tangent residual against every training
    # digit. In the candidate's own unit, the first 2,000 test digits drawn at 0.8 and 0.85 of
    # their size were taken for copies 2.1% and 2.0% of the time (as drawn 1.25%); since
    # tangent.UNIT_FROM_QUERY_INK 0.80% and 1.05%.
    x = torch.from_numpy(mnist.x_test[:2000] / 255.0).float()[:, None]
    as_drawn = v2_scorer.image_scores(x[:, 0].numpy())["near_copy"].mean()
    smaller = torch.cat([perturb.warp(x, width=s, height=s) for s in (0.8, 0.85)])
    rate = v2_scorer.image_scores(smaller[:, 0].clamp(0, 1).numpy())["near_copy"].mean()
    assert rate <= min(as_drawn, judge_check.REAL_RATE_MAX)


def test_bent_copies_are_caught_far_more_often_than_fresh_digits(v2_check):
    # At n = 2,000: 0.169 (descriptor alone 0.071): below the target of 0.9, pinned well above
    # the 0.01 of real test digits.
    assert v2_check["copy: bent (elastic 1.5 px)"].near_copy_rate >= 0.1


def test_what_is_not_a_digit_is_rarely_a_near_copy(mnist, v2_scorer):
    # Neither a thinned training digit (near-blank pages, salt noise, fragments of digits: its
    # unit shrinks with its ink) nor a thickened one may pass for the source of a non-digit: no
    # more often than the 2% allowed for real test digits. 1,000 of each kind, as the check
    # scores them: at rates near 1% the check's 400 would be one or two images either way
    # (near-blank pages 0.5-1.1% on 1,000, seeds 1-3; fragments 1.5-2.0%). Typeset symbols
    # are pinned at 3%: 1.3% here, 1.1-2.1% on seeds 0-3, nearly all of them @, matched to two
    # unusual training 0s that an @ squeezed into 20 x 20 pixels resembles (16% of 300 @).
    sets = judge_check.non_digit_sets(mnist, 1000, seed=1)
    near = v2_scorer.image_scores(np.concatenate([imgs for _, imgs in sets.values()]))["near_copy"]
    for kind, rate in zip(sets, near.reshape(len(sets), 1000).mean(1), strict=True):
        most = 0.03 if kind == "non-digit: symbols" else judge_check.REAL_RATE_MAX
        assert rate <= most, kind


def test_what_is_not_a_digit_lies_outside_the_real_manifold(v2_scorer, v2_check):
    # Outlier exposure answers a non-digit with every feature off (the origin), inside the k-NN
    # balls of the few real test digits the judge is least sure of: noise and blank pages had
    # precision 1.000 and density 4.0, above real digits' 0.92 and 0.93. Measured with those
    # balls dropped (1,000 a kind, seed 0): the noise-like kinds 0.000-0.104, blobs 0.25,
    # scribbles 0.32, fragments 0.40, letters 0.56, two digits overlaid 0.61 (they lie among the
    # real digits the judge is unsure of: quality is what refuses them).
    training = v2_check["copy: identical"]
    assert training.precision > 0.85 and training.density > 0.8
    for name, row in v2_check.items():
        if row.group in ("real", "fresh, changed"):  # the reference holds these test digits
            assert np.isnan(row.precision) and np.isnan(row.density), name
        elif row.group.startswith("non-digit"):
            assert row.precision < 0.75 and row.density < 0.5, name
            if name.split(": ")[1] in ("uniform noise", "blank", "near-blank", "smooth noise"):
                assert row.precision < 0.1 and row.density < 0.05, name
    blank = v2_scorer.score(np.zeros((50, 28, 28), np.uint8))  # as `mnistlab evaluate` says
    assert blank.precision == blank.density == blank.coverage == 0.0


def test_every_copy_reads_as_less_new_than_the_same_change_of_a_fresh_digit(v2_check):
    for name in ("moved 2 px", "turned 10 deg", "thicker", "blurred (sigma 1.0)"):
        copy, fresh = v2_check[f"copy: {name}"], v2_check[f"fresh, {name}"]
        assert copy.novelty < fresh.novelty, name
    for name in ("moved 2 px", "blurred (sigma 1.0)"):
        copy, fresh = v2_check[f"copy: {name}"], v2_check[f"fresh, {name}"]
        assert copy.near_copy_rate > 0.5 > fresh.near_copy_rate, name
    # A fresh digit under the same changes is no copy of any training digit.
    for name, row in v2_check.items():
        if row.group == "fresh, changed":
            assert row.near_copy_rate <= 0.05, name


def test_the_old_judge_is_blind_where_the_new_one_sees(mnist, v2_check):
    judge, meta = store.load_judge(mnist, version="v1", progress=False)
    assert meta["judge_id"].startswith("classifier-mnist-")
    scorer = metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)
    sets = judge_check.check_sets(mnist, n=200, seed=1)
    blank = scorer.score(sets["non-digit: blank"][1])
    moved = scorer.score(sets["copy: moved 1 px"][1])
    assert blank.quality > 0.9 > v2_check["non-digit: blank"].quality
    assert moved.near_copy_rate < 0.1 < v2_check["copy: moved 1 px"].near_copy_rate


def test_the_strength_sweep_sees_mild_changes_and_loses_strong_ones(v2_result):
    swept = v2_result.swept()
    assert list(swept) == list(judge_check.STRENGTH_SWEEP)
    for change, sweep in judge_check.STRENGTH_SWEEP.items():
        copies = [r.near_copy_rate for r in swept[change]["copy"]]
        fresh = [r.near_copy_rate for r in swept[change]["fresh"]]
        assert [r.strength for r in swept[change]["copy"]] == list(sweep.levels)
        # measured at 500 a point, seed 0: the mildest 0.94-1.00, the strongest 0.01-0.54
        assert copies[0] >= 0.8, change  # the mildest: a copy
        assert copies[-1] <= 0.7, change  # the strongest: mostly not
        assert max(fresh) <= 0.05, change  # other writers' digits stay new at every strength
        # the same draws at every strength: the curve falls, give or take a few digits of 100
        assert all(b <= a + 0.05 for a, b in zip(copies, copies[1:], strict=False)), change
        held = v2_result.seen_up_to(change)
        meets = [r.near_copy_rate >= judge_check.COPY_RATE_MIN for r in swept[change]["copy"]]
        assert held is None or meets[: sweep.levels.index(held) + 1] == [True] * (
            sweep.levels.index(held) + 1
        )
    assert (v2_result.seen_up_to("turned") or 0) >= 5
    assert (v2_result.seen_up_to("bent") or 0) < 1.5  # the check's bend is past it (a known miss)
    examples = v2_result.strength_examples["turned"]
    assert examples.shape == (len(judge_check.STRENGTH_SWEEP["turned"].levels), 28, 28)
    # the same digit under the same draw, turned further at each strength
    ink = examples.reshape(len(examples), -1)
    assert all(
        np.abs(ink[k + 1] - ink[0]).sum() > np.abs(ink[k] - ink[0]).sum() for k in range(1, 4)
    )


def test_seen_up_to_is_where_the_copies_first_miss_the_copy_targets():
    def check(rates, novelty=0.0):
        rows = [
            judge_check.StrengthRow("x", "px", float(i + 1), g, 10, 1.0, novelty, r)
            for i, r in enumerate(rates)
            for g in ("fresh", "copy")
        ]
        return judge_check.JudgeCheck("j", 10, 0, [], {}, rows[::-1], {})  # any order

    assert check([0.95, 0.92, 0.5, 0.95]).seen_up_to("x") == 2.0  # not back after a miss
    assert check([0.5, 0.95]).seen_up_to("x") is None
    assert check([1.0, 1.0]).seen_up_to("x") == 2.0
    assert check([1.0, 1.0], novelty=0.2).seen_up_to("x") is None  # novelty's target as well
    with pytest.raises(KeyError, match="no strength sweep of 'y'"):
        check([1.0]).seen_up_to("y")
    lines = judge_check.strength_lines(check([0.95, 0.5]))
    assert lines[-1].split() == [
        "x",
        "(px)",
        "1:",
        "0.95/0.95",
        "2:",
        "0.50/0.50",
        "seen",
        "up",
        "to:",
        "1",
        "px",
    ]


def test_image_scores_are_the_scores_per_image_of_judge_v2(v2_scorer, mnist):
    images = np.concatenate([mnist.x_test[:50], mnist.x_train[:10]])  # some copies among them
    whole, each = v2_scorer.score(images), v2_scorer.image_scores(images)
    for key, values in whole.per_image.items():
        np.testing.assert_array_equal(each[key], values, err_msg=key)
    assert each["near_copy"].mean() == whole.near_copy_rate >= 10 / 60
    one = v2_scorer.image_scores(images[-1:])
    assert one["near_copy"].tolist() == [1.0] and one["nn_index"].tolist() == [9]


def test_cli_judge_check_prints_writes_a_report_and_refuses_unknown_judges(tmp_path, capsys):
    out = tmp_path / "check"
    argv = ["judge", "check", "--n", "60", "--no-autoencoder", "--no-progress", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["judge_id"].startswith("judge-mnist-")
    names = [r["name"] for r in printed["rows"]]
    assert "real test digits" in names and "non-digit: letters" in names
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["rows"] == printed["rows"]
    real = next(r for r in printed["rows"] if r["name"] == "real test digits")
    assert real["precision"] is None  # not defined (the reference holds them): null, not NaN
    noise = next(r for r in printed["rows"] if r["name"] == "non-digit: uniform noise")
    assert 0.0 <= noise["precision"] <= 0.05  # 0.001 of 1,000
    html = (out / "report.html").read_text()
    assert html.index("<img") < html.index("<table")  # the sets are shown before the numbers
    assert (out / "check.csv").is_file()
    sweep = printed["strength_sweep"]
    assert len(sweep) == 2 * sum(len(v.levels) for v in judge_check.STRENGTH_SWEEP.values())
    assert {r["n"] for r in sweep} == {15}  # n / 4 digits a point
    assert (out / "strength_sweep.csv").read_text().count("\n") == len(sweep) + 1
    assert "How strong a change it sees through" in html
    argv[argv.index("--n") + 1] = "10"
    assert main([*argv, "--no-strength-sweep", "--held-out"]) == 0
    printed = capsys.readouterr().out
    assert "real test digits" in printed and "sees through" not in printed
    held = [
        r for r in json.loads((out / "metrics.json").read_text())["rows"] if "held" in r["group"]
    ]
    assert len(held) == 2 * len(judge_check.HELD_OUT_CHANGES)
    assert all(r["passed"] is None for r in held if r["group"] == "fresh, held out")
    assert all(r["passed"] is not None for r in held if r["group"] == "copy, held out")
    assert "copy, held out: a 4 x 4 patch erased" in printed
    html = (out / "report.html").read_text()
    assert "copy, held out: JPEG quality 25" in html and "beyond the changes it was" in html
    # the earlier run's sweep is not left beside this run's numbers
    assert (out / "strength_sweep.csv").read_text() == ",".join(sweep[0]) + "\n"
    assert main(["judge", "check", "--judge", "v3", "--out", str(tmp_path / "x")]) == 2
    assert "expected one of v1, v2, got 'v3'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_judge_check_refuses_an_unwritable_out_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["judge", "check", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err


def test_letters_are_drawn_like_mnist_digits():
    x = judge_check.letters(20, seed=0)
    assert x.shape == (20, 28, 28) and x.min() >= 0 and x.max() <= 1
    ink = x.reshape(20, -1).sum(1)
    assert (ink > 20).all()  # every letter was drawn
    ys, xs = np.mgrid[:28, :28]
    cy = (x * ys).sum((1, 2)) / x.sum((1, 2))
    cx = (x * xs).sum((1, 2)) / x.sum((1, 2))
    assert np.abs(cy - 14).max() < 1.5 and np.abs(cx - 14).max() < 1.5


def test_check_refuses_sets_too_small_for_its_rates(v2_scorer):
    # A library call, like the CLI's --n floor: 3 images a set would give rates in thirds.
    with pytest.raises(ValueError, match="at least 10 images per set"):
        judge_check.check(v2_scorer, n=3)
    assert main(["judge", "check", "-n", str(judge_check.MIN_IMAGES - 1)]) == 2
