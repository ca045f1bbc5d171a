"""Two-sided tangent distance (Simard, LeCun and Denker 1993): novelty's second opinion.

The judge's copy descriptor recognises a training digit moved, blurred, noisier or fainter, but
a digit turned by 10 degrees or drawn a little thinner moves it about as far as a fresh digit by
another writer. Tangent distance measures how far apart two images are once each may move, by a
small amount, along the directions in which such changes move it: the residual of the least-
squares fit of ``q - p`` by both images' tangent vectors (two moves, a turn, a scale, two
shears and a stroke thickening; Simard et al. 1998, "Transformation invariance in pattern
recognition", section 3). Computed between a query and the few training digits its descriptor
ranks nearest, in the same canonical form the descriptor sees, blurred so that the tangents,
being image gradients, are smooth; each candidate first drawn with the stroke width (``STROKES``)
whose ink matches the query's, which a first-order thickening tangent cannot reach.

No maintained Python library computes it (scikit-learn, PyTorch and faiss have no tangent
distance); this is the textbook formula, batched in torch.
"""

from __future__ import annotations

import numpy as np
import torch

from mnistlab import perturb
from mnistlab.errors import DataError
from mnistlab.models.classifier import canonicalise
from mnistlab.neighbors import nearest, neighbour_radii

SIGMA = 0.9  # blur before the gradients (px); 0.9 measured best of 0.6-1.5 on the judge check
RIDGE = 1e-3  # keeps the 14 x 14 normal equations well posed on near-blank images
# Candidates: the descriptor's 5 nearest training digits. With 10 (the source among them for
# 99.5% of the copies turned 10 degrees, 84% of the thinner, 74% of the bent), the judge check
# counted 85.0% of turned copies as near-copies, 56.7% of PCA ones, 30.4% of thinner; with 5,
# 84.1%, 55.8%, 29.9%, every other row within 0.5 points, at half the cost (~0.27 ms a pair).
K = 5
# Stroke widths a candidate may be drawn with before it is compared (``perturb.erode`` below 0,
# ``perturb.dilate`` above): the one whose ink is nearest the query's. A first-order thickening
# tangent cannot follow a full pixel of ink (loops fill, strokes merge). Measured on the judge
# check, tangent opinion alone at 1% false alarms: thicker copies 7% -> 62%, thinner 32% -> 81%,
# and thickenings the check does not make: 2x2 dilation 63% -> 82%, a plus-shaped dilation 29%
# -> 48%, blur + gain 66% -> 85%; fresh digits under the same changes stay at 0.3-1.4%.
STROKES = (-1.0, -0.5, 0.0, 0.5, 1.0)
INK_RATIO = 1.25  # a stroke is tried only if the query's ink is within this factor of its ink


