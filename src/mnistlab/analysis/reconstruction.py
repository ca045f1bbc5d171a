"""Reconstruction errors analysed: their mean per digit, and the worst, best and random images.

The per-image errors themselves come from ``mnistlab.metrics.reconstruction(target, pred,
per_image=True)``; these functions take any name -> (N,) arrays.

    >>> errors = metrics.reconstruction(images, recons, per_image=True)
    >>> per_class(errors, labels)  # one row per digit: {"digit", "n", "mse", ...}
    >>> error_examples(errors["mse"], 10, random_state=0)["highest"]  # the 10 worst images
"""

from __future__ import annotations

import numpy as np


def per_class(values: dict[str, np.ndarray], labels: np.ndarray) -> list[dict[str, float]]:
    """Mean of each per-image value over the images of each digit: one row per digit.

    values : name -> (N,); labels : (N,) ints. Rows: {"digit", "n", name: mean, ...}, by digit.
    """
    labels = np.asarray(labels)
    rows = []
    for d in np.unique(labels):
        sel = labels == d
        row: dict[str, float] = {"digit": int(d), "n": int(sel.sum())}
        row.update({k: float(np.mean(v[sel])) for k, v in values.items()})
        rows.append(row)
    return rows


def error_examples(errors: np.ndarray, n: int, random_state: int) -> dict[str, np.ndarray]:
    """Indices of the n highest, n lowest and n random errors: errors (N,) -> name -> (n,).

    "highest" runs from the worst down, "lowest" from the best up, "random" is sorted.
    """
    order = np.argsort(errors, kind="stable")
    rng = np.random.default_rng(random_state)
    return {
        "highest": order[::-1][:n],
        "lowest": order[:n],
        "random": np.sort(rng.choice(len(errors), size=min(n, len(errors)), replace=False)),
    }
