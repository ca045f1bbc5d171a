"""Metrics that lived in the denoising and augmentation studies: the Vendi score, the mean pairwise
distance, the judge's accuracy and the few-shot scorer, on small random data and real digits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from mnistlab import metrics, models, store


@pytest.fixture(scope="module")
def judge(mnist):
    return store.load_judge(mnist, progress=False)[0]


def _vendi_slow(f: np.ndarray) -> float:
    """The definition, written out: eigenvalues of K / n with K the cosine similarities."""
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(u @ u.T / len(f))
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def test_vendi_score_of_identical_and_orthogonal_points(rng):
    v = rng.normal(size=16)
    assert metrics.vendi_score(np.tile(v, (50, 1))) == pytest.approx(1.0, abs=1e-9)
    assert metrics.vendi_score(np.eye(7) * 3.0) == pytest.approx(7.0, rel=1e-9)
    # Both branches (n < D and n > D) agree with the definition.
    for n in (5, 80):
        f = np.abs(rng.normal(size=(n, 20)))
        assert metrics.vendi_score(f) == pytest.approx(_vendi_slow(f), rel=1e-9)
    # Two groups of identical points count as two; scaling a row changes nothing (cosine).
    two = np.repeat(np.eye(2), 30, axis=0) * rng.uniform(0.5, 2.0, size=(60, 1))
    assert metrics.vendi_score(two) == pytest.approx(2.0, rel=1e-9)
    assert np.isnan(metrics.vendi_score(np.zeros((0, 3))))


def test_mean_pairwise_distance_matches_scipy(rng):
    f = rng.normal(size=(40, 9))
    assert metrics.mean_pairwise_distance(f) == pytest.approx(pdist(f).mean(), rel=1e-9)
    assert metrics.mean_pairwise_distance(np.tile(f[0], (5, 1))) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(metrics.mean_pairwise_distance(f[:1]))


def test_judge_accuracy_on_real_digits(judge, small):
    x, y = small.x_test, small.y_test
    probs, _ = models.judge_outputs(judge, x)
    acc = metrics.judge_accuracy(judge, x, y)
    assert acc == float((probs.argmax(1) == y).mean())
    assert acc > 0.95  # the shipped judge reads real test digits
    assert metrics.judge_accuracy(judge, x, (y + 1) % 10) < 0.05  # every label wrong
    # uint8 and float images in [0, 1] are the same digits.
    assert metrics.judge_accuracy(judge, x.astype(np.float32) / 255, y) == acc


def test_few_shot_scorer_on_real_digits(judge, mnist):
    train = mnist.x_train[mnist.y_train == 3][:10]  # (10, 28, 28): the "N training digits"
    real = mnist.x_test[mnist.y_test == 3][:300]  # unseen real 3s: novelty's scale
    scorer = metrics.FewShotScorer(judge, 3, train, real)
    assert scorer.train_descriptors_.shape[0] == 10 and scorer.reference_distances_.shape == (300,)

    copies = scorer.score(train)  # the training digits against themselves: copies
    assert copies.novelty == 0.0 and copies.nn_distance == pytest.approx(0.0, abs=1e-4)
    own = scorer.score(train, exclude_self=True)  # against the nearest *other* training digit
    assert own.nn_distance > 0 and own.novelty > 0

    fresh = scorer.score(real)  # the reference itself: midranks average to one half
    assert fresh.novelty == pytest.approx(0.5, abs=0.01)
    assert fresh.recognised > 0.95 and fresh.p_digit > 0.9 and fresh.n == 300
    assert 1 <= fresh.vendi <= 300
    _, feats, _ = models.judge_all(judge, real)
    assert fresh.diversity == pytest.approx(metrics.mean_pairwise_distance(feats), rel=1e-9)
    assert fresh.ink == pytest.approx(real.mean() / 255, rel=1e-5)

    # The same 3s, scored as fives: not recognised. Noise is no digit, and far from any 3.
    as_five = metrics.FewShotScorer(judge, 5, train, real).score(real)
    assert as_five.recognised < 0.05 and as_five.novelty == fresh.novelty
    noise = scorer.score(np.random.default_rng(0).random((50, 28, 28), dtype=np.float32))
    assert noise.recognised < 0.5 and noise.novelty > 0.99
    assert set(fresh.as_dict()) == {
        "n", "recognised", "p_digit", "diversity", "vendi", "novelty", "nn_distance", "ink", "ci",
    }  # fmt: skip
    assert set(fresh.ci) == {"recognised", "novelty"}
