"""Projections of latent codes to 2-D and 3-D, and how well they keep the digits apart.

PCA and LDA are fitted on one set of codes (the training digits') and applied to another; t-SNE
and UMAP embed the codes they are given. ``label_silhouette`` scores any of them against the
true classes. Every step runs on one BLAS / OpenMP thread (``single_threaded``): the problems are
small (thousands of points, at most 784 features), and on 2 shared cores the thread hand-offs
cost more than they give.

    >>> pts, ratio = lda_project(z_train, y_train, z_test, 2)  # (N, 2), (2,)
    >>> label_silhouette(pts, y_test)  # 1: classes apart, 0: mixed
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits


def single_threaded() -> Any:
    """BLAS and OpenMP on one thread for the scikit-learn and UMAP steps (a context manager).

    Their problems are small (thousands of points, at most 784 features): on 2 shared cores the
    thread hand-offs cost more than they give; measured 10-20 times slower under load.
    """
    return threadpool_limits(limits=1)


def one_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run ``fn`` under ``single_threaded()``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_threaded():
            return fn(*args, **kwargs)

    return wrapper


@one_thread
def pca_project(z_fit: np.ndarray, z: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """PCA fitted on z_fit (M, d), applied to z (N, d) -> float32 (N, n_components)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, random_state=seed).fit(z_fit)
    return pca.transform(z).astype(np.float32)


@one_thread
def lda_project(
    z_fit: np.ndarray, y_fit: np.ndarray, z: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """LDA fitted on labelled codes (z_fit (M, d), y_fit (M,)), applied to z (N, d).

    Returns (points float32 (N, n_components), explained variance ratio (n_components,)). LDA
    gives at most min(d, n_classes - 1) components: ValueError beyond that.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    limit = min(z_fit.shape[1], len(np.unique(y_fit)) - 1)
    if n_components > limit:
        raise ValueError(f"LDA gives at most {limit} components here, not {n_components}")
    lda = LinearDiscriminantAnalysis(n_components=n_components).fit(z_fit, y_fit)
    return lda.transform(z).astype(np.float32), lda.explained_variance_ratio_[:n_components]


@one_thread
def tsne_embed(z: np.ndarray, seed: int, max_iter: int = 1_000) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE (perplexity 30, PCA init) of z (N, d) -> (N, 2).

    The perplexity shrinks to (N - 1) / 3 (at least 5) for fewer than 91 points.
    """
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(5.0, (len(z) - 1) / 3.0)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        max_iter=max_iter,
        random_state=seed,
    )
    return tsne.fit_transform(np.asarray(z, dtype=np.float32)).astype(np.float32)


@one_thread
def umap_embed(z: np.ndarray, seed: int) -> np.ndarray:
    """UMAP (15 neighbours, min_dist 0.1) of z (N, d) -> (N, 2); n_jobs=1 makes it deterministic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden to 1 by setting random_state"
        import umap

        reducer = umap.UMAP(
            n_components=2, n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1
        )
        return reducer.fit_transform(np.asarray(z, dtype=np.float32)).astype(np.float32)


@one_thread
def label_silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the true classes in a space: points (N, k), labels (N,) -> [-1, 1].

    1: every point is nearer its own class than any other; 0: the classes are mixed.
    """
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(points, labels))
