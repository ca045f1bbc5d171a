"""Which setting of a generator is best: the rule the generation study uses, as plain functions
of scores, for one's own runs too.

A setting is best when its samples are both sure (the judge's quality) and new (novelty), as real
test digits are: ``balance`` is the harmonic mean of the two, with novelty counted relative to
real digits' and capped there. ``best_setting`` picks the setting with the highest balance from
any scores, such as ``mnistlab.evaluate``'s dicts::

    >>> runs = {h: mnistlab.evaluate(PixelKDE(bandwidth=h).fit(x).sample(1000, 0)) for h in hs}
    >>> best_setting(runs)  # the h whose samples balance quality and novelty best
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

# The novelty of fresh real test digits against the training set: 0.5 by construction (novelty
# is calibrated on them); a run's own calibration row gives the measured value.
REAL_NOVELTY = 0.5


def balance(quality: float, novelty: float, novelty_ref: float = REAL_NOVELTY) -> float:
    """Harmonic mean of quality and novelty relative to real test digits, capped at 1.

    A sample as new as a fresh real digit (novelty >= novelty_ref) counts as fully new: novelty
    beyond that of real digits is not rewarded, it only means the samples leave the digits'
    manifold. 1 = as sure and as new as real digits; 0 = unreadable or copies.
    """
    rel = min(novelty / novelty_ref, 1.0) if novelty_ref > 0 else 0.0
    return 0.0 if quality + rel == 0 else 2 * quality * rel / (quality + rel)


def best_setting(
    scores: Mapping[K, Mapping[str, float]], novelty_ref: float = REAL_NOVELTY
) -> K | None:
    """The key of ``scores`` (setting -> a dict with "quality" and "novelty") with the highest
    ``balance``; the first such key on a tie, None when ``scores`` is empty."""
    if not scores:
        return None

    def of(key: K) -> float:
        return balance(scores[key]["quality"], scores[key]["novelty"], novelty_ref)

    return max(scores, key=of)
