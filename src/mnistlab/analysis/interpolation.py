"""Paths between two digits, in pixel space and in the codes of an autoencoder and a VAE, and
what a judge classifier reads along them.

Brief 000 asks whether one can "transform a 0 into a 1" more smoothly in latent space than by
cross-fading pixels. ``paths`` makes the four kinds of path between pairs of digits; ``interpolate``
gives example strips with the judge's quality under each image; ``interpolation_stats`` measures
every kind of path over many random pairs of digits of two different classes (``path_stats``
turns one kind's judge outputs into its dip and third-digit share).

    >>> t = np.linspace(0, 1, 7)
    >>> out = paths(x_test[[0]], x_test[[1]], ae, vae, t)  # name -> (1, 7, 28, 28)
    >>> interpolation_stats(x_test, y_test, ae, vae, judge, pairs=200, steps=11)["pixel"]["dip"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnistlab import data as mdata
from mnistlab import metrics, models

# The four kinds of path, in the order ``paths`` returns them.
PIXEL = "pixel"
AE_LATENT = "AE latent"
VAE_LINEAR = "VAE latent (linear)"
VAE_SPHERICAL = "VAE latent (spherical)"
PATHS = (PIXEL, AE_LATENT, VAE_LINEAR, VAE_SPHERICAL)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latents a and b (d,) at times t (T,) -> (T, d).

    Keeps the norm where a and b share it (a Gaussian prior's codes lie near a sphere); falls
    back to the straight line when a and b point the same way.
    """
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(np.dot(a / na, b / nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    so = np.sin(omega)
    return (np.sin((1 - t) * omega) / so)[:, None] * a + (np.sin(t * omega) / so)[:, None] * b


def _linear(za: np.ndarray, zb: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Straight lines between codes za, zb (P, d) at times t (T,) -> (P, T, d)."""
    return (1 - t)[None, :, None] * za[:, None] + t[None, :, None] * zb[:, None]


def _decoded(model: Any, z: np.ndarray) -> np.ndarray:
    """Codes (P, T, d) -> images (P, T, 28, 28) float32 in [0, 1]."""
    p, n_t = z.shape[:2]
    return models.decode(model, z.reshape(p * n_t, -1)).reshape(p, n_t, 28, 28)


def paths(
    xa: np.ndarray, xb: np.ndarray, ae: Any, vae: Any, t: np.ndarray
) -> dict[str, np.ndarray]:
    """The four kinds of path (``PATHS``) from digits xa to digits xb at times t (T,).

    xa, xb : uint8 or float images of shape (P, 28, 28), paired row by row.
    ae, vae : an autoencoder and a VAE with ``encode``/``decode`` (``mnistlab.models``); the VAE's
        paths run between its posterior means, linearly and spherically (``slerp``).
    Returns name -> float32 array of shape (P, T, 28, 28) in [0, 1].
    """
    p = len(xa)
    fa, fb = mdata.to_float(xa).reshape(p, 1, 28, 28), mdata.to_float(xb).reshape(p, 1, 28, 28)
    tt = t[None, :, None, None]
    out = {PIXEL: ((1 - tt) * fa + tt * fb).astype(np.float32)}
    za, zb = models.encode(ae, xa), models.encode(ae, xb)  # (P, d)
    out[AE_LATENT] = _decoded(ae, _linear(za, zb, t))
    va, vb = models.encode(vae, xa), models.encode(vae, xb)
    out[VAE_LINEAR] = _decoded(vae, _linear(va, vb, t))
    sv = np.stack([slerp(a, b, t) for a, b in zip(va, vb, strict=True)]).astype(np.float32)
    out[VAE_SPHERICAL] = _decoded(vae, sv)
    return out


def interpolate(
    x: np.ndarray,
    y: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    ae: Any,
    vae: Any,
    judge: Any,
    steps: int,
) -> list[dict[str, Any]]:
    """Example strips: for each (a, b) in ``pairs``, every kind of path from the first digit a
    to the first digit b of ``x`` (N, 28, 28) with labels ``y`` (N,), at ``steps`` times.

    One row per pair and path: ``pair`` ("0->1"), ``path``, ``t`` (T,), ``images`` (T, 28, 28)
    float32, and the judge's ``quality`` and ``predicted`` class of each image (lists of T).
    """
    t = np.linspace(0.0, 1.0, steps)
    rows = []
    for a_digit, b_digit in pairs:
        ia = int(np.flatnonzero(y == a_digit)[0])
        ib = int(np.flatnonzero(y == b_digit)[0])
        for path, images in paths(x[[ia]], x[[ib]], ae, vae, t).items():
            probs, _ = models.judge_outputs(judge, images[0])
            rows.append(
                {
                    "pair": f"{a_digit}->{b_digit}",
                    "path": path,
                    "t": t.tolist(),
                    "images": np.asarray(images[0], dtype=np.float32),
                    "quality": metrics.quality(probs).tolist(),
                    "predicted": probs.argmax(1).tolist(),
                }
            )
    return rows


def random_pairs(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of at most ``n`` seeded random pairs of items of two different classes
    among labels ``y`` (N,); drawn 4n at a time, so fewer come back only when few classes mix."""
    rng = np.random.default_rng([seed, 17])
    ia = rng.integers(0, len(y), size=4 * n)
    ib = rng.integers(0, len(y), size=4 * n)
    keep = y[ia] != y[ib]
    return ia[keep][:n], ib[keep][:n]


def path_stats(
    quality: np.ndarray, predicted: np.ndarray, ya: np.ndarray, yb: np.ndarray
) -> dict[str, Any]:
    """What the judge reads along one kind of path, over P pairs of T steps each.

    quality, predicted : (P, T), the judge's quality and predicted class of every image;
    ya, yb : (P,), the classes of the two ends.
    Returns ``pairs``; ``end_quality``, the mean quality of the weaker endpoint; ``min_quality``,
    the mean of the lowest quality between the endpoints; ``dip``, the mean of (weaker endpoint -
    lowest in between), how far a path sinks below its own ends; ``third_digit``, the share of
    in-between images read as neither end's class.
    """
    ends = quality[:, [0, -1]].min(1)
    inner = quality[:, 1:-1].min(1)
    between = predicted[:, 1:-1]
    third = (between != ya[:, None]) & (between != yb[:, None])
    return {
        "pairs": len(quality),
        "end_quality": float(ends.mean()),
        "min_quality": float(inner.mean()),
        "dip": float((ends - inner).mean()),
        "third_digit": float(third.mean()),
    }


def interpolation_stats(
    x: np.ndarray,
    y: np.ndarray,
    ae: Any,
    vae: Any,
    judge: Any,
    *,
    pairs: int,
    steps: int,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """The judge along every kind of path (``path_stats``), over ``pairs`` seeded random pairs
    (``random_pairs``) of digits of ``x`` (N, 28, 28) from two different classes of ``y`` (N,),
    at ``steps`` times from 0 to 1. Returns path name -> its statistics."""
    ia, ib = random_pairs(y, pairs, seed)
    t = np.linspace(0.0, 1.0, steps)
    ya, yb = y[ia].astype(np.int64), y[ib].astype(np.int64)
    out = {}
    for path, images in paths(x[ia], x[ib], ae, vae, t).items():
        probs, _ = models.judge_outputs(judge, images.reshape(-1, 28, 28))
        q = metrics.quality(probs).reshape(len(ia), len(t))  # (P, T)
        pred = probs.argmax(1).reshape(len(ia), len(t))
        out[path] = path_stats(q, pred, ya, yb)
    return out
