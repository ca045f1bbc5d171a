"""Density models that generate digits, in pixel, PCA or autoencoder-latent space.

Every generator follows scikit-learn's estimator contract: hyperparameters are stored as given in
``__init__``; what is learned from data ends in ``_`` and exists only after ``fit``;
``fit(X, y=None)`` returns ``self``; ``sample(n, random_state)`` returns float32 images of shape
(n, 28, 28), clipped to [0, 1]. Images enter as uint8 in [0, 255] or float in [0, 1], shape
(N, 28, 28), (N, 784) or (N, 1, 28, 28). Pixel-space quantities (bandwidths, log-likelihoods) are
on the [0, 1] scale.

=========================  ========  =========================================================
generator                  space     sampling
=========================  ========  =========================================================
PixelKDE                   pixel     a random training image + bandwidth * N(0, I)
PCAKDE                     pca       KDE on PCA coordinates, then ``pca_.inverse_transform``
LatentKDE                  latent    KDE on the autoencoder's codes, then its decoder
LatentGMM                  latent    Gaussian mixture on the codes (ex-post density, RAE)
LatentGaussian             latent    one Gaussian on a few codes, with a ridge (brief 003)
ClassConditionalGaussian   latent    one MLE Gaussian per digit on the codes (brief 001)
VAEPrior                   latent    z ~ N(0, scale^2 I), then the VAE's decoder (brief 002)
=========================  ========  =========================================================

The KDEs take ``bandwidth`` as a float or as ``"scott"`` / ``"silverman"`` (see ``scott``); for a
sweep, fit once and call ``with_bandwidth(h)``, which shares the fitted arrays and the encoding.
``bandwidth_grid``, ``scott``, ``silverman``, ``cv_bandwidth`` (alias ``cv``), ``held_out_loglik``
and ``held_out_loglik_sweep`` choose and judge bandwidths.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar, Self

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from mnistlab import data
from mnistlab.errors import DataError
from mnistlab.images import as_images

N_PIXELS = data.IMAGE_SIZE * data.IMAGE_SIZE  # 784
BANDWIDTH_RULES = ("scott", "silverman")

# Memory for one block of the (queries x kernel centres) distance matrix in the log-likelihood.
_BLOCK_BYTES = 64 * 2**20

RandomState = int | np.random.Generator


# ---- input checks ----------------------------------------------------------------------------


def _check_images(X: Any, name: str = "X") -> np.ndarray:
    """Images in any layout ``mnistlab.images.as_images`` takes -> float32 (N, 784) in [0, 1]."""
    return as_images(X, name).reshape(-1, N_PIXELS)


def _check_points(Z: Any, name: str = "Z", min_rows: int = 1) -> np.ndarray:
    """Points for a density: (n, d) floats; images (uint8, or 3-d / 4-d) become (n, 784) pixels."""
    if Z is None:
        raise DataError(f"{name}: no data given")
    arr = np.asarray(Z)
    if arr.dtype == np.uint8 or arr.ndim in (3, 4):
        return _check_images(arr, name)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"{name}: expected shape (n_samples, n_features), got {tuple(arr.shape)}")
    if len(arr) < min_rows:
        raise DataError(f"{name}: need at least {min_rows} rows, got {len(arr)}")
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return arr


def _one_thread() -> threadpool_limits:
    """One BLAS / OpenMP thread for a block of many small LAPACK or k-means steps.

    On 2 cores shared with other processes, 2 threads that spin-wait on each other made
    PCA's eigh on MNIST take 18 s instead of 1.6 s and a 10-component GaussianMixture on
    60,000 x 16 codes 80-95 s instead of 3 s (measured, load average 7); big matrix products
    lose little by it.
    """
    return threadpool_limits(limits=1)


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _rng(random_state: Any) -> np.random.Generator:
    """An explicit seed (int >= 0) or a numpy Generator; None is refused (not reproducible)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an int or a numpy Generator, got {random_state!r}")
    return np.random.default_rng(int(random_state))


def _finish(images: np.ndarray) -> np.ndarray:
    """Any (n, 784) or (n, 28, 28) array -> float32 (n, 28, 28) clipped to [0, 1]."""
    # Every _draw returns a fresh array, so clipping in place touches nothing shared.
    out = np.asarray(images, dtype=np.float32).reshape(-1, data.IMAGE_SIZE, data.IMAGE_SIZE)
    return np.clip(out, 0.0, 1.0, out=out)


# ---- bandwidths --------------------------------------------------------------------------------


def _scale(Z: np.ndarray) -> float:
    """One length for an isotropic kernel: the root mean per-feature variance, sqrt(tr(C) / d)."""
    return float(np.sqrt(np.mean(np.var(Z, axis=0, dtype=np.float64))))


def scott(Z: Any) -> float:
    """Scott's rule for an isotropic Gaussian KDE on the raw (not standardised) points Z.

    Z : array of shape (n_samples, n_features), or images (N, 28, 28) / uint8 (N, 784), which
        are taken as pixels in [0, 1].

    Returns ``n ** (-1 / (d + 4)) * s``: scikit-learn's ``KernelDensity(bandwidth="scott")``
    factor (a rule for data with unit variance in every feature) times the data's scale
    ``s = sqrt(mean per-feature variance)``, so it equals scikit-learn's value on standardised
    data and scales with the data. Raises DataError for NaN or a bad shape.
    """
    Z = _check_points(Z, min_rows=2)
    n, d = Z.shape
    return n ** (-1.0 / (d + 4)) * _scale(Z)


def silverman(Z: Any) -> float:
    """Silverman's rule, ``(n * (d + 2) / 4) ** (-1 / (d + 4)) * s``; see ``scott`` for ``s``.

    Z : array of shape (n_samples, n_features) (or images, as pixels in [0, 1]).
    """
    Z = _check_points(Z, min_rows=2)
    n, d = Z.shape
    return (n * (d + 2) / 4) ** (-1.0 / (d + 4)) * _scale(Z)


