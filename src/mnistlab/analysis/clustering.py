"""Clusters in a latent space, scored against the true labels.

``cluster_latents`` runs k-means, DBSCAN and HDBSCAN on standardised codes and scores each
against the labels (``score_clusters``: ARI, NMI, each cluster's majority label and purity);
``knee_eps`` picks DBSCAN's radius, ``outlier_index`` the noise points farthest from every
cluster.

    >>> found = cluster_latents(z, y, seed=0)  # z (N, d) codes, y (N,) digits
    >>> found["k-means"].ari, found["HDBSCAN"].noise_share
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.analysis.projections import one_thread


@dataclass
class ClusterResult:
    """One clustering of standardised codes, scored against the labels."""

    method: str
    labels: np.ndarray  # (n,) cluster ids, -1 = noise
    ari: float  # noise counted as one more cluster
    nmi: float
    ari_clustered: float  # on the points that got a cluster only
    nmi_clustered: float
    n_clusters: int
    noise_share: float
    params: dict[str, float]
    centers: np.ndarray  # (K, d) cluster centres in latent units
    majority: list[int]  # majority true label of each cluster
    purity: list[float]  # share of that label in the cluster


def knee_eps(z: np.ndarray, min_samples: int) -> tuple[float, np.ndarray]:
    """DBSCAN's eps from the knee of the sorted k-distance curve (Ester et al. 1996).

    k-distance: the distance of each point of z (N, d) to its ``min_samples``-th nearest point,
    itself included (scikit-learn counts the point in ``min_samples``), sorted ascending. The
    knee is the point farthest below the chord from the first to the last point once both axes
    are scaled to [0, 1] (the Kneedle rule for a convex increasing curve).
    Returns (eps, the sorted k-distances (N,)).
    """
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min_samples).fit(z)
    dist, _ = nn.kneighbors(z)  # (N, min_samples); column 0 is the point itself
    kd = np.sort(dist[:, -1])
    x = np.linspace(0.0, 1.0, len(kd))
    span = kd[-1] - kd[0]
    y = (kd - kd[0]) / span if span > 0 else np.zeros_like(kd)
    knee = int(np.argmax(x - y))
    return float(kd[knee]), kd


def score_clusters(
    method: str, labels: np.ndarray, y: np.ndarray, z: np.ndarray, params: dict[str, float]
) -> ClusterResult:
    """Score cluster ids ``labels`` (N,) (-1 = noise) of codes z (N, d) against true labels y (N,).

    ARI and NMI count the noise as one more cluster; the ``_clustered`` variants leave the noise
    out (NaN with fewer than 2 clustered points). ``centers`` are the clusters' means in z's units.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ids = [c for c in np.unique(labels) if c >= 0]
    centers = np.stack([z[labels == c].mean(0) for c in ids]) if ids else np.zeros((0, z.shape[1]))
    majority, purity = [], []
    for c in ids:
        counts = np.bincount(y[labels == c])
        majority.append(int(counts.argmax()))
        purity.append(float(counts.max() / counts.sum()))
    kept = labels >= 0
    ari_c = adjusted_rand_score(y[kept], labels[kept]) if kept.sum() > 1 else float("nan")
    nmi_c = normalized_mutual_info_score(y[kept], labels[kept]) if kept.sum() > 1 else float("nan")
    return ClusterResult(
        method=method,
        labels=labels,
        ari=float(adjusted_rand_score(y, labels)),
        nmi=float(normalized_mutual_info_score(y, labels)),
        ari_clustered=float(ari_c),
        nmi_clustered=float(nmi_c),
        n_clusters=len(ids),
        noise_share=float(np.mean(labels < 0)),
        params=params,
        centers=centers.astype(np.float32),
        majority=majority,
        purity=purity,
    )


@one_thread
def cluster_latents(z: np.ndarray, y: np.ndarray, seed: int) -> dict[str, ClusterResult]:
    """k-means (k = 10), DBSCAN and HDBSCAN on codes z (N, d), scored against labels y (N,).

    The codes are standardised first (each coordinate to mean 0, variance 1), so that no
    latent unit dominates the distances; the centres come back in latent units for decoding.
    DBSCAN: min_samples = max(5, 2 d) (Sander et al.'s 2 x dimension rule), eps from the knee of
    the k-distance curve (``knee_eps``). HDBSCAN: min_cluster_size = max(10, N / 100).
    Returns method name ("k-means", "DBSCAN", "HDBSCAN") -> ClusterResult.
    """
    from sklearn.cluster import DBSCAN, HDBSCAN, KMeans
    from sklearn.preprocessing import StandardScaler

    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    zs = StandardScaler().fit(z).transform(z)  # (N, d)
    out = {}

    km = KMeans(n_clusters=10, n_init=10, random_state=seed).fit(zs)
    out["k-means"] = score_clusters("k-means", km.labels_, y, z, {"k": 10, "n_init": 10})

    min_samples = max(5, 2 * z.shape[1])
    eps, _ = knee_eps(zs, min_samples)
    db = DBSCAN(eps=eps, min_samples=min_samples).fit(zs)
    out["DBSCAN"] = score_clusters(
        "DBSCAN", db.labels_, y, z, {"eps": eps, "min_samples": min_samples}
    )

    mcs = max(10, len(z) // 100)
    hdb = HDBSCAN(min_cluster_size=mcs, copy=True).fit(zs)
    out["HDBSCAN"] = score_clusters("HDBSCAN", hdb.labels_, y, z, {"min_cluster_size": mcs})
    return out


def outlier_index(result: ClusterResult, z: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n noise points farthest from every cluster centre, and the nearest centre of each.

    result : an HDBSCAN/DBSCAN ClusterResult on z (N, d). Without noise points the farthest
    points from their own centre are taken. Returns (indices (m,), nearest cluster position (m,)),
    positions into ``result.centers``; empty when there is no cluster.
    """
    if result.n_clusters == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Distances in the standardised units the clustering used (``cluster_latents``).
    mu, sd = z.mean(0), z.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    zs, cs = (z - mu) / sd, (result.centers - mu) / sd
    d = np.linalg.norm(zs[:, None, :] - cs[None, :, :], axis=2)  # (N, K)
    nearest = d.argmin(1)
    gap = d.min(1)
    pool = np.flatnonzero(result.labels < 0)
    if pool.size == 0:
        pool = np.arange(len(z))
    chosen = pool[np.argsort(-gap[pool], kind="stable")[:n]]
    return chosen, nearest[chosen]


def largest_share(labels: np.ndarray) -> float:
    """Share of all points (noise included) in the largest cluster of labels (n,), -1 = noise."""
    labels = np.asarray(labels)
    clustered = labels[labels >= 0]
    return float(np.bincount(clustered).max() / len(labels)) if clustered.size else 0.0
