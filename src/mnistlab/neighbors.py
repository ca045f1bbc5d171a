"""Exact nearest-neighbour search in feature space: the hot path of novelty and PRDC.

``nearest`` works in two steps. A float32 matrix product ranks: on the features centred on the
references' mean and scaled by a power of two, it keeps the few references with the smallest
``||r||^2 - 2 q.r`` for every query (``||q||^2`` is the same for every reference of a query, so it
cannot change the order). Then the distances of those candidates are recomputed directly in
float64, and the k best are ordered by (distance, index). A copy of a reference row comes back at
distance exactly 0.

The answer is checked, not hoped for: every reference left out of a query's candidates scored at
least as badly as the worst candidate, and a bound on the float32 rounding turns that score into a
lower bound on its true distance. Where the bound does not clear the k-th distance found (a tie,
or a near-tie, at the edge of the candidates), the query is searched again with four times as
many candidates, until it does or every reference is a candidate; from the third round on the
ranking runs in float64, whose far tighter bound settles near-ties. Repeated reference rows are
searched once each and their copies put back in index order (exact ties never clear the bound).
So the result is the exact top-k by (float64 distance, index) whichever ranker ran, and identical
across rankers.

Two rankers: the blocked torch search below (torch's float32 GEMM, on any CPU or GPU), and faiss'
exact ``IndexFlatL2``. Which one is faster depends on the CPU and its BLAS: raw faiss took 0.65 s
against the old torch search's 1.36 s on one AMD EPYC, and 7.49 s against 1.73 s on an Intel Xeon,
where faiss-cpu's bundled OpenBLAS fell back to its generic "Prescott" kernel (issue 15). So
``cpu_backend`` times both once per machine and keeps the winner in
``cache_dir()/nn_backend.json``; on a GPU the torch search always runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from mnistlab import data as data_mod
from mnistlab.errors import DataError

try:
    import faiss as _faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency, but keep working without it
    _faiss = None

# Blocks of queries x references for the torch search: 512 x 512 float32 scores (1 MB) stay in
# the cache between the GEMM that writes them and the min that reads them.
QUERY_BLOCK = 512
REF_BLOCK = 512
CUDA_QUERY_BLOCK = 4096  # a GPU wants bigger GEMMs: 4096 x 16384 scores are 256 MB
CUDA_REF_BLOCK = 16384
# Groups of G consecutive references: a block keeps only each group's minimum score, a vectorised
# min over G rows, where a topk over the block would cost most of a GEMM's time again (measured:
# 0.1 against 2.0 ms per million scores on one core).
GROUP = 16
# Candidates kept beyond k in the first round: they absorb the float32 rounding when a few
# references are almost equally close, so that a second round is rare.
EXTRA_CANDIDATES = 3
RERANK_BLOCK = 1024
# Rounds of float32 ranking before the queries left are ranked in float64. Rows far closer to
# one another than the set's span (washed-out samples whose features are nearly the same, beside
# digits') tie within float32's rounding, which scales with the span: the bound cannot tell the
# k-th neighbour from the next hundreds, and each round asked for four times the candidates, up
# to all of them (k-NN radii of 10,000 such samples, 6,135 of them distinct: 70 s, against 9 s
# with this switch, beside another job on 2 cores). float64 bounds the rounding 2^29 times
# tighter, so a few candidates settle it.
FLOAT32_ROUNDS = 2
BACKENDS = ("torch", "faiss")
BACKEND_FILE = "nn_backend.json"
# Raised when the rankers or their timing change, so that a measurement made before is made again
MEASURE_VERSION = 2
# Searches smaller than this (M * N * D multiply-adds) run the torch search without consulting the
# measurement: either ranker takes milliseconds there, and timing them would cost more.
MEASURE_ABOVE = 2**30
_chosen: dict[str, str] = {}  # this process's answer of cpu_backend, by machine


def _as_matrix(a: np.ndarray, name: str) -> torch.Tensor:
    x = np.asarray(a)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n, d), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise DataError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return torch.from_numpy(x)


def nearest(
    queries: np.ndarray,
    refs: np.ndarray,
    k: int = 1,
    *,
    exclude_self: bool = False,
    device: str | torch.device | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest reference rows of every query row, exact Euclidean distance.

    queries : array of shape (M, D)
    refs : array of shape (N, D)
    k : neighbours per query, 1 <= k <= N (N - 1 with ``exclude_self``)
    exclude_self : queries are the reference rows themselves (M == N, row i is ref i), and row i
        must not count as its own neighbour (k-NN radii of a set, as PRDC needs)
    device : where the search runs, a torch device ("cuda", "cuda:1", "cpu"); None is the CPU
    backend : the ranker on the CPU, "torch" or "faiss"; None takes the one measured faster on
        this machine (``cpu_backend``). The result is the same either way.

    Returns (dist, idx): float32 (M, k) distances in increasing order and int64 (M, k) indices into
    ``refs``; equal distances are ordered by index.
    """
    q, r = _as_matrix(queries, "queries"), _as_matrix(refs, "refs")
    (m, d), (n, d_ref) = q.shape, r.shape
    if d != d_ref:
        raise DataError(f"queries have {d} features but refs have {d_ref}")
    if exclude_self and m != n:
        raise DataError(f"exclude_self needs the queries to be the refs; got {m} and {n} rows")
    n_avail = n - 1 if exclude_self else n
    if not 1 <= k <= n_avail:
        raise ValueError(f"k must lie in [1, {n_avail}], got {k}")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    dev = torch.device(device if device is not None else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    if dev.type != "cpu":
        backend = "torch"  # faiss-cpu ranks on the CPU only
    elif backend is None:
        backend = "torch" if m * n * d < MEASURE_ABOVE else cpu_backend()
    with full_float32_products(), torch.inference_mode():
        groups = _distinct_rows(r)
        if groups is None:
            dist, idx = _search(q.to(dev), r.to(dev), k, exclude_self, backend)
        else:
            dist, idx = _search_distinct(q.to(dev), r.to(dev), k, exclude_self, backend, groups)
        return dist.astype(np.float32), idx


def nearest_within(
    queries: np.ndarray, refs: np.ndarray, classes: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's nearest reference row of its class (``nearest`` among the rows of refs
    whose label is classes[m]; among all of them when the class has none): distances (M,)
    float32 and indices (M,) int64 into refs. queries (M, D), refs (N, D), classes (M,) and
    labels (N,) integers. Within a class a search ranks about a tenth of the pairs."""
    classes, labels = np.asarray(classes), np.asarray(labels)
    if len(classes) != len(queries):
        raise DataError(f"need a class for each of {len(queries)} queries, got {len(classes)}")
    if len(labels) != len(refs):
        raise DataError(f"need a label for each of {len(refs)} references, got {len(labels)}")
    dist = np.empty(len(queries), dtype=np.float32)
    index = np.empty(len(queries), dtype=np.int64)
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        among = np.flatnonzero(labels == c)
        if len(among) == 0:
            among = np.arange(len(labels))
        d, i = nearest(queries[rows], refs[among], 1)
        dist[rows], index[rows] = d[:, 0], among[i[:, 0]]
    return dist, index


def neighbour_radii(radii: np.ndarray) -> np.ndarray:
    """Each reference's distance to a neighbour (N,), as a unit to measure in: zeros (k
    duplicates) raised to the smallest positive one; DataError when every one is zero."""
    positive = radii[radii > 0]
    if len(positive) == 0:
        raise DataError("every reference image is a copy of another: novelty has no scale")
    return np.maximum(radii, positive.min())


@contextlib.contextmanager
def full_float32_products() -> Iterator[None]:
    """Full float32 matrix products inside (not TF32 or bfloat16 ones, which torch may be set to
    use): the rounding bounds here and in ``metrics.prdc`` assume them."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)


