"""Exact nearest neighbours: both rankers against a slow, obviously-correct search; the cached
choice of ranker."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from mnistlab import neighbors
from mnistlab.errors import DataError

BACKENDS = ["torch", "faiss"]


def nearest_slow(queries, refs, k, exclude_self=False):
    """The reference: the full float64 distance matrix, then a stable sort of each row."""
    dist = cdist(np.float32(queries).astype(np.float64), np.float32(refs).astype(np.float64))
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, 1), idx


def assert_exact(got, queries, refs, k, exclude_self=False):
    dist, idx = got
    want_dist, want_idx = nearest_slow(queries, refs, k, exclude_self)
    assert dist.dtype == np.float32 and idx.dtype == np.int64
    assert dist.shape == idx.shape == (len(queries), k)
    np.testing.assert_array_equal(idx, want_idx)
    # float32 distances: a subnormal one keeps fewer digits, 1.4e-45 apart
    np.testing.assert_allclose(dist, want_dist, rtol=1e-6, atol=3e-45)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks and groups of a few rows, so that small inputs cross many block edges and choose
    groups among super-groups."""
    monkeypatch.setattr(neighbors, "QUERY_BLOCK", 7)
    monkeypatch.setattr(neighbors, "REF_BLOCK", 160)
    monkeypatch.setattr(neighbors, "GROUP", 4)
    monkeypatch.setattr(neighbors, "RERANK_BLOCK", 5)


@pytest.fixture
def features(small):
    """Judge-like features of real digits: ReLU of a fixed random projection to 128-d.

    Returns (test features (200, 128), training features (600, 128)), float32."""
    w = np.random.default_rng(1).standard_normal((784, 128)).astype(np.float32) / 28

    def embed(x):
        return np.maximum(x.reshape(len(x), -1).astype(np.float32) / 255 @ w, 0)

    return embed(small.x_test), embed(small.x_train)


@pytest.mark.parametrize("d", [1, 3, 64, 200])
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blocks", ["default", "tiny"])
def test_matches_brute_force(rng, request, d, k, backend, blocks):
    if blocks == "tiny":
        request.getfixturevalue("tiny_blocks")
    queries = rng.standard_normal((61, d)).astype(np.float32)
    refs = rng.standard_normal((333, d)).astype(np.float32)
    dist, idx = neighbors.nearest(queries, refs, k, backend=backend)
    assert_exact((dist, idx), queries, refs, k)
    assert (np.diff(dist, axis=1) >= 0).all()