def bandwidth_grid(Z: Any, n: int = 10, *, low: float = 0.01, high: float = 2.0) -> np.ndarray:
    """The bandwidth sweep of brief 000: ``n`` values on a log grid from ``low*s`` to ``high*s``.

    Z : array of shape (n_samples, n_features), the points the KDE lives on (or images).
    ``s`` is the data's scale (see ``scott``). The default range runs from copies of the kernel
    centres (0.01 s, far below the nearest-neighbour spacing) to noise that swamps the data
    (2 s); Scott's and Silverman's values lie inside it. Returns float64 array of shape (n,).
    """
    n = _check_n(n)
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
    s = _scale(_check_points(Z, min_rows=2))
    if s <= 0:
        raise DataError("Z: all points are equal; no scale to build a bandwidth grid on")
    return np.geomspace(low * s, high * s, n)


def _resolve_bandwidth(bandwidth: Any, points: np.ndarray) -> float:
    if isinstance(bandwidth, str):
        if bandwidth == "scott":
            h = scott(points)
        elif bandwidth == "silverman":
            h = silverman(points)
        else:
            raise ValueError(
                f"bandwidth must be a float or one of {BANDWIDTH_RULES}, got {bandwidth!r}"
            )
        if h <= 0:
            raise DataError("all training points are equal: the bandwidth rule gives 0")
        return float(h)
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
        raise ValueError(
            f"bandwidth must be a float or one of {BANDWIDTH_RULES}, got {bandwidth!r}"
        )
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be positive and finite, got {bandwidth!r}")
    return float(bandwidth)


