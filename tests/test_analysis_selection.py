"""``mnistlab.analysis.selection``: the balance of quality and novelty, and the best setting
picked from plain score dicts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlab.analysis.selection import REAL_NOVELTY, balance, best_setting

unit = st.floats(0.0, 1.0)


def test_balance_is_high_only_when_both_are():
    assert balance(1.0, 0.5, 0.5) == 1.0
    assert balance(1.0, 0.0, 0.5) == 0.0
    assert balance(0.0, 0.5, 0.5) == 0.0
    assert balance(0.9, 0.05, 0.5) < balance(0.6, 0.3, 0.5)
    # Novelty beyond that of real digits earns nothing more.
    assert balance(0.9, 0.9, 0.5) == balance(0.9, 0.5, 0.5)
    assert balance(0.8, 0.4) == balance(0.8, 0.4, REAL_NOVELTY)


@given(unit, unit, st.floats(0.05, 1.0))
def test_balance_is_a_mean_of_quality_and_relative_novelty(q, n, ref):
    b = balance(q, n, ref)
    rel = min(n / ref, 1.0)
    assert 0.0 <= b <= 1.0 + 1e-12
    assert min(q, rel) - 1e-12 <= b <= max(q, rel) + 1e-12  # a mean of the two


def test_best_setting_picks_the_best_balance_from_score_dicts():
    runs = {
        "h=0.01": {"quality": 0.99, "novelty": 0.02},  # copies
        "h=0.1": {"quality": 0.95, "novelty": 0.45},
        "h=1": {"quality": 0.40, "novelty": 0.90},  # new but unreadable
    }
    assert best_setting(runs) == "h=0.1"
    # The rule reads the numbers, not the order: change them and the pick follows.
    runs["h=1"] = {"quality": 0.97, "novelty": 0.6}
    assert best_setting(runs) == "h=1"
    # A lower reference novelty counts more settings as fully new.
    runs = {"a": {"quality": 0.9, "novelty": 0.3}, "b": {"quality": 0.8, "novelty": 0.5}}
    assert best_setting(runs, novelty_ref=0.5) == "b"
    assert best_setting(runs, novelty_ref=0.3) == "a"
    # Extra keys (mnistlab.evaluate's dicts) are fine; ties go to the first; empty gives None.
    assert best_setting({1: {"quality": 0.5, "novelty": 0.5, "fid": 3.0}, 2: {"quality": 0.5,
                         "novelty": 0.5}}) == 1  # fmt: skip
    assert best_setting({}) is None


def test_best_setting_needs_quality_and_novelty():
    with pytest.raises(KeyError):
        best_setting({"x": {"fid": 1.0}})