@pytest.mark.parametrize("k", [1, 3])
def test_both_rankers_agree_on_real_digits(small, features, tiny_blocks, k):
    test, train = features
    got = {b: neighbors.nearest(test, train, k, backend=b) for b in BACKENDS}
    for dist, idx in got.values():
        assert_exact((dist, idx), test, train, k)
    np.testing.assert_array_equal(got["torch"][0], got["faiss"][0])
    np.testing.assert_array_equal(got["torch"][1], got["faiss"][1])
    # In pixel space too: integer-valued, 784-d
    pixels = [x.reshape(len(x), -1)[:100].astype(np.float32) for x in (small.x_test, small.x_train)]
    for backend in BACKENDS:
        assert_exact(neighbors.nearest(*pixels, k, backend=backend), *pixels, k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_copies_of_real_digits_are_at_zero(features, backend):
    _, train = features
    picked = np.arange(0, 600, 7)
    dist, idx = neighbors.nearest(train[picked], train, 2, backend=backend)
    assert (dist[:, 0] == 0.0).all()
    np.testing.assert_array_equal(idx[:, 0], picked)
    assert (dist[:, 1] > 0).all()  # the bundled slice holds no duplicate digits


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_beyond_the_candidates_are_ordered_by_index(rng, tiny_blocks, backend):
    """More references at the nearest distance than first-round candidates: the lowest indices
    win, found by the second round."""
    refs = rng.standard_normal((400, 8)).astype(np.float32)
    copies = rng.choice(400, size=30, replace=False)
    refs[copies] = refs[5]
    dist, idx = neighbors.nearest(refs[[5]], refs, 6, backend=backend)
    np.testing.assert_array_equal(idx[0], np.sort(np.r_[copies, 5])[:6])
    assert (dist == 0).all()
    # Equal distances that are not copies: the 2 d unit vectors around the origin
    axes = np.concatenate([np.eye(8), -np.eye(8)] * 3).astype(np.float32)
    dist, idx = neighbors.nearest(np.zeros((1, 8), np.float32), axes, 10, backend=backend)
    np.testing.assert_array_equal(idx[0], np.arange(10))
    assert (dist == 1).all()


@pytest.mark.parametrize(("k", "exclude_self"), [(1, False), (5, False), (5, True)])
def test_few_queries_need_a_second_round(features, monkeypatch, k, exclude_self):
    """The first round's candidates clear the bound for nearly every query on real features."""
    test, train = features
    queries = train if exclude_self else test
    rounds = []
    torch_candidates = neighbors._torch_candidates

    def spy(qs, *args):
        rounds.append(len(qs))
        return torch_candidates(qs, *args)

    monkeypatch.setattr(neighbors, "_torch_candidates", spy)
    neighbors.nearest(queries, train, k, exclude_self=exclude_self, backend="torch")
    assert rounds[0] == len(queries) and sum(rounds[1:]) <= 0.05 * len(queries)


@pytest.mark.parametrize(("k", "exclude_self"), [(1, False), (5, False), (5, True), (40, True)])
def test_many_repeated_rows_are_exact_and_stay_narrow(rng, monkeypatch, k, exclude_self):
    """Samples that wash out to the same image share one feature row: 2,000 rows, 1,200 of them
    copies of ten. The answer is the exact one (copies in index order), and no query is searched
    again over most of the references, as the ties at the k-th neighbour once made it."""
    distinct = rng.normal(size=(810, 32)).astype(np.float32)
    pick = np.concatenate([np.arange(810), rng.integers(0, 10, size=1190)])
    refs = distinct[rng.permutation(pick)]
    queries = refs if exclude_self else rng.normal(size=(300, 32)).astype(np.float32)
    queries = np.concatenate([queries, refs[:50]]) if not exclude_self else queries
    widths = []
    torch_candidates = neighbors._torch_candidates

    def spy(qs, r_aug, n, c):
        widths.append(c)
        return torch_candidates(qs, r_aug, n, c)

    monkeypatch.setattr(neighbors, "_torch_candidates", spy)
    got = neighbors.nearest(queries, refs, k, exclude_self=exclude_self, backend="torch")
    assert_exact(got, queries, refs, k, exclude_self)
    assert max(widths) <= 16 * (k + 5)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_rows_that_differ_in_their_last_bits_settle_in_float64(rng, monkeypatch, exclude_self):
    """1,000 rows within float32 rounding of one another beside 500 far-spread ones (features of
    near-identical washed-out samples beside digits'): float32 ranks the close ones all alike,
    float64 tells them apart, in few candidates."""
    close = rng.normal(0, 1e-4, size=(1000, 64))
    refs = np.concatenate([close, rng.normal(0, 10, size=(500, 64))]).astype(np.float32)
    queries = refs if exclude_self else refs[::7] + np.float32(1e-5)
    widths = []
    torch_candidates = neighbors._torch_candidates

    def spy(qs, r_aug, n, c):
        widths.append((qs.dtype, c))
        return torch_candidates(qs, r_aug, n, c)

    monkeypatch.setattr(neighbors, "_torch_candidates", spy)
    got = neighbors.nearest(queries, refs, 5, exclude_self=exclude_self, backend="torch")
    assert_exact(got, queries, refs, 5, exclude_self)
    assert max(c for _, c in widths) <= 16 * (5 + 5)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    levels=st.sampled_from([2, 3, 5]),
    k=st.sampled_from([1, 2, 7]),
    exclude_self=st.booleans(),
)
def test_integer_features_with_many_ties(seed, levels, k, exclude_self):
    """Small integer features tie everywhere; both rankers must still give the exact answer."""
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, levels, size=(120, 6)).astype(np.float32)
    queries = refs if exclude_self else rng.integers(0, levels, size=(30, 6)).astype(np.float32)
    for backend in BACKENDS:
        got = neighbors.nearest(queries, refs, k, exclude_self=exclude_self, backend=backend)
        assert_exact(got, queries, refs, k, exclude_self)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_exclude_self_matches_brute_force(rng, tiny_blocks, backend, k):
    points = rng.standard_normal((50, 6)).astype(np.float32)
    got = neighbors.nearest(points, points, k, exclude_self=True, backend=backend)
    assert_exact(got, points, points, k, exclude_self=True)
    assert (got[1] != np.arange(50)[:, None]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_exclude_self_keeps_duplicates(rng, backend):
    """A duplicate row is another point at distance 0, not the point itself."""
    points = rng.standard_normal((20, 4)).astype(np.float32)
    points[7] = points[3]
    dist, idx = neighbors.nearest(points, points, 1, exclude_self=True, backend=backend)
    assert dist[3, 0] == 0.0 and idx[3, 0] == 7
    assert dist[7, 0] == 0.0 and idx[7, 0] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_and_tiny_features(rng, backend):
    # Squared distances past float32's range, or below its smallest normal number; features
    # near float32's limits, subnormal ones
    near_max = rng.uniform(1e38, 3e38, (40, 5)).astype(np.float32)  # their float32 sum overflows
    for points in [
        rng.standard_normal((40, 5)).astype(np.float32) * np.float32(size)
        for size in (1e20, 1e-20, 1e37, 1e-41)
    ] + [near_max]:
        for exclude_self in (False, True):
            got = neighbors.nearest(points, points, 2, exclude_self=exclude_self, backend=backend)
            assert_exact(got, points, points, 2, exclude_self)


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
    for backend in BACKENDS:
        dist, idx = neighbors.nearest(refs[picked], refs, backend=backend)
        assert (dist[:, 0] == 0.0).all()
        np.testing.assert_array_equal(idx[:, 0], picked)


def test_device_argument(rng):
    queries = rng.standard_normal((30, 5)).astype(np.float32)
    refs = rng.standard_normal((90, 5)).astype(np.float32)
    want = neighbors.nearest(queries, refs, 3)
    for device in ("cpu", torch.device("cpu")):
        got = neighbors.nearest(queries, refs, 3, device=device)
        np.testing.assert_array_equal(got[1], want[1])
    if torch.cuda.is_available():
        got = neighbors.nearest(queries, refs, 3, device="cuda")
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    else:
        with pytest.raises(ValueError, match="no CUDA device"):
            neighbors.nearest(queries, refs, device="cuda")


@pytest.fixture
def measure(monkeypatch, tmp_path):
    """A fresh cache folder and a fake measurement that says faiss is faster; counts its calls."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(neighbors, "_chosen", {})
    calls = []

    def fake_time_backends():
        calls.append(1)
        return {"torch": 2.0, "faiss": 1.0}

    monkeypatch.setattr(neighbors, "time_backends", fake_time_backends)
    return calls


def test_the_measurement_is_made_once_and_cached(measure, tmp_path, monkeypatch):
    assert neighbors.cpu_backend() == "faiss"
    path = tmp_path / neighbors.BACKEND_FILE
    record = json.loads(path.read_text())
    assert record["backend"] == "faiss" and record["seconds"] == {"torch": 2.0, "faiss": 1.0}
    assert record["machine"]["cpu"] == neighbors.cpu_model()
    monkeypatch.setattr(neighbors, "_chosen", {})  # a new process: it reads the file
    assert neighbors.cpu_backend() == "faiss" and len(measure) == 1
    # The file is honoured even where it disagrees with what a new measurement would say
    path.write_text(json.dumps(record | {"backend": "torch"}))
    monkeypatch.setattr(neighbors, "_chosen", {})
    assert neighbors.cpu_backend() == "torch" and len(measure) == 1
    # A measurement of an older search is made again
    record["machine"]["version"] -= 1
    path.write_text(json.dumps(record | {"backend": "torch"}))
    monkeypatch.setattr(neighbors, "_chosen", {})
    assert neighbors.cpu_backend() == "faiss" and len(measure) == 2
    assert json.loads(path.read_text())["machine"]["version"] == neighbors.MEASURE_VERSION


@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x04\x95 not json at all",
        b'["torch"]',
        b'{"backend": "fastest"}',
        b'{"backend": "torch", "machine": {"cpu": "another CPU"}}',
        b"",
    ],
)
def test_a_damaged_or_foreign_measurement_is_made_again(measure, tmp_path, content):
    path = tmp_path / neighbors.BACKEND_FILE
    path.write_bytes(content)
    assert neighbors.cpu_backend() == "faiss" and len(measure) == 1
    assert json.loads(path.read_text())["backend"] == "faiss"


def test_an_unwritable_cache_still_answers(measure, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MNISTLAB_CACHE", str(blocker / "cache"))  # under a file: cannot exist
    assert neighbors.cpu_backend() == "faiss"


def test_big_searches_use_the_measured_ranker(measure, rng, monkeypatch):
    calls = []
    faiss_candidates = neighbors._faiss_candidates

    def spy(*args):
        calls.append(1)
        return faiss_candidates(*args)

    monkeypatch.setattr(neighbors, "_faiss_candidates", spy)
    queries = rng.standard_normal((20, 4)).astype(np.float32)
    refs = rng.standard_normal((50, 4)).astype(np.float32)
    neighbors.nearest(queries, refs)
    assert calls == [] and measure == []  # small: the torch search, nothing measured
    monkeypatch.setattr(neighbors, "MEASURE_ABOVE", 0)
    got = neighbors.nearest(queries, refs)
    assert calls == [1] and measure == [1]
    assert_exact(got, queries, refs, 1)


def test_time_backends_times_both():
    seconds = neighbors.time_backends(m=64, n=512, d=8)
    assert set(seconds) == {"torch", "faiss"}
    assert all(0 < s < 10 for s in seconds.values())


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
    with pytest.raises(ValueError, match="backend"):
        neighbors.nearest(refs, refs, backend="sklearn")


@pytest.mark.parametrize(("k", "exclude_self"), [(0, False), (11, False), (10, True)])
def test_k_out_of_range(rng, k, exclude_self):
    refs = rng.standard_normal((10, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="k must lie in"):
        neighbors.nearest(refs, refs, k, exclude_self=exclude_self)