def prepare(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (N, 28, 28), (N, 784) or (N, 1, 28, 28), uint8 or float in [0, 1] -> their
    canonical, blurred form (N, 1, 28, 28) float32, the form tangent distance compares."""
    if torch.is_tensor(images):
        x = images.float().reshape(-1, 1, 28, 28)
    else:
        x = torch.from_numpy(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
    return perturb.blur(canonicalise(x), SIGMA)  # canonicalise sets the brightest pixel to 1


def restroke(x: torch.Tensor, amounts: torch.Tensor) -> torch.Tensor:
    """Images x (B, 1, 28, 28) in [0, 1] drawn thinner (amount < 0) or thicker (> 0) by
    ``perturb.erode`` / ``perturb.dilate`` at |amount|; 0 leaves an image as it is."""
    a = amounts.float().abs()
    sign = amounts.view(-1, 1, 1, 1)
    out = torch.where(sign > 0, perturb.dilate(x, a), x)
    return torch.where(sign < 0, perturb.erode(x, a), out)


def ink(images: torch.Tensor, chunk: int = 8192) -> np.ndarray:
    """Each image's ink in its prepared form when drawn with each of ``STROKES``: images
    (N, 1, 28, 28) uint8 or float -> (N, len(STROKES)) float64."""
    out = np.empty((len(images), len(STROKES)))
    for s in range(0, len(images), chunk):
        x = _as_unit(images[s : s + chunk])
        for j, a in enumerate(STROKES):
            amounts = torch.full((len(x),), a)
            out[s : s + len(x), j] = prepare(restroke(x, amounts)).sum((1, 2, 3)).numpy()
    return out


def _as_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; float images as they are."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


_C = torch.arange(28, dtype=torch.float32) - 13.5
_Y, _X = (c.reshape(784) for c in torch.meshgrid(_C, _C, indexing="ij"))
_1, _0 = torch.ones(784), torch.zeros(784)
# The first six tangents are a * d/dx + b * d/dy with these per-pixel a and b (Simard et al.).
_A = torch.stack([_1, _0, _Y, _X, _X, _Y])
_B = torch.stack([_0, _1, -_X, _Y, -_Y, _X])


def tangents(p: torch.Tensor) -> torch.Tensor:
    """Prepared images (B, 1, 28, 28) -> their 7 tangent vectors (B, 7, 784): x- and y-moves,
    turn, scale, the two shears, thickening (central differences, zero at the border). Written
    as two broadcast products into one buffer: 4x faster than one expression per tangent."""
    b = len(p)
    g = torch.zeros(b, 2, 28, 28)
    torch.sub(p[:, 0, :, 2:], p[:, 0, :, :-2], out=g[:, 0, :, 1:-1])
    torch.sub(p[:, 0, 2:, :], p[:, 0, :-2, :], out=g[:, 1, 1:-1, :])
    g = g.mul_(0.5).reshape(b, 2, 784)
    t = torch.empty(b, 7, 784)
    torch.mul(_A, g[:, 0:1], out=t[:, :6])
    t[:, :6].addcmul_(_B, g[:, 1:2])
    torch.hypot(g[:, 0], g[:, 1], out=t[:, 6])
    return t


def _residual(gram: torch.Tensor, atr: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    """The residual norm of the ridge fit of r by A, from gram = A A' (B, 14, 14), atr = A r
    (B, 14) and rr = r'r (B,): with c = (gram + l I)^-1 A r it is sqrt(r'r - c'Ar - l|c|^2),
    only 14 x 14 systems, never the (B, 784) residual."""
    gram = gram.double() + RIDGE * torch.eye(14, dtype=torch.float64)
    atr = atr.double()
    c = torch.linalg.solve(gram, atr)
    res2 = rr.double() - (c * atr).sum(1) - RIDGE * (c**2).sum(1)
    return res2.clamp(min=0.0).sqrt()


def paired(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Two-sided tangent distance between prepared images q[i] and p[i] (B, 1, 28, 28) -> (B,):
    the least-squares residual of r = q - p by A = [T_p, -T_q]."""
    a = torch.cat([tangents(p), -tangents(q)], 1)  # (B, 14, 784)
    r = (q - p).reshape(len(q), 784)
    gram = torch.bmm(a, a.transpose(1, 2))
    atr = torch.bmm(a, r[:, :, None])[:, :, 0]
    return _residual(gram, atr, (r * r).sum(1)).float()


def to_candidates(
    queries: torch.Tensor,
    refs: torch.Tensor,
    index: np.ndarray,
    chunk: int = 64,
    *,
    strokes: np.ndarray | None = None,
) -> np.ndarray:
    """Tangent distance from each prepared query (M, 1, 28, 28) to its candidate references
    refs[index[m]] (index (M, K) into refs (N, 1, 28, 28)) -> (M, K) float64, as ``paired``
    but with each query's tangents and their Gram block computed once for its K candidates.

    strokes : None, refs then prepared (``prepare``); or (M, K) stroke amounts, refs then the
        images themselves (uint8 or float in [0, 1]), each candidate drawn with its amount
        (``restroke``) and prepared here."""
    m, k = index.shape
    idx = torch.as_tensor(np.ascontiguousarray(index), dtype=torch.long)
    amounts = None if strokes is None else torch.as_tensor(np.asarray(strokes, dtype=np.float32))
    out = torch.empty(m, k, dtype=torch.float64)
    for s in range(0, m, chunk):
        q = queries[s : s + chunk]  # (b, 1, 28, 28)
        b = len(q)
        p = refs[idx[s : s + chunk].reshape(-1)]  # (b K, 1, 28, 28)
        if amounts is not None:
            p = prepare(restroke(_as_unit(p), amounts[s : s + chunk].reshape(-1)))
        tq = tangents(q)  # (b, 7, 784)
        tp = tangents(p)  # (b K, 7, 784)
        r = (q.reshape(b, 1, 784) - p.reshape(b, k, 784)).reshape(b * k, 784)
        gram = torch.empty(b * k, 14, 14)
        gram[:, :7, :7] = torch.bmm(tp, tp.transpose(1, 2))
        cross = -torch.bmm(tp.reshape(b, k * 7, 784), tq.transpose(1, 2))  # (b, K 7, 7)
        gram[:, :7, 7:] = cross.reshape(b * k, 7, 7)
        gram[:, 7:, :7] = gram[:, :7, 7:].transpose(1, 2)
        gram[:, 7:, 7:] = torch.bmm(tq, tq.transpose(1, 2)).repeat_interleave(k, 0)
        atr = torch.empty(b * k, 14)
        atr[:, :7] = torch.bmm(tp, r[:, :, None])[:, :, 0]
        atr[:, 7:] = -torch.bmm(r.reshape(b, k, 784), tq.transpose(1, 2)).reshape(b * k, 7)
        out[s : s + b] = _residual(gram, atr, (r * r).sum(1)).reshape(b, k)
    return out.numpy()


def local_scale(images: torch.Tensor, desc: np.ndarray, k: int = K) -> np.ndarray:
    """Each reference's tangent distance to the nearest of its k descriptor-nearest other
    references (k capped at N - 1), as drawn: (N,) float64, the unit ``opinion`` measures in
    (as ``metrics.local_scale`` is the descriptor's). Zeros (duplicates) are raised to the
    smallest positive one. images (N, 1, 28, 28) uint8 or float; desc (N, d) their descriptors."""
    if len(desc) < 2:
        raise DataError(f"need at least 2 reference images for a local scale, got {len(desc)}")
    k = min(k, len(desc) - 1)
    index = nearest(desc, desc, k, exclude_self=True)[1]
    pixels = prepare(images)
    radii = to_candidates(pixels, pixels, index).min(1)
    return neighbour_radii(radii)


def opinion(
    pixels: torch.Tensor,
    ref_images: torch.Tensor,
    ref_ink: np.ndarray,
    ref_scale: np.ndarray,
    candidates: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Tangent distance from each query to the nearest of its candidate references, each drawn
    with the stroke of ``STROKES`` whose ink is nearest the query's, in units of that
    reference's ``local_scale``, and that reference's index: (M,) float64, (M,) int64.
    pixels (M, 1, 28, 28) prepared; ref_images (N, 1, 28, 28) uint8 or float, ref_ink their
    ``ink`` (N, len(STROKES)); candidates (M, k): the indices of each query's k
    descriptor-nearest references (``nearest(desc, ref_desc, K)``)."""
    query_ink = pixels.sum((1, 2, 3)).numpy()  # (M,)
    cand_ink = ref_ink[candidates]  # (M, k, len(STROKES))
    nearest_ink = np.abs(cand_ink - query_ink[:, None, None]).argmin(2)  # (M, k)
    # Only where the ink says so: a query with far less or more ink than any stroke of the
    # candidate (near-blank pages, sparse noise) is compared with the candidate as drawn.
    ratio = query_ink[:, None] / np.take_along_axis(cand_ink, nearest_ink[..., None], 2)[..., 0]
    plain = STROKES.index(0.0)
    nearest_ink = np.where((ratio > 1 / INK_RATIO) & (ratio < INK_RATIO), nearest_ink, plain)
    strokes = np.asarray(STROKES)[nearest_ink]
    dist = to_candidates(pixels, ref_images, candidates, strokes=strokes)
    best = candidates[np.arange(len(candidates)), dist.argmin(1)]
    return dist.min(1) / ref_scale[best], best