# Repeated reference rows (samples that saturate to the same image, hence the same features) tie
# exactly: the bound in ``_search`` cannot settle a tie at the k-th neighbour, and a query with
# many equal references was searched again with four times the candidates up to all of them (one
# PRDC of 10,000 washed-out samples, 4,000 of them alike: 480 s). So the search runs over the
# distinct rows, each standing for its copies, and the copies are put back afterwards.
def _distinct_rows(r: torch.Tensor) -> tuple[np.ndarray, ...] | None:
    """None when every row of r (N, D) differs; else (first, members, counts) of its distinct
    rows, numbered by their first occurrence: first (U,) the row of each, members (N,) every row
    grouped by distinct row in increasing order, counts (U,) the size of each group."""
    a = r.numpy()
    # A cheap exact screen first: equal rows have equal integer hashes (wrapping int64
    # arithmetic on the float32 bits); np.unique on the bytes costs 1 s for 60,000 x 784.
    bits = a.view(np.int32).astype(np.int64)
    weights = np.random.default_rng(0).integers(1, 2**31, size=a.shape[1])
    hashes = bits @ weights
    if len(np.unique(hashes)) == len(a):
        return None
    rows = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()  # bytes per row
    _, first, inverse, counts = np.unique(
        rows, return_index=True, return_inverse=True, return_counts=True
    )
    if len(first) == len(a):
        return None
    by_first = np.argsort(first)  # distinct rows in the order of their first occurrence
    number = np.empty_like(by_first)
    number[by_first] = np.arange(len(by_first))
    members = np.argsort(number[inverse.ravel()], kind="stable")
    return first[by_first], members, counts[by_first]


