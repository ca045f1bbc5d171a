"""How much of a number is noise: bootstrap intervals within one run, spreads across runs.

Within one run (``Scorer`` calls these for every score): the samples are resampled with
replacement ``BOOTSTRAP`` times (Efron's percentile bootstrap); quality, novelty, the near-copy
rate, precision and density are means over the samples, recall and coverage means over the real
test digits (their balls against the fixed samples), and FID is recomputed from each resample's
weighted mean and covariance against the fixed test statistics. Across runs (``mnistlab sweep``):
mean, standard deviation and a 95% Student-t interval of the mean.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np

BOOTSTRAP = 200  # resamples of the means (cheap: one (200, n) x (n,) product each)
FID_BOOTSTRAP = 50  # resamples of FID: each costs a (D, n) x (n, D) product and an eigh
LEVEL = 0.95


@functools.lru_cache(maxsize=8)  # at most 8 x 8 MB for 10,000 items
def resample_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of n items is drawn in each of n_boot resamples: (n_boot, n) int32,
    read-only (kept per (n, n_boot, seed): the few-shot study scores hundreds of equal-sized
    sets)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.int32)
    counts.flags.writeable = False
    return counts


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap values (n_boot,)."""
    lo, hi = np.quantile(np.asarray(values, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mean_intervals(
    per_item: Mapping[str, np.ndarray], counts: np.ndarray, level: float = LEVEL
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the mean of each (n,) array in ``per_item`` under ``counts``
    (n_boot, n), one set of resamples for all of them."""
    c = counts.astype(np.float64)  # sums of whole counts: a constant's mean stays exact
    n = counts.shape[1]
    return {
        key: percentile_interval(c @ np.asarray(values, dtype=np.float64) / n, level)
        for key, values in per_item.items()
    }


def fid_interval(
    features: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    counts: np.ndarray,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile interval of the FID of resampled features (n, D) against fixed reference
    statistics (mean, covariance).

    Each resample's mean and covariance come from its draw counts as weights (one (D, n) x (n, D)
    product, no copy of the rows); tr (S S_ref)^(1/2) from the eigenvalues of
    S_ref^(1/2) S S_ref^(1/2), with S_ref^(1/2) computed once.
    """
    import torch

    # All in torch: numpy's OpenBLAS threads and torch's spinning between the two on 2 cores
    # made each small eigvalsh 15 times slower than alone (measured).
    x = torch.from_numpy(np.asarray(features, dtype=np.float64))
    centre = x.mean(0)
    xc = x - centre
    xc32 = xc.float()  # float32 products: errors ~1e-6 of the trace
    n = len(xc)
    weights = torch.from_numpy(np.asarray(counts, dtype=np.float32))
    mu_ref = torch.from_numpy(np.asarray(reference[0], dtype=np.float64))
    s_ref = torch.from_numpy(np.asarray(reference[1], dtype=np.float64))
    w, v = torch.linalg.eigh(s_ref)
    root = (v * w.clamp(min=0.0).sqrt()) @ v.T
    tr_ref = float(torch.trace(s_ref))
    means = weights.double() @ xc / n  # (n_boot, D)
    out = np.empty(len(weights))
    with torch.inference_mode():
        for b in range(len(weights)):
            cov = ((xc32.T * weights[b]) @ xc32).double() / (n - 1)
            cov -= torch.outer(means[b], means[b]) * (n / (n - 1))
            m = root @ cov @ root
            tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0.0).sqrt().sum()
            diff = means[b] + centre - mu_ref
            out[b] = max(float(diff @ diff + torch.trace(cov) + tr_ref - 2.0 * tr_sqrt), 0.0)
    # Resamples repeat rows, which biases FID upwards by more than its spread (FID's known bias
    # in the number of distinct samples): the interval is the resamples' spread around the
    # estimate, the percentile interval shifted by that bias.
    estimate = float(
        (centre - mu_ref) @ (centre - mu_ref) + _trace_terms(torch.cov(xc.T), root, tr_ref)
    )
    shift = estimate - float(out.mean())
    lo, hi = percentile_interval(out, level)
    return max(lo + shift, 0.0), max(hi + shift, 0.0)


def _trace_terms(cov, root, tr_ref: float):
    """tr(S) + tr(S_ref) - 2 tr (S_ref^(1/2) S S_ref^(1/2))^(1/2), in torch."""
    import torch

    m = root @ cov @ root
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0.0).sqrt().sum()
    return torch.trace(cov) + tr_ref - 2.0 * tr_sqrt


# ---- across runs ------------------------------------------------------------------------------


def t_quantile(df: int, level: float = LEVEL) -> float:
    """Student's t quantile for a two-sided ``level`` interval with ``df`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf((1 + level) / 2, df))


def summarise(values: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """n, mean, sd (n - 1) and the ``level`` t-interval of the mean of finite ``values``."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": math.nan, "sd": math.nan, "lo": math.nan, "hi": math.nan}
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else 0.0
    half = t_quantile(n - 1, level) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half}


def clearly_different(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> bool:
    """Whether the mean difference of paired runs a and b is larger than its spread: the
    ``level`` t-interval of the differences leaves out zero (False with fewer than 2 pairs)."""
    d = summarise([x - y for x, y in zip(a, b, strict=True)], level)
    return d["n"] > 1 and (d["lo"] > 0 or d["hi"] < 0)


def mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided p-value of McNemar's exact test: whether two shares measured on the same items
    differ, from the items counted by only one of them (``only_a``, ``only_b``); scipy's binomial
    test of ``only_b`` out of the discordant pairs against 1/2. 1.0 when none differ."""
    from scipy import stats

    n = only_a + only_b
    return 1.0 if n == 0 else float(stats.binomtest(only_b, n, 0.5).pvalue)


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals (lo, hi) share a point: then one run cannot tell them apart."""
    return a[0] <= b[1] and b[0] <= a[1]
