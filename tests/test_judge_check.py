"""The judge against sets whose right answer is known (issue: "A judge that can tell").

The shipped judge is scored on a seeded subsample of every set of ``judge_check``; the targets
are asserted where the judge meets them, and the misses are pinned to what was measured so that a
judge that gets worse fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlab import judge_check, metrics, store
from mnistlab.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def v2_check(mnist):
    judge, meta = store.load_judge(mnist, progress=False)
    scorer = metrics.Scorer(judge, mnist, judge_id=meta["judge_id"], progress=False)
    result = judge_check.check(scorer, n=400, seed=1)
    return {r.name: r for r in result.rows}


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
            assert row.quality < 0.35 * real, name  # letters included, never seen in training