def _search_distinct(
    q: torch.Tensor,
    r: torch.Tensor,
    k: int,
    exclude_self: bool,
    backend: str,
    groups: tuple[np.ndarray, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """``_search`` over the distinct rows of r (``_distinct_rows``), then their copies.

    The distinct rows are numbered by their first occurrence, so ties among them come in the
    order of their smallest index. Every distinct row ahead of one that holds an answer holds an
    answer too (its first row), so the answer lies among the k nearest distinct rows (k + 1 with
    exclude_self: the query's own row may hold no other); within a row, among its first k (+ 1).
    """
    first, members, counts = groups
    m, n_distinct = len(q), len(first)
    k_rows = min(k + exclude_self, n_distinct)
    d_rows, i_rows = _search(q, r[torch.from_numpy(first).to(r.device)], k_rows, False, backend)
    per = int(min(k + exclude_self, counts.max()))  # copies kept per row
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    j = np.arange(per)
    kept = np.where(j < counts[:, None], members[np.minimum(starts[:, None] + j, len(r) - 1)], -1)
    cand = kept[i_rows].reshape(m, -1)  # (M, k_rows * per); -1 pads a short row
    dist = np.repeat(d_rows, per, axis=1)
    dist[cand < 0] = np.inf
    if exclude_self:
        dist[cand == np.arange(m)[:, None]] = np.inf
    order = np.argsort(cand, axis=1, kind="stable")  # by index, then stably by distance
    cand, dist = np.take_along_axis(cand, order, 1), np.take_along_axis(dist, order, 1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, 1), np.take_along_axis(cand, order, 1)


def _search(
    q: torch.Tensor, r: torch.Tensor, k: int, exclude_self: bool, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    """``nearest`` on validated float32 tensors of one device."""
    (m, d), n = q.shape, len(r)
    n_avail = n - 1 if exclude_self else n
    n_pad = _ref_blocks(n, q.device)[1]
    qs, r_aug, scale = _ranking_inputs(q, r, n_pad)
    qs_norm = qs.norm(dim=1, dtype=torch.float64)  # (M,)
    rs_norm_max = math.sqrt(float(r_aug[:n, d].max())) * (1 + 1e-5)  # from float32, rounded up
    unit = 2.0**-24  # the ranking's unit roundoff: float32, then float64
    dist = torch.empty((m, k), dtype=torch.float64, device=q.device)
    idx = torch.empty((m, k), dtype=torch.int64, device=q.device)
    todo = torch.arange(m, device=q.device)  # queries not yet answered
    n_cand = min(k + EXTRA_CANDIDATES, n_avail)
    rounds = 0
    while len(todo):
        # (T, n_cand [+ 1]) candidates and (T,) lower bounds on the squared distance (in the
        # scaled units) of every reference left out of them
        if backend == "faiss":
            cand, out_sq = _faiss_candidates(qs[todo], r_aug[:n, :d], n_cand + exclude_self)
        else:
            cand, out_sq = _torch_candidates(qs[todo], r_aug, n, n_cand + exclude_self)
            out_sq += qs_norm[todo].square()
        own = todo if exclude_self else None
        dk, ik = _rerank(q[todo], r, cand, own, k)
        # float32 rounding, bounded: the scores (GEMM over d terms, then two additions) and the
        # scaled inputs, each rounded once to float32
        spread = qs_norm[todo] + rs_norm_max
        gamma = 2 * (d + 4) * unit  # twice the textbook (d + 4) u: slack for the bound itself
        out_dist = (out_sq - gamma * spread.square()).clamp(min=0).sqrt() - gamma * spread
        out_dist -= 2.0**-100  # values that underflowed to subnormals: far below anything else
        done = (out_dist * scale > dk[:, -1] * (1 + 1e-12)) | (n_cand >= n_avail)
        done &= out_sq.isfinite()  # faiss found fewer than asked for: ask the torch search
        dist[todo[done]], idx[todo[done]] = dk[done], ik[done]
        todo = todo[~done]
        n_cand = min(4 * n_cand, n_avail)
        backend = "torch"  # faiss asks for at most 2048 candidates; torch has no such limit
        rounds += 1
        if rounds == FLOAT32_ROUNDS and len(todo):  # near-ties float32 cannot settle: float64
            qs, r_aug, scale = _ranking_inputs(q.double(), r.double(), n_pad)
            qs_norm = qs.norm(dim=1)
            rs_norm_max = math.sqrt(float(r_aug[:n, d].max())) * (1 + 1e-12)
            unit = 2.0**-53
            n_cand = min(k + EXTRA_CANDIDATES, n_avail)
    return dist.cpu().numpy(), idx.cpu().numpy()  # float64 (M, k), int64 (M, k)


def _ref_blocks(n: int, device: torch.device) -> tuple[int, int]:
    """(references per block, N padded to whole blocks) for the torch search of n references."""
    br = CUDA_REF_BLOCK if device.type == "cuda" else REF_BLOCK
    br = min(br, -(-n // GROUP) * GROUP)
    return br, -(-n // br) * br


def _ranking_inputs(
    q: torch.Tensor, r: torch.Tensor, n_pad: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Queries and references centred on the references' mean and divided by ``scale``.

    Returns (qs (M, D), r_aug (n_pad, D + 1), scale): r_aug's first N rows hold the references and
    their squared norms, ``[r, ||r||^2]``; the padding rows are 0 with a norm of 2^100, above any
    real score (the inputs are scaled to about 1). Distances do not change under a shift; centring
    keeps the float32 ranking accurate for features far from the origin (ReLU features are all
    positive). ``scale`` is a power of two near the data's span: dividing by it is exact, and
    squared distances of huge (~1e19+) or tiny features stay inside float32's range. Each value
    is rounded once, in the subtraction.
    """
    (n, d) = r.shape
    # Any shift would do: the float32 mean (in float64 this column reduction measured 15x
    # slower), and a bound on the span from the extremes of the whole arrays.
    centre = r.mean(0)  # (D,)
    if not centre.isfinite().all():  # the float32 sum overflowed (features near 1e38)
        centre = r.mean(0, dtype=torch.float64).float()
    (q_lo, q_hi), (r_lo, r_hi) = q.aminmax(), r.aminmax()
    lo, hi = float(min(q_lo, r_lo)), float(max(q_hi, r_hi))
    span = max(hi - float(centre.min()), float(centre.max()) - lo)
    r_aug = r.new_zeros((n_pad, d + 1))
    rs = r_aug[:n, :d]
    if 2.0**-100 < span < 2.0**100:
        scale = 2.0 ** round(math.log2(span))
        qs = (q - centre).mul_(1 / scale)
        torch.sub(r, centre, out=rs).mul_(1 / scale)
    else:  # near float32's limits (or 0): centre in float64
        scale = 2.0 ** round(math.log2(span)) if span > 0 else 1.0
        qs = ((q.double() - centre.double()) / scale).to(q.dtype)
        rs.copy_((r.double() - centre.double()) / scale)
    r_aug[:n, d] = torch.linalg.vector_norm(rs, dim=1).square_()
    r_aug[n:, d] = 2.0**100
    return qs, r_aug, scale


def _torch_candidates(
    qs: torch.Tensor, r_aug: torch.Tensor, n: int, c: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``c`` references with the smallest ``||r||^2 - 2 q.r`` per query, by blocks.

    qs : (M, D) queries; r_aug : (N padded, D + 1) the references, as ``_ranking_inputs`` gives
    them; n : N. Returns (cand (M, c) int64, worst (M,) float64): a score that no reference left
    out of a query's candidates beats.
    """
    bq = CUDA_QUERY_BLOCK if qs.device.type == "cuda" else QUERY_BLOCK
    br, n_pad = _ref_blocks(n, qs.device)
    m, d = qs.shape
    n_groups = n_pad // GROUP  # group g: references g G ... g G + G - 1
    groups = r_aug.view(n_groups, GROUP, d + 1)
    # Groups scored again, the candidates being the best of their members: c - 2, which is one
    # more than the neighbours sought (k + 3 candidates, one more with exclude_self). The worst
    # chosen group's minimum must lie above the k-th neighbour for the bound to clear; with as
    # many groups as neighbours it never does (measured: every query searched twice).
    c_groups = min(max(c - 2, 1), n_groups)
    bq = max(1, min(bq, 2**24 // (c_groups * GROUP * d)))  # a retry's many candidates: <= 64 MB
    cand = torch.empty((m, c), dtype=torch.int64, device=qs.device)
    worst = torch.empty(m, dtype=torch.float64, device=qs.device)
    # One buffer for every block's scores: with a fresh 1 MB output per block, the GEMMs measured
    # up to 1.7x slower on 2 cores (the allocator hands back new pages)
    scores_buf = torch.empty((br, bq), dtype=qs.dtype, device=qs.device)
    for i0 in range(0, m, bq):
        b = len(qs[i0 : i0 + bq])
        qb = torch.cat([qs[i0 : i0 + bq] * -2.0, qs.new_ones((b, 1))], 1)  # (b, D + 1)
        g_min = torch.empty((n_groups, b), dtype=qs.dtype, device=qs.device)  # groups' best
        for j0 in range(0, n_pad, br):
            # (br, b) = ||r||^2 - 2 r.q, the squared distance less ||q||^2, as one GEMM:
            # [r, ||r||^2] . [-2 q, 1]. References run down the rows, so that the minimum over
            # a group is a vectorised min of G rows.
            s = torch.mm(r_aug[j0 : j0 + br], qb.T, out=scores_buf[:, :b])
            g_block = g_min[j0 // GROUP : (j0 + br) // GROUP]
            torch.amin(s.view(br // GROUP, GROUP, b), 1, out=g_block)
        # The c best scores lie in the c groups with the smallest minima: any other group's
        # minimum is at or above c group minima, which are c scores. Fewer groups are scored
        # again; those groups are found the same way among groups of G groups.
        g_best, g = _smallest_groups(g_min, c_groups)  # (b, c_groups) each
        rows = groups.index_select(0, g.view(-1)).view(b, c_groups * GROUP, d + 1)
        scores = torch.bmm(rows, qb[:, :, None]).view(b, c_groups * GROUP)
        v, pick = scores.topk(c, dim=1, largest=False, sorted=False)
        members = (g * GROUP)[:, :, None] + torch.arange(GROUP, device=qs.device)  # (b, c, G)
        cand[i0 : i0 + b] = members.view(b, c_groups * GROUP).gather(1, pick)
        # Left out: the other groups (scores at or above the worst chosen group's minimum) and
        # the other members (scored again at or above the worst candidate)
        worst[i0 : i0 + b] = torch.minimum(g_best.amax(1), v.amax(1))
    return cand, worst


def _smallest_groups(g_min: torch.Tensor, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``c`` smallest entries of every column of ``g_min`` (n, b): (values, rows), each (b, c).

    The best c lie in the c super-groups of G rows with the smallest minima, as in the caller.
    A vectorised min over G rows and a topk over n / G super-groups replace a topk over all n
    rows, which would need a transposed copy first (measured 2.0 against 9.2 ms for 512 queries
    and 3,776 groups on 2 cores).
    """
    n, b = g_min.shape
    if n % GROUP or n // GROUP < 2 * c:  # few groups: a plain topk
        v, rows = g_min.T.topk(c, dim=1, largest=False, sorted=False)
        return v, rows
    sg_min = g_min.view(n // GROUP, GROUP, b).amin(1)  # (n / G, b)
    sg = sg_min.T.topk(c, dim=1, largest=False, sorted=False).indices  # (b, c)
    rows = (sg * GROUP)[:, :, None] + torch.arange(GROUP, device=g_min.device)  # (b, c, G)
    flat = rows * b + torch.arange(b, device=g_min.device)[:, None, None]
    v, pick = g_min.take(flat).view(b, c * GROUP).topk(c, dim=1, largest=False, sorted=False)
    return v, rows.view(b, c * GROUP).gather(1, pick)


def _faiss_candidates(
    qs: torch.Tensor, rs: torch.Tensor, c: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """faiss' exact ``IndexFlatL2``: (cand (M, c) int64, the worst candidate's squared distance (M,)
    in float32 units)."""
    index = _faiss.IndexFlatL2(rs.shape[1])
    index.add(rs.contiguous().numpy())
    sq, cand = index.search(qs.numpy(), c)  # (M, c) each, increasing
    # A -1 (no neighbour found) would mean a non-finite distance; the bound then fails the query,
    # which the torch search answers.
    worst = torch.from_numpy(sq[:, -1]).double()
    cand = torch.from_numpy(cand)
    worst[(cand < 0).any(1)] = -math.inf
    return cand.clamp(min=0), worst


def _rerank(
    q: torch.Tensor, r: torch.Tensor, cand: torch.Tensor, own: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact float64 distances of the candidates, the k best by (distance, index).

    q : (M, D) float32, the raw queries; r : (N, D) float32; cand : (M, c) indices into r;
    own : (M,) the index of each query among the refs (``exclude_self``), or None.
    Returns (dist (M, k) float64, idx (M, k) int64).
    """
    dist = torch.empty((len(q), k), dtype=torch.float64, device=q.device)
    idx = torch.empty((len(q), k), dtype=torch.int64, device=q.device)
    block = max(1, min(RERANK_BLOCK, 2**23 // (cand.shape[1] * q.shape[1])))  # <= 64 MB
    for i0 in range(0, len(q), block):
        c = cand[i0 : i0 + block].sort(1).values  # (b, c): by index first
        rows = r.index_select(0, c.view(-1)).view(*c.shape, -1)  # (b, c, D)
        diff = rows.double() - q[i0 : i0 + block, None, :].double()
        d = diff.square_().sum(2).sqrt_()  # (b, c)
        if own is not None:
            d.masked_fill_(c == own[i0 : i0 + block, None], math.inf)
        d, order = d.sort(dim=1, stable=True)  # equal distances keep the index order
        dist[i0 : i0 + block] = d[:, :k]
        idx[i0 : i0 + block] = c.gather(1, order[:, :k])
    return dist, idx


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what the platform module says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_backend() -> str:
    """The faster CPU ranker on this machine, "torch" or "faiss", measured once and cached.

    The measurement (both rankers on a 2,048 x 60,000 x 128 search, about 2 s in all) is kept
    in ``cache_dir()/nn_backend.json`` with the machine it was made on (CPU model, thread count,
    torch and faiss versions, ``MEASURE_VERSION``); a file for another machine, or one that cannot
    be read, is measured and written again.
    """
    if _faiss is None:
        return "torch"
    machine = {
        "version": MEASURE_VERSION,
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "faiss": _faiss.__version__,
    }
    key = json.dumps(machine, sort_keys=True)
    if key not in _chosen:
        path = data_mod.cache_dir() / BACKEND_FILE
        record = _read_record(path)
        if record is None or record.get("machine") != machine:
            seconds = time_backends()
            record = {"machine": machine, "backend": min(seconds, key=seconds.get)}
            record["seconds"] = seconds
            _write_record(path, record)
        _chosen[key] = record["backend"]
    return _chosen[key]


def time_backends(m: int = 2048, n: int = 60000, d: int = 128) -> dict[str, float]:
    """Seconds each ranker takes to find 4 candidates for m Gaussian queries among n refs.

    The default shape is the novelty search's against the 60,000 training digits, cut to 2,048
    queries: a smaller N measured the two rankers equal where the full search set them 1.5x apart.
    """
    gen = torch.Generator().manual_seed(0)
    q, r = torch.randn((m, d), generator=gen), torch.randn((n, d), generator=gen)
    qs, r_aug, _ = _ranking_inputs(q, r, _ref_blocks(n, q.device)[1])
    rankers = {
        "torch": lambda qs: _torch_candidates(qs, r_aug, n, 4),
        "faiss": lambda qs: _faiss_candidates(qs, r_aug[:n, :d], 4),
    }
    seconds = dict.fromkeys(rankers, math.inf)
    with torch.inference_mode():
        for rank in rankers.values():
            rank(qs[:64])  # warm up the thread pools
        for _ in range(2):  # interleaved, the best of two
            for name, rank in rankers.items():
                t0 = time.perf_counter()
                rank(qs)
                seconds[name] = min(seconds[name], time.perf_counter() - t0)
    return seconds


def _read_record(path: Path) -> dict | None:
    """The cached measurement, or None if it is missing or not what ``cpu_backend`` writes."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("backend") not in BACKENDS:
        return None
    return record


def _write_record(path: Path, record: dict) -> None:
    """Write the measurement atomically; a cache folder that cannot be written only loses it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump(record, f, indent=1)
        os.chmod(f.name, 0o644)  # as readable as the rest of the cache, not a temp file's 0600
        os.replace(f.name, path)
    except OSError:
        pass