def _kde_logliks(queries: np.ndarray, centres: np.ndarray, bandwidths: Any) -> np.ndarray:
    """Gaussian-KDE log-density of each query, for several bandwidths at once.

    queries : array of shape (M, d); centres : array of shape (N, d); bandwidths : (B,)
    Returns float64 array of shape (B, M). Exact (every centre counts): squared distances by
    one matrix product per block of queries (float32 above 128 features, float64 below), then
    a log-sum-exp per bandwidth (float32 exp of the distances relative to the nearest centre,
    float64 sums); the distance block is computed once for all bandwidths.
    """
    hs = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    n, d = centres.shape
    work = np.float32 if d > 128 else np.float64
    c = np.ascontiguousarray(centres, dtype=work)
    q_all = np.ascontiguousarray(queries, dtype=work)
    c_sq = np.einsum("ij,ij->i", c, c)  # (N,)
    out = np.empty((len(hs), len(q_all)))
    rows = max(1, _BLOCK_BYTES // (np.dtype(work).itemsize * n))
    for start in range(0, len(q_all), rows):
        q = q_all[start : start + rows]  # (m, d)
        d2 = q @ c.T  # (m, N)
        d2 *= -2
        d2 += c_sq
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        np.maximum(d2, 0, out=d2)
        nearest = d2.min(axis=1)  # (m,) the largest kernel term, kept out of the exp
        d2 -= nearest[:, None]
        rel = d2.astype(np.float32, copy=False)  # exact where it matters: near 0
        t = np.empty_like(rel)
        for b, h in enumerate(hs):
            np.multiply(rel, np.float32(-0.5 / h**2), out=t)
            np.exp(t, out=t)  # (m, N) kernel terms in (0, 1], the nearest one is 1
            log_sum = np.log(t.sum(axis=1, dtype=np.float64))
            out[b, start : start + len(q)] = log_sum - nearest / (2 * h**2)
    out -= math.log(n) + 0.5 * d * np.log(2 * np.pi * hs**2)[:, None]
    return out


def cv_scores(
    Z: Any,
    candidates: Any,
    random_state: RandomState,
    *,
    val_fraction: float = 0.2,
    max_val: int = 1000,
) -> np.ndarray:
    """Held-out mean log-likelihood of a Gaussian KDE for each candidate bandwidth.

    Z : array of shape (n_samples, n_features) (or images, as pixels in [0, 1]).
    candidates : array of shape (B,), positive bandwidths.
    The split is ``data.train_val_split(n, val_fraction, random_state)``: the KDE's centres are
    the training part, scored on the validation part, of which at most ``max_val`` points
    (a seeded random subset) are used; this keeps a 784-d sweep over 60,000 centres to a few
    seconds. Returns float64 array of shape (B,), nats per sample in Z's space.
    """
    Z = _check_points(Z, min_rows=2)
    hs = np.asarray([_resolve_bandwidth(float(h), Z) for h in np.atleast_1d(candidates)])
    if hs.size == 0:
        raise ValueError("candidates: need at least one bandwidth")
    rng = _rng(random_state)
    train_idx, val_idx = data.train_val_split(len(Z), val_fraction, rng)
    if len(val_idx) > max_val:
        val_idx = np.sort(rng.choice(val_idx, size=max_val, replace=False))
    return _kde_logliks(Z[val_idx], Z[train_idx], hs).mean(axis=1)


def cv_bandwidth(
    Z: Any,
    candidates: Any = None,
    random_state: RandomState = 0,
    *,
    val_fraction: float = 0.2,
    max_val: int = 1000,
) -> float:
    """The candidate bandwidth with the best held-out log-likelihood (see ``cv_scores``).

    Z : array of shape (n_samples, n_features) (or images, as pixels in [0, 1]).
    candidates : array of shape (B,); None uses ``bandwidth_grid(Z)``.
    """
    Z = _check_points(Z, min_rows=2)
    hs = bandwidth_grid(Z) if candidates is None else np.atleast_1d(candidates).astype(float)
    scores = cv_scores(Z, hs, random_state, val_fraction=val_fraction, max_val=max_val)
    return float(hs[int(np.argmax(scores))])


cv = cv_bandwidth  # the name docs/ARCHITECTURE.md gives


def _held_out_rows(X_val: Any, max_samples: int, random_state: RandomState) -> np.ndarray:
    """At most ``max_samples`` rows of X_val: a seeded random subset, in their original order."""
    X = np.asarray(X_val)
    if X.ndim == 0 or len(X) == 0:
        raise DataError("X_val: no samples given")
    max_samples = _check_n(max_samples)
    if len(X) > max_samples:
        X = X[np.sort(_rng(random_state).choice(len(X), size=max_samples, replace=False))]
    return X


def held_out_loglik(
    model: Any, X_val: Any, *, max_samples: int = 1000, random_state: RandomState = 0
) -> float:
    """Mean log-likelihood per sample of held-out data under a fitted density model.

    model : a generator from this module (its ``loglik``, in the generator's own space: pixels,
        PCA coordinates or latent codes, nats per sample), or any fitted object with
        ``score_samples`` (scikit-learn's KernelDensity, GaussianMixture), given X_val in its space.
    X_val : array of shape (N, 28, 28) / (N, 784) images, or (N, d) points for ``score_samples``.
    At most ``max_samples`` rows (a seeded random subset) are scored against every kernel centre:
    an exact KDE costs O(rows x centres x d). Numbers from different spaces are not comparable.
    The KDE log-likelihood here is exact brute force: scikit-learn's tree-based
    ``KernelDensity.score_samples`` took 0.27 s per query on 784-d MNIST with 60,000 centres and
    was off by up to 7,400 nats where the density is small (measured; it agrees in low dimensions
    away from the tails).
    """
    X = _held_out_rows(X_val, max_samples, random_state)
    if hasattr(model, "loglik"):
        return float(model.loglik(X))
    if hasattr(model, "score_samples"):
        return float(np.mean(model.score_samples(_check_points(X, "X_val"))))
    raise TypeError(f"{type(model).__name__} has neither loglik nor score_samples")


def held_out_loglik_sweep(
    kde: Any,
    X_val: Any,
    bandwidths: Any,
    *,
    max_samples: int = 1000,
    random_state: RandomState = 0,
) -> np.ndarray:
    """``held_out_loglik`` of a fitted KDE generator at every bandwidth, in one pass.

    kde : a fitted PixelKDE, PCAKDE or LatentKDE; bandwidths : array of shape (B,).
    Equals ``[held_out_loglik(kde.with_bandwidth(h), X_val, ...) for h in bandwidths]`` but
    computes the distances to the kernel centres once (the costly part in pixel space).
    Returns float64 array of shape (B,).
    """
    if not isinstance(kde, _KDE):
        raise TypeError(f"expected a KDE generator, got {type(kde).__name__}")
    return kde.loglik_sweep(_held_out_rows(X_val, max_samples, random_state), bandwidths)


# ---- the generators ----------------------------------------------------------------------------


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", type(model).__name__))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


class Generator(BaseEstimator):
    """Base of the generators: ``fit(X, y=None) -> self``, ``sample(n, random_state)``.

    Subclasses set ``space`` and implement ``fit``, ``_draw(n, rng) -> array`` of shape
    (n, 784) or (n, 28, 28), and ``loglik`` where a density is defined.
    """

    space: ClassVar[str] = ""

    def sample(self, n: int, random_state: RandomState) -> np.ndarray:
        """n new images, float32 array of shape (n, 28, 28) in [0, 1].

        random_state : int seed or numpy Generator; the same seed gives the same images.
        """
        check_is_fitted(self)
        return _finish(self._draw(_check_n(n), _rng(random_state)))

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def loglik(self, X: Any) -> float:
        """Mean log-likelihood per image of X in this generator's space (nats)."""
        raise NotImplementedError(f"{type(self).__name__} defines no log-likelihood")

    def score(self, X: Any, y: Any = None) -> float:
        """Mean held-out log-likelihood per image (``loglik``): higher is better, so
        scikit-learn's ``GridSearchCV`` can choose a bandwidth or a number of components."""
        return self.loglik(X)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr, with a torch model shown by name and config, not layer by layer."""
        shown = []
        for key, value in self.get_params(deep=False).items():
            if key in ("model", "vae"):
                config = getattr(value, "config", None)
                text = _model_name(value)
                if dataclasses.is_dataclass(config):
                    latent = getattr(config, "latent_dim", None)
                    text += f"(latent_dim={latent})" if latent is not None else ""
                shown.append(f"{key}=<{text}>")
            else:
                shown.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def name(self) -> str:
        """A short label for reports, the same for every setting of one generator."""
        return type(self).__name__

    def setting(self) -> str:
        """The hyperparameter that a sweep varies, as text (e.g. ``"h=0.1"``)."""
        return ""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for reports: name, space, hyperparameters, fitted sizes."""
        params = {}
        for key, value in self.get_params(deep=False).items():
            if key in ("model", "vae"):
                params[key] = _model_name(value)
                config = getattr(value, "config", None)
                if dataclasses.is_dataclass(config):
                    params[f"{key}_config"] = {
                        k: _jsonable(v) for k, v in dataclasses.asdict(config).items()
                    }
            else:
                params[key] = _jsonable(value)
        out: dict[str, Any] = {
            "generator": type(self).__name__,
            "name": self.name,
            "space": self.space,
            "setting": self.setting(),
            "params": params,
            "fitted": _is_fitted(self),
        }
        if _is_fitted(self):
            out.update(self._fitted_summary())
        return out

    def _fitted_summary(self) -> dict[str, Any]:
        return {}


def _is_fitted(est: Any) -> bool:
    return any(k.endswith("_") and not k.startswith("__") for k in vars(est))


class _KDE(Generator):
    """Gaussian KDE on ``points_`` (n_train, d) with isotropic bandwidth ``bandwidth_``."""

    bandwidth: Any

    def _set_points(self, points: np.ndarray) -> None:
        h = _resolve_bandwidth(self.bandwidth, points)  # a bad bandwidth leaves self unfitted
        self.points_ = points
        self.bandwidth_ = h

    def _draw_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """A random kernel centre plus bandwidth_ * N(0, I): float32 (n, d)."""
        idx = rng.integers(0, len(self.points_), size=n)  # (n,)
        out = rng.standard_normal((n, self.points_.shape[1]), dtype=np.float32)
        out *= np.float32(self.bandwidth_)
        out += self.points_[idx]
        return out

    def with_bandwidth(self, bandwidth: float | str) -> Self:
        """A fitted copy with another bandwidth, sharing the fitted arrays (no refit, no copy).

        Gives the same generator as ``fit`` with ``bandwidth`` would, at no cost: for sweeps.
        """
        check_is_fitted(self)
        new = type(self)(**{**self.get_params(deep=False), "bandwidth": bandwidth})
        for key, value in vars(self).items():
            if key.endswith("_"):
                setattr(new, key, value)
        new.bandwidth_ = _resolve_bandwidth(bandwidth, self.points_)
        return new

    def _points_of(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def loglik(self, X: Any) -> float:
        """Mean KDE log-density per image of X, in this KDE's space (nats; exact, all centres).

        X : array of shape (N, 28, 28) or (N, 784). Costs O(N x n_train x d): subsample X
        (``held_out_loglik`` does) for pixel space.
        """
        check_is_fitted(self)
        return float(_kde_logliks(self._points_of(X), self.points_, self.bandwidth_).mean())

    def loglik_sweep(self, X: Any, bandwidths: Any) -> np.ndarray:
        """``loglik`` of X at each bandwidth (B,) -> float64 (B,); the distances computed once."""
        check_is_fitted(self)
        hs = [_resolve_bandwidth(float(h), self.points_) for h in np.atleast_1d(bandwidths)]
        return _kde_logliks(self._points_of(X), self.points_, hs).mean(axis=1)

    def setting(self) -> str:
        return f"h={self.bandwidth_:.4g}" if _is_fitted(self) else f"h={self.bandwidth}"

    def _fitted_summary(self) -> dict[str, Any]:
        return {
            "bandwidth": self.bandwidth_,
            "n_train": int(len(self.points_)),
            "dim": int(self.points_.shape[1]),
        }


class PixelKDE(_KDE):
    """Gaussian KDE on raw pixels: the lecture's baseline, which copies its training digits.

    bandwidth : float (pixel units, images scaled to [0, 1]) or "scott" / "silverman".

    Learned: ``points_`` float32 (n_train, 784) the training images; ``bandwidth_`` float.
    Sampling picks a training image uniformly and adds ``bandwidth_ * N(0, I)``, then clips:
    what scikit-learn's ``KernelDensity.sample`` does, done directly in float32 with a numpy
    Generator (about 8x faster for 10,000 images, see benchmarks/gen_bench.py) and seeded by
    the ``sample`` call rather than by the estimator.
    """

    space = "pixel"

    def __init__(self, bandwidth: float | str = "scott") -> None:
        self.bandwidth = bandwidth

    def fit(self, X: Any, y: Any = None) -> Self:
        """X : array of shape (n_samples, 28, 28) or (n_samples, 784), uint8 or float in [0, 1]."""
        self._set_points(_check_images(X))
        return self

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._draw_points(n, rng)  # (n, 784)

    def _points_of(self, X: Any) -> np.ndarray:
        return _check_images(X)

    @property
    def name(self) -> str:
        return "pixel KDE"


class PCAKDE(_KDE):
    """PCA, then a Gaussian KDE on the PCA coordinates; samples decoded by ``inverse_transform``.

    n_components : int, default 50. 50 components keep 82% of MNIST's pixel variance (32 keep
        74%, 100 keep 91%): the reconstructions keep each digit's identity and stroke, while the
        KDE's space stays small enough for the bandwidth to matter (50 is also the usual PCA
        size for MNIST before t-SNE or k-NN).
    bandwidth : float (in PCA units, or whitened units with ``whiten=True``) or a rule name.
    whiten : bool; True scales every component to unit variance before the KDE, so that the
        isotropic kernel spreads each component in proportion to its own spread.

    Learned: ``pca_`` (sklearn PCA, deterministic ``covariance_eigh`` solver), ``points_``
    float32 (n_train, n_components) the training coordinates, ``bandwidth_``.
    Note: even ``bandwidth -> 0`` does not give exact training images, but their PCA
    reconstructions.
    """

    space = "pca"

    def __init__(
        self, n_components: int = 50, bandwidth: float | str = "scott", whiten: bool = False
    ) -> None:
        self.n_components = n_components
        self.bandwidth = bandwidth
        self.whiten = whiten

    def fit(self, X: Any, y: Any = None) -> Self:
        """X : array of shape (n_samples, 28, 28) or (n_samples, 784), uint8 or float in [0, 1]."""
        Xf = _check_images(X)
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= N_PIXELS:
            raise ValueError(f"n_components must be an int in [1, 784], got {k!r}")
        if k > len(Xf):
            raise DataError(f"n_components={k} needs at least {k} images, got {len(Xf)}")
        pca = PCA(n_components=k, whiten=self.whiten, svd_solver="covariance_eigh")
        with _one_thread():
            pca.fit(Xf)
        self._set_points(pca.transform(Xf).astype(np.float32))  # (n, k)
        self.pca_ = pca
        return self

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.pca_.inverse_transform(self._draw_points(n, rng))  # (n, k) -> (n, 784)

    def _points_of(self, X: Any) -> np.ndarray:
        return self.pca_.transform(_check_images(X))

    @property
    def name(self) -> str:
        return f"PCA-{self.n_components}{' whitened' if self.whiten else ''} KDE"

    def _fitted_summary(self) -> dict[str, Any]:
        return {
            **super()._fitted_summary(),
            "explained_variance": float(self.pca_.explained_variance_ratio_.sum()),
        }


# ---- latent-space generators -------------------------------------------------------------------


def encode(model: Any, X: Any) -> np.ndarray:
    """The model's codes of images X (N, 28, 28) / (N, 784) -> float32 array of shape (N, d)."""
    from mnistlab import models  # torch is imported only by the latent generators

    Z = models.encode(model, _check_images(X))
    if not np.isfinite(Z).all():
        raise DataError("the encoder gave NaN or infinite codes")
    return Z


def _decode(model: Any, Z: np.ndarray) -> np.ndarray:
    from mnistlab import models

    return models.decode(model, np.ascontiguousarray(Z, dtype=np.float32))  # (N, 28, 28)


class _LatentGenerator(Generator):
    """A density on the codes of ``model`` (anything with torch ``encode``/``decode``).

    ``fit(X, y)`` encodes X, then calls ``fit_latents(Z, y)``; a study that fits several
    generators on one autoencoder encodes once and calls ``fit_latents`` directly.
    """

    space = "latent"
    model: Any

    def fit(self, X: Any, y: Any = None) -> Self:
        """X : array of shape (n_samples, 28, 28) or (n_samples, 784), uint8 or float in [0, 1]."""
        Xf = _check_images(X)
        if y is not None and len(np.asarray(y)) != len(Xf):
            raise DataError(f"y has {len(np.asarray(y))} labels for {len(Xf)} images")
        return self.fit_latents(encode(self.model, Xf), y)

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        """Z : array of shape (n_samples, latent_dim), the model's codes of the training images."""
        raise NotImplementedError

    def sample_latents(self, n: int, random_state: RandomState) -> np.ndarray:
        """n codes, float32 array of shape (n, latent_dim); ``sample`` decodes exactly these."""
        check_is_fitted(self)
        return np.asarray(self._draw_latents(_check_n(n), _rng(random_state)), dtype=np.float32)

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _decode(self.model, self._draw_latents(n, rng))

    def _codes(self, X: Any) -> np.ndarray:
        return encode(self.model, X)


class LatentKDE(_LatentGenerator, _KDE):
    """Gaussian KDE on an autoencoder's codes; samples go through its decoder (brief 000).

    model : torch module with ``encode(x) -> (N, d)`` and ``decode(z) -> (N, 1, 28, 28)``.
    bandwidth : float (in latent units; the codes are not standardised) or a rule name.

    Learned: ``points_`` float32 (n_train, latent_dim) the training codes, ``bandwidth_``.
    """

    def __init__(self, model: Any, bandwidth: float | str = "scott") -> None:
        self.model = model
        self.bandwidth = bandwidth

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        self._set_points(_check_points(Z, "Z").astype(np.float32))
        return self

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._draw_points(n, rng)

    def _points_of(self, X: Any) -> np.ndarray:
        return self._codes(X)

    @property
    def name(self) -> str:
        return f"{_model_name(self.model)} latent KDE"


def _full_covariances(covariances: np.ndarray, kind: str, k: int, d: int) -> np.ndarray:
    """sklearn GaussianMixture covariances of any ``covariance_type`` -> (k, d, d)."""
    if kind == "full":
        return np.asarray(covariances)
    if kind == "tied":
        return np.broadcast_to(covariances, (k, d, d)).copy()
    if kind == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.asarray(covariances)[:, None, None] * np.eye(d)  # spherical


def _draw_gaussians(
    rng: np.random.Generator,
    labels: np.ndarray,
    means: np.ndarray,
    cholesky: np.ndarray,
) -> np.ndarray:
    """z_i = means[labels_i] + cholesky[labels_i] @ eps_i; labels (n,) -> float32 (n, d).

    The one Gaussian sampler of the latent generators: ``cholesky`` (K, d, d) may hold any
    factors L with L L^T = covariance (``LatentGaussian`` passes its eigendecomposition's).
    """
    eps = rng.standard_normal((len(labels), means.shape[1]))  # (n, d)
    z = np.empty_like(eps)
    for k in range(len(means)):
        rows = labels == k
        z[rows] = means[k] + eps[rows] @ cholesky[k].T
    return z.astype(np.float32)


def _joint_logpdf(Z: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray):
    """log w_k + log N(z; mu_k, L_k L_k^T) for Z (n, d) and every component k -> float64 (n, K)."""
    d = Z.shape[1]
    terms = np.empty((len(Z), len(means)))
    for k in range(len(means)):
        u = solve_triangular(chol[k], (Z - means[k]).T, lower=True)  # (d, n)
        log_det = 2 * np.log(np.diag(chol[k])).sum()
        terms[:, k] = -0.5 * (d * np.log(2 * np.pi) + log_det + (u**2).sum(axis=0))
    return terms + np.log(weights)


def _mixture_logpdf(Z: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray):
    """log sum_k w_k N(z; mu_k, L_k L_k^T) for Z (n, d) -> float64 (n,)."""
    return logsumexp(_joint_logpdf(Z, weights, means, chol), axis=1)


class LatentGMM(_LatentGenerator):
    """A Gaussian mixture fitted to the codes after training: ex-post density estimation.

    The recipe of Ghosh et al. 2020 (RAE) and, on a VAE's codes, of the two-stage VAE: pass a
    VAE as ``model`` to sample its aggregate posterior instead of its prior.
    model : torch module with ``encode``/``decode``; n_components, covariance_type, reg_covar,
    max_iter, n_init : as in sklearn's GaussianMixture; random_state : int, seeds its k-means
    initialisation (fitting only; ``sample`` takes its own seed).

    Learned: ``gmm_`` (sklearn GaussianMixture), ``weights_`` (K,), ``means_`` (K, d),
    ``cholesky_`` (K, d, d) the covariances' Cholesky factors. Sampling draws the component
    with the ``sample`` call's Generator (sklearn's ``GaussianMixture.sample`` would reuse the
    fit's seed and give the same samples on every call).
    """

    def __init__(
        self,
        model: Any,
        n_components: int = 10,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        max_iter: int = 200,
        n_init: int = 1,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        Z = _check_points(Z, "Z").astype(np.float64)
        if isinstance(self.n_components, numbers.Integral) and self.n_components > len(Z):
            raise DataError(f"n_components={self.n_components} needs at least as many codes")
        with _one_thread():
            gmm = GaussianMixture(
                n_components=self.n_components,
                covariance_type=self.covariance_type,
                reg_covar=self.reg_covar,
                max_iter=self.max_iter,
                n_init=self.n_init,
                random_state=self.random_state,
            ).fit(Z)
        k, d = gmm.means_.shape
        self.gmm_ = gmm
        self.weights_ = gmm.weights_ / gmm.weights_.sum()
        self.means_ = gmm.means_
        covs = _full_covariances(gmm.covariances_, self.covariance_type, k, d)
        self.cholesky_ = np.linalg.cholesky(covs)  # (K, d, d)
        return self

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights_), size=n, p=self.weights_)
        return _draw_gaussians(rng, labels, self.means_, self.cholesky_)

    def loglik(self, X: Any) -> float:
        """Mean log-density per image of X's codes under the mixture (nats, latent space)."""
        check_is_fitted(self)
        return float(self.gmm_.score(self._codes(X).astype(np.float64)))

    @property
    def name(self) -> str:
        return f"{_model_name(self.model)} latent GMM-{self.n_components}"

    def setting(self) -> str:
        return f"K={self.n_components} {self.covariance_type}"

    def _fitted_summary(self) -> dict[str, Any]:
        return {"converged": bool(self.gmm_.converged_), "dim": int(self.means_.shape[1])}


class LatentGaussian(_LatentGenerator):
    """One Gaussian on a few codes (brief 003's few-shot digits): unbiased covariance + a ridge.

    ``LatentGMM(n_components=1)`` fits the same model by maximum likelihood with an absolute
    ``reg_covar``; this one is for N codes with N <= d, where the sample covariance is singular.
    model : torch module with ``encode``/``decode``.
    ridge : added to the covariance's diagonal as a fraction of the codes' mean variance (floored
        at 1e-8): every direction stays alive but tiny, so samples stay near the span of the codes.

    Learned: ``mean_`` (d,), ``covariance_`` (d, d), ``factor_`` (d, d) with
    ``factor_ @ factor_.T == covariance_``: U sqrt(S) of its eigendecomposition, the factor of
    numpy's ``multivariate_normal(method="eigh")``, whose samples these are to the last bit.
    """

    def __init__(self, model: Any, ridge: float = 1e-3) -> None:
        self.model = model
        self.ridge = ridge

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        Z = _check_points(Z, "Z", min_rows=2)  # float32 stays float32, as does its mean
        d = Z.shape[1]
        cov = np.cov(Z, rowvar=False).reshape(d, d)  # (d, d) float64, divided by N - 1
        ridge = self.ridge * max(float(np.trace(cov)) / d, 1e-8)
        self.mean_ = Z.mean(axis=0)
        self.covariance_ = cov + ridge * np.eye(d)
        s, u = np.linalg.eigh(self.covariance_)
        self.factor_ = u * np.sqrt(np.abs(s))
        return self

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        one = np.zeros(n, dtype=np.intp)  # every sample from the one component
        return _draw_gaussians(rng, one, self.mean_[None], self.factor_[None])

    @property
    def name(self) -> str:
        return f"{_model_name(self.model)} latent Gaussian"

    def _fitted_summary(self) -> dict[str, Any]:
        return {"dim": int(self.mean_.shape[0])}


class _Conditional:
    """Sampling for latent generators that draw codes with their labels (``_draw_with_labels``):
    ``sample(n, random_state, digit=None)``, ``sample_with_labels``, ``sample_latents``; they
    are fitted with the labels."""

    def fit(self, X: Any, y: Any = None) -> Self:
        """X : images (n_samples, 28, 28) or (n_samples, 784); y : labels of shape (n_samples,)."""
        if y is None:
            raise ValueError(f"{type(self).__name__}.fit needs the labels y (it samples digits)")
        return super().fit(X, y)

    def _labelled(self, Z: Any, y: Any, dtype: type, min_rows: int = 1) -> tuple:
        """(Z as ``dtype``, y as an integer array) checked for ``fit_latents``."""
        if y is None:
            raise ValueError(f"{type(self).__name__} needs the labels y")
        Z = _check_points(Z, "Z", min_rows=min_rows).astype(dtype)
        y = np.asarray(y)
        if y.shape != (len(Z),) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"y must be {len(Z)} integer labels, got {y.dtype} {y.shape}")
        return Z, y

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._draw_with_labels(n, rng, None)[0]

    def sample_latents(
        self, n: int, random_state: RandomState, digit: int | None = None
    ) -> np.ndarray:
        """n codes, float32 (n, latent_dim), of class ``digit`` or drawn from ``priors_``."""
        check_is_fitted(self)
        return self._draw_with_labels(_check_n(n), _rng(random_state), digit)[0]

    def sample_with_labels(
        self, n: int, random_state: RandomState, digit: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(images float32 (n, 28, 28) in [0, 1], labels (n,)) of class ``digit`` or mixed."""
        check_is_fitted(self)
        z, labels = self._draw_with_labels(_check_n(n), _rng(random_state), digit)
        return _finish(_decode(self.model, z.astype(np.float32, copy=False))), labels

    def sample(self, n: int, random_state: RandomState, digit: int | None = None) -> np.ndarray:
        """n images, float32 (n, 28, 28) in [0, 1], of class ``digit`` (None: mixed classes)."""
        return self.sample_with_labels(n, random_state, digit)[0]


class ClassConditionalGaussian(_Conditional, _LatentGenerator):
    """One Gaussian per digit on the codes, fitted by maximum likelihood (brief 001).

    model : torch module with ``encode``/``decode``.
    reg_covar : float added to each covariance's diagonal so that it stays positive definite.

    Learned: ``classes_`` (K,), ``priors_`` (K,) the training label frequencies, ``means_``
    (K, d), ``covariances_`` (K, d, d) the MLE (biased) covariances plus ``reg_covar * I``,
    ``cholesky_`` (K, d, d).
    ``sample(n, random_state, digit=None)``: with a digit, all n from that class ("500 eights"
    is ``sample(500, rs, digit=8)``); with None, each label is drawn from ``priors_``, so the
    samples follow the training set's digit frequencies (a mixture, like the data, rather than
    uniform classes). ``sample_with_labels`` also returns the labels.
    """

    def __init__(self, model: Any, reg_covar: float = 1e-6) -> None:
        self.model = model
        self.reg_covar = reg_covar

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        """Z : array of shape (n_samples, latent_dim); y : labels of shape (n_samples,)."""
        Z, y = self._labelled(Z, y, np.float64)
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        if counts.min() < 2:
            raise DataError(f"class {classes[counts.argmin()]} has fewer than 2 examples")
        d = Z.shape[1]
        means = np.stack([Z[inverse == k].mean(axis=0) for k in range(len(classes))])
        covs = np.stack(
            [
                np.cov(Z[inverse == k], rowvar=False, bias=True).reshape(d, d)
                for k in range(len(classes))
            ]
        )
        covs += self.reg_covar * np.eye(d)
        self.classes_ = classes
        self.priors_ = counts / counts.sum()
        self.means_ = means
        self.covariances_ = covs
        self.cholesky_ = np.linalg.cholesky(covs)
        return self

    def _labels(self, n: int, rng: np.random.Generator, digit: int | None) -> np.ndarray:
        if digit is None:
            return rng.choice(len(self.classes_), size=n, p=self.priors_)
        hits = np.flatnonzero(self.classes_ == digit)
        if isinstance(digit, bool) or not isinstance(digit, numbers.Integral) or not hits.size:
            raise ValueError(
                f"digit must be one of {self.classes_.tolist()} or None, got {digit!r}"
            )
        return np.full(n, hits[0])

    def _draw_with_labels(self, n: int, rng: np.random.Generator, digit: int | None):
        k = self._labels(n, rng, digit)  # (n,) class indices
        return _draw_gaussians(rng, k, self.means_, self.cholesky_), self.classes_[k]

    def loglik(self, X: Any) -> float:
        """Mean log-density per image of X's codes under sum_c prior_c N(mu_c, Sigma_c) (nats)."""
        check_is_fitted(self)
        Z = self._codes(X).astype(np.float64)
        return float(_mixture_logpdf(Z, self.priors_, self.means_, self.cholesky_).mean())

    def predict_latents(self, Z: Any) -> np.ndarray:
        """The Gaussian Bayes classifier of the fitted classes: the c of the largest
        prior_c N(z; mu_c, Sigma_c) for each code. Z : (n_samples, latent_dim) -> labels (n,)
        from ``classes_``; how far apart the class Gaussians are is its accuracy on real codes."""
        check_is_fitted(self)
        Z = _check_points(Z, "Z").astype(np.float64)
        with _one_thread():
            joint = _joint_logpdf(Z, self.priors_, self.means_, self.cholesky_)  # (n, K)
        return self.classes_[joint.argmax(axis=1)]

    def predict(self, X: Any) -> np.ndarray:
        """The class of each image X (n, 28, 28) / (n, 784): ``predict_latents`` of its code."""
        return self.predict_latents(self._codes(X))

    @property
    def name(self) -> str:
        return f"{_model_name(self.model)} class Gaussians"

    def _fitted_summary(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist(), "dim": int(self.means_.shape[1])}


