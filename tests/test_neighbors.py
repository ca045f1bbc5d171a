"""Exact nearest neighbours: the fast blocked search against a slow, obviously-correct one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from mnistlab import neighbors
from mnistlab.errors import DataError


def nearest_slow(queries, refs, k, exclude_self=False):
    """The reference: the full float64 distance matrix, then a stable sort of each row."""
    dist = cdist(queries.astype(np.float64), refs.astype(np.float64))
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, 1), idx


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few rows, so that small inputs cross many block edges."""
    monkeypatch.setattr(neighbors, "QUERY_BLOCK", 7)
    monkeypatch.setattr(neighbors, "REF_BLOCK", 13)


@pytest.mark.parametrize("d", [1, 3, 64, 200])
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("blocks", ["faiss", "default", "tiny"])
def test_matches_brute_force(rng, request, monkeypatch, d, k, blocks):
    if blocks != "faiss":  # the blocked torch search, faiss' fallback
        monkeypatch.setattr(neighbors, "_faiss", None)
    if blocks == "tiny":
        request.getfixturevalue("tiny_blocks")
    queries = rng.standard_normal((61, d)).astype(np.float32)
    refs = rng.standard_normal((333, d)).astype(np.float32)
    dist, idx = neighbors.nearest(queries, refs, k)
    want_dist, want_idx = nearest_slow(queries, refs, k)
    assert dist.dtype == np.float32 and idx.dtype == np.int64
    assert dist.shape == idx.shape == (61, k)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-6)
    assert (np.diff(dist, axis=1) >= 0).all()


@pytest.fixture(params=["faiss", "torch"])
def backend(request, monkeypatch):
    """Both rankers: faiss' IndexFlatL2 and the blocked torch search (with tiny blocks)."""
    if request.param == "torch":
        monkeypatch.setattr(neighbors, "_faiss", None)
        request.getfixturevalue("tiny_blocks")
    return request.param


@pytest.mark.parametrize("k", [1, 4])
def test_exclude_self_matches_brute_force(rng, backend, k):
    points = rng.standard_normal((50, 6)).astype(np.float32)
    dist, idx = neighbors.nearest(points, points, k, exclude_self=True)
    want_dist, want_idx = nearest_slow(points, points, k, exclude_self=True)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-6)
    assert (idx != np.arange(50)[:, None]).all()


def test_huge_features_fall_back_to_the_exact_torch_search(rng):
    # Squared distances past float32's range make faiss return index -1; never use it.
    points = rng.standard_normal((40, 5)).astype(np.float32) * np.float32(1e20)
    for exclude_self in (False, True):
        dist, idx = neighbors.nearest(points, points, 2, exclude_self=exclude_self)
        assert (idx >= 0).all()
        want_dist, want_idx = nearest_slow(points, points, 2, exclude_self=exclude_self)
        np.testing.assert_array_equal(idx, want_idx)


def test_exclude_self_keeps_duplicates(rng, backend):
    """A duplicate row is another point at distance 0, not the point itself."""
    points = rng.standard_normal((20, 4)).astype(np.float32)
    points[7] = points[3]
    dist, idx = neighbors.nearest(points, points, 1, exclude_self=True)
    assert dist[3, 0] == 0.0 and idx[3, 0] == 7
    assert dist[7, 0] == 0.0 and idx[7, 0] == 3


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    offset=st.sampled_from([0.0, 1.0, 1e3]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_copies_are_at_distance_exactly_zero(seed, offset, scale):
    """Even far from the origin, where ||q||^2 - 2 q.r + ||r||^2 cancels badly in float32."""
    rng = np.random.default_rng(seed)
    refs = (offset + scale * rng.standard_normal((300, 16))).astype(np.float32)
    picked = rng.choice(300, size=40, replace=False)
    dist, idx = neighbors.nearest(refs[picked], refs)
    assert (dist[:, 0] == 0.0).all()
    np.testing.assert_array_equal(idx[:, 0], picked)


def test_feature_size_mismatch_and_bad_values(rng):
    refs = rng.standard_normal((10, 3)).astype(np.float32)
    bad_queries = {
        "have 4 features but refs have 3": np.zeros((2, 4)),
        "NaN": np.array([[0.0, np.nan, 0.0]]),
        "empty": np.zeros((0, 3)),
        "2-D array": np.zeros(3),
        "real numbers": np.array([["a", "b", "c"]]),
    }
    for message, queries in bad_queries.items():
        with pytest.raises(DataError, match=message):
            neighbors.nearest(queries, refs)
    with pytest.raises(DataError, match="exclude_self"):
        neighbors.nearest(refs[:5], refs, exclude_self=True)


@pytest.mark.parametrize(("k", "exclude_self"), [(0, False), (11, False), (10, True)])
def test_k_out_of_range(rng, k, exclude_self):
    refs = rng.standard_normal((10, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="k must lie in"):
        neighbors.nearest(refs, refs, k, exclude_self=exclude_self)