class LatentFlow(_Conditional, _LatentGenerator):
    """Flow matching on the codes, class-conditional with classifier-free guidance (``flow``).

    model : torch module with ``encode``/``decode`` (the autoencoder).
    guidance : w of v- + w (vy - v-); 1 is plain conditional sampling, larger is surer and less
        varied. ``with_guidance(w)`` shares the fitted network, as ``with_bandwidth`` does.
    steps : Heun steps from noise to code (2 network passes each, 4 with guidance).
    hidden, epochs : the velocity network's width and training length (``flow.FlowConfig``).
    random_state : seeds the training; the same codes and seed give the same network on the CPU.
    cache : keep trained networks in ``cache_dir()/flows``, keyed by the codes, the labels and
        the config, so fitting the same data again loads it.

    Learned: ``velocity_`` (the network), ``mean_``/``scale_`` (the codes' standardisation),
    ``classes_``, ``priors_`` (label frequencies), ``losses_`` and ``train_seconds_``.
    ``sample(n, random_state, digit=None)``: "500 eights" is ``sample(500, rs, digit=8)``; with
    None, labels follow ``priors_``. Never trained with the judge: only codes and labels.
    """

    def __init__(
        self,
        model: Any,
        guidance: float = 1.5,
        steps: int = 20,
        hidden: int = 512,
        epochs: int = 120,
        random_state: int = 0,
        cache: bool = True,
    ) -> None:
        self.model = model
        self.guidance = guidance
        self.steps = steps
        self.hidden = hidden
        self.epochs = epochs
        self.random_state = random_state
        self.cache = cache

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        """Z : codes (n_samples, latent_dim); y : labels of shape (n_samples,) in 0..9."""
        from mnistlab import flow

        Z, y = self._labelled(Z, y, np.float32, min_rows=2)
        if y.min() < 0 or y.max() > 9:
            raise DataError(f"y must hold digits 0-9, found {int(y.min())}..{int(y.max())}")
        if not (isinstance(self.guidance, numbers.Real) and self.guidance >= 0):
            raise ValueError(f"guidance must be a number >= 0, got {self.guidance!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        mean, scale = Z.mean(0), Z.std(0) + np.float32(1e-6)
        codes = (Z - mean) / scale
        config = flow.FlowConfig(
            latent_dim=Z.shape[1],
            hidden=self.hidden,
            epochs=self.epochs,
            seed=int(self.random_state),
        )
        self.velocity_, meta = _trained_flow(codes, y.astype(np.int64), config, self.cache)
        self.losses_ = meta["losses"]
        self.train_seconds_ = meta["train_seconds"]
        counts = np.bincount(y, minlength=10)
        self.classes_ = np.flatnonzero(counts)
        self.priors_ = counts[self.classes_] / counts.sum()
        self.mean_, self.scale_ = mean, scale
        return self

    def with_guidance(self, guidance: float) -> Self:
        """A copy at another guidance scale that shares the fitted network (no retraining)."""
        check_is_fitted(self)
        other = type(self)(**(self.get_params(deep=False) | {"guidance": guidance}))
        other.__dict__.update({k: v for k, v in self.__dict__.items() if k.endswith("_")})
        return other

    def _labels(self, n: int, rng: np.random.Generator, digit: int | None) -> np.ndarray:
        if digit is None:
            return self.classes_[rng.choice(len(self.classes_), size=n, p=self.priors_)]
        if (
            isinstance(digit, bool)
            or not isinstance(digit, numbers.Integral)
            or digit not in (self.classes_)
        ):
            raise ValueError(
                f"digit must be one of {self.classes_.tolist()} or None, got {digit!r}"
            )
        return np.full(n, int(digit))

    def _draw_with_labels(self, n: int, rng: np.random.Generator, digit: int | None):
        from mnistlab import flow

        labels = self._labels(n, rng, digit)
        codes = flow.integrate(
            self.velocity_, labels, rng, guidance=float(self.guidance), steps=self.steps
        )
        return codes * self.scale_ + self.mean_, labels

    @property
    def name(self) -> str:
        return f"{_model_name(self.model)} latent flow"

    def setting(self) -> str:
        return f"w={self.guidance:g}"

    def _fitted_summary(self) -> dict[str, Any]:
        return {"train_seconds": self.train_seconds_, "final_loss": self.losses_[-1]}


def _trained_flow(codes: np.ndarray, labels: np.ndarray, config: Any, cache: bool):
    """The velocity network for (codes, labels, config) and its meta: from the cache, or trained
    and cached (one process trains an entry; another waits for it, then loads it). A damaged
    entry is trained again; a cache that cannot be written only costs the training."""
    import contextlib
    import hashlib
    import json

    from mnistlab import flow
    from mnistlab.data import cache_dir
    from mnistlab.errors import ModelFileError
    from mnistlab.fileio import entry_lock

    def fresh() -> tuple[Any, dict[str, Any]]:
        net, losses, seconds = flow.timed_train(codes, labels, config)
        return net, {"losses": losses, "train_seconds": seconds}

    if not cache:
        return fresh()
    digest = hashlib.sha256(codes.tobytes() + labels.tobytes())
    digest.update(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    path = cache_dir() / "flows" / f"flow-{digest.hexdigest()[:16]}.safetensors"
    with contextlib.suppress(ModelFileError):
        return flow.load(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = entry_lock(path)
        lock.acquire()
    except OSError:
        return fresh()
    try:
        with contextlib.suppress(ModelFileError):
            return flow.load(path)  # trained by another process while this one waited
        net, meta = fresh()
        with contextlib.suppress(OSError):
            flow.save(path, net, meta)
        return net, meta
    finally:
        lock.release()


class VAEPrior(_LatentGenerator):
    """A VAE's own sampler: z ~ N(0, scale^2 I), decoded (brief 002).

    vae : torch module with ``encode`` (the posterior mean) and ``decode``.
    scale : float, the prior's standard deviation when sampling (1.0 is the VAE's prior; below
        1 is the usual "temperature" trade of diversity for quality).

    Learned: ``latent_dim_``, from ``vae.config.latent_dim`` or else from the codes of X.
    ``fit(X=None)`` needs no data when the VAE has a config. ``loglik`` is the prior's density
    at the posterior means, comparable with ``LatentGMM(vae).loglik`` (the same space).
    """

    def __init__(self, vae: Any, scale: float = 1.0) -> None:
        self.vae = vae
        self.scale = scale

    @property
    def model(self) -> Any:
        return self.vae

    def fit(self, X: Any = None, y: Any = None) -> Self:
        """X : optional images (n_samples, 28, 28); used only if the VAE has no config."""
        if not (isinstance(self.scale, numbers.Real) and math.isfinite(self.scale)) or (
            self.scale <= 0
        ):
            raise ValueError(f"scale must be positive, got {self.scale!r}")
        d = getattr(getattr(self.vae, "config", None), "latent_dim", None)
        if d is None:
            if X is None:
                raise ValueError(
                    "VAEPrior.fit needs images X when the VAE has no config.latent_dim"
                )
            d = encode(self.vae, _check_images(X)[:1]).shape[1]
        self.latent_dim_ = int(d)
        return self

    def fit_latents(self, Z: Any, y: Any = None) -> Self:
        self.latent_dim_ = int(_check_points(Z, "Z").shape[1])
        return self

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.latent_dim_), dtype=np.float32)
        return z * np.float32(self.scale)

    def loglik(self, X: Any) -> float:
        """Mean log N(mu(x); 0, scale^2 I) per image, mu the posterior mean (nats, latent)."""
        check_is_fitted(self)
        Z = self._codes(X).astype(np.float64)
        d, s = Z.shape[1], float(self.scale)
        return float(
            np.mean(-0.5 * ((Z / s) ** 2).sum(axis=1) - d * (np.log(s) + 0.5 * np.log(2 * np.pi)))
        )

    @property
    def name(self) -> str:
        return f"{_model_name(self.vae)} prior"

    def setting(self) -> str:
        return f"scale={self.scale}"


__all__ = [
    "BANDWIDTH_RULES",
    "ClassConditionalGaussian",
    "Generator",
    "LatentGMM",
    "LatentKDE",
    "PCAKDE",
    "PixelKDE",
    "VAEPrior",
    "bandwidth_grid",
    "cv",
    "cv_bandwidth",
    "cv_scores",
    "encode",
    "held_out_loglik",
    "held_out_loglik_sweep",
    "scott",
    "silverman",
]
