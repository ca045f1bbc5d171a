"""Generic figure helpers shared by the studies: digit grids, strips, scatters, curves.

Static figures are matplotlib `Figure` objects built without pyplot (no global state, no
backend); interactive ones are plotly `go.Figure`. None of them holds study logic: they take
arrays and names, and return a figure for `Report.figure` / `Report.plotly`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure as _MplFigure
from matplotlib.ticker import MaxNLocator

from mnistlab.images import as_images as _as_images

__all__ = [
    "as_images",
    "confusion_matrix_figure",
    "histogram_classes",
    "line_plot",
    "loss_curves",
    "mosaic",
    "panel_curves",
    "pairs_with_neighbours",
    "sample_grid",
    "scatter_2d",
    "scatter_3d",
    "scatter_quality_novelty",
    "strip",
]

SIDE = 28
# Ten distinct colours, one per digit class (matplotlib's tab10, also used for the plotly plots).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def as_images(images: Any) -> np.ndarray:
    """Images for display as float32 (N, 28, 28) in [0, 1]: what ``mnistlab.images.as_images``
    takes, or one (28, 28) image; floats just outside [0, 1] (decoders, inverse PCA) are clipped.
    """
    arr = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if arr.shape == (SIDE, SIDE):
        arr = arr[None]
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(arr, 0.0, 1.0)  # NaN stays NaN and is refused below
    return _as_images(arr, "images")


class Figure(_MplFigure):
    """matplotlib's Figure that shows itself in a notebook, with or without ``%matplotlib``
    (IPython calls ``_repr_png_``); everywhere else it is the plain Figure."""

    def _repr_png_(self) -> bytes:
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self)
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
        return buf.getvalue()


def mosaic(
    images: np.ndarray,
    ncols: int = 10,
    *,
    pad: int = 2,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile images into one float32 array (H, W) in [0, 1], row by row.

    H = nrows * 28 + (nrows + 1) * pad and W = ncols' * 28 + (ncols' + 1) * pad, where
    ncols' = min(ncols, N) and nrows = ceil(N / ncols'); missing cells are filled with pad_value.
    """
    imgs = as_images(images)
    n = len(imgs)
    if n == 0:
        raise ValueError("no images to tile")
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    h = nrows * SIDE + (nrows + 1) * pad
    w = ncols * SIDE + (ncols + 1) * pad
    canvas = np.full((h, w), pad_value, dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        y, x = pad + r * (SIDE + pad), pad + c * (SIDE + pad)
        canvas[y : y + SIDE, x : x + SIDE] = img
    return canvas


def _label_margin(labels: Sequence[str]) -> int:
    """Room, in canvas pixels, for row labels left of a grid (about 4 pixels a character)."""
    return 10 + 4 * max((len(str(x)) for x in labels), default=0)


def sample_grid(
    images: np.ndarray,
    ncols: int = 10,
    title: str = "",
    *,
    labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    cell_inches: float = 0.6,
) -> Figure:
    """A grid of digits, optionally with a label under each image and a label left of each row.

    images : (N, 28, 28) or (N, 784), uint8 or float in [0, 1]; filled row by row, `ncols` a row.
    """
    imgs = as_images(images)
    n = len(imgs)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    pad = 2
    label_gap = 12 if labels is not None else 0  # pixels of room under each row for the labels
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"{len(row_labels)} row labels for {nrows} rows")
    cell_h = SIDE + pad + label_gap
    h = nrows * cell_h + pad
    w = ncols * (SIDE + pad) + pad
    canvas = np.ones((h, w), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        y, x = pad + r * cell_h, pad + c * (SIDE + pad)
        canvas[y : y + SIDE, x : x + SIDE] = img
    left = _label_margin(row_labels) if row_labels is not None else 0
    top = 16 if title else 0
    px = cell_inches / (SIDE + pad)  # inches per canvas pixel
    fig = Figure(figsize=((w + left) * px, (h + top) * px), dpi=100)
    ax = fig.add_axes((left / (w + left), 0, w / (w + left), h / (h + top)))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    fontsize = max(6.0, min(10.0, 14 * cell_inches))
    if labels is not None:
        for i, label in enumerate(labels):
            r, c = divmod(i, ncols)
            x = pad + c * (SIDE + pad) + SIDE / 2
            y = pad + r * cell_h + SIDE + label_gap / 2
            ax.text(x, y, str(label), ha="center", va="center", fontsize=fontsize)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            y = pad + r * cell_h + SIDE / 2
            ax.text(-4, y, str(label), ha="right", va="center", fontsize=fontsize)
    if title:
        fig.suptitle(title, y=1.0, va="top", fontsize=fontsize + 1)
    return fig


def pairs_with_neighbours(
    samples: np.ndarray,
    neighbours: np.ndarray,
    *,
    values: Sequence[float] | None = None,
    value_format: str = "{:.2f}",
    ncols: int = 5,
    title: str = "",
    cell_inches: float = 0.6,
) -> Figure:
    """Each generated digit beside its nearest training digit, `ncols` pairs a row.

    samples, neighbours : (N, 28, 28) or (N, 784); neighbours[i] is the nearest training image
        of samples[i]. values : optional number printed under each pair (a distance, a novelty).
    """
    s, nb = as_images(samples), as_images(neighbours)
    if len(s) != len(nb):
        raise ValueError(f"{len(s)} samples but {len(nb)} neighbours")
    if values is not None and len(values) != len(s):
        raise ValueError(f"{len(values)} values for {len(s)} pairs")
    n = len(s)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    pad, gap, label_gap = 2, 10, 12  # inside a pair, between pairs, under each row
    pair_w = 2 * SIDE + pad
    cell_h = SIDE + label_gap
    w = ncols * pair_w + (ncols - 1) * gap + 2 * pad
    h = nrows * cell_h + pad
    canvas = np.ones((h, w), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * cell_h, pad + c * (pair_w + gap)
        canvas[y : y + SIDE, x : x + SIDE] = s[i]
        canvas[y : y + SIDE, x + SIDE + pad : x + pair_w] = nb[i]
    top = 16 if title else 0
    px = cell_inches / (SIDE + pad)
    fig = Figure(figsize=(w * px, (h + top) * px), dpi=100)
    ax = fig.add_axes((0, 0, 1, h / (h + top)))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    fontsize = max(6.0, min(9.0, 13 * cell_inches))
    for i in range(n):
        r, c = divmod(i, ncols)
        x = pad + c * (pair_w + gap)
        y = pad + r * cell_h + SIDE + label_gap / 2
        text = "gen | train" if values is None else value_format.format(values[i])
        ax.text(x + pair_w / 2, y, text, ha="center", va="center", fontsize=fontsize)
    if title:
        fig.suptitle(title, y=1.0, va="top", fontsize=fontsize + 1)
    return fig


def strip(
    images_rows: Mapping[str, np.ndarray],
    values_rows: Mapping[str, Sequence[float]] | None = None,
    *,
    value_format: str = "{:.2f}",
    title: str = "",
    cell_inches: float = 0.6,
) -> Figure:
    """Image strips, one row per name (an interpolation path), with an optional value under
    each image (the judge's quality along the path).

    images_rows : name -> (K, 28, 28) or (K, 784); rows may differ in length.
    values_rows : name -> K numbers, for any subset of the rows.
    """
    if not images_rows:
        raise ValueError("no rows to draw")
    rows = {name: as_images(imgs) for name, imgs in images_rows.items()}
    values_rows = values_rows or {}
    for name, vals in values_rows.items():
        if name in rows and len(vals) != len(rows[name]):
            raise ValueError(f"row {name!r}: {len(vals)} values for {len(rows[name])} images")
    ncols = max(len(v) for v in rows.values())
    pad = 2
    label_gap = 12 if values_rows else 0
    cell_h = SIDE + pad + label_gap
    h = len(rows) * cell_h + pad
    w = ncols * (SIDE + pad) + pad
    canvas = np.ones((h, w), dtype=np.float32)
    for r, imgs in enumerate(rows.values()):
        for c, img in enumerate(imgs):
            y, x = pad + r * cell_h, pad + c * (SIDE + pad)
            canvas[y : y + SIDE, x : x + SIDE] = img
    left = _label_margin(list(rows))
    top = 16 if title else 0
    px = cell_inches / (SIDE + pad)
    fig = Figure(figsize=((w + left) * px, (h + top) * px), dpi=100)
    ax = fig.add_axes((left / (w + left), 0, w / (w + left), h / (h + top)))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    fontsize = max(6.0, min(9.0, 13 * cell_inches))
    for r, name in enumerate(rows):
        ax.text(-4, pad + r * cell_h + SIDE / 2, name, ha="right", va="center", fontsize=fontsize)
        for c, v in enumerate(values_rows.get(name, ())):
            x = pad + c * (SIDE + pad) + SIDE / 2
            y = pad + r * cell_h + SIDE + label_gap / 2 + 1
            ax.text(x, y, value_format.format(v), ha="center", va="center", fontsize=fontsize)
    if title:
        fig.suptitle(title, y=1.0, va="top", fontsize=fontsize + 1)
    return fig


def confusion_matrix_figure(
    cm: np.ndarray,
    labels: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    title: str = "",
) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), each cell annotated.

    cm : (K, K) counts. normalize : show each row as shares of its true class.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {cm.shape}")
    k = cm.shape[0]
    labels = [str(x) for x in (labels if labels is not None else range(k))]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels for a {k}x{k} matrix")
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    size = max(3.5, 0.45 * k + 1.5)
    fig = Figure(figsize=(size + 0.8, size), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    top = shown.max() if shown.size else 1.0
    fontsize = 8 if k <= 12 else 6
    for i in range(k):
        for j in range(k):
            v = shown[i, j]
            text = f"{v:.2f}" if normalize else f"{int(round(v))}"
            colour = "white" if top > 0 and v > 0.6 * top else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=colour)
    return fig


def scatter_2d(
    points: np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    point_size: float = 8.0,
) -> Figure:
    """A 2-D scatter coloured by label (one colour and legend entry per class).

    points : (N, 2). labels : N class labels (ints or strings), or None for one colour.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {pts.shape}")
    fig = Figure(figsize=(6.0, 5.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=point_size, color=PALETTE[0], linewidths=0)
    else:
        lab = np.asarray(labels)
        if len(lab) != len(pts):
            raise ValueError(f"{len(lab)} labels for {len(pts)} points")
        for i, cls in enumerate(np.unique(lab)):
            sel = lab == cls
            ax.scatter(
                pts[sel, 0],
                pts[sel, 1],
                s=point_size,
                color=PALETTE[i % len(PALETTE)],
                label=str(cls),
                linewidths=0,
                alpha=0.8,
            )
        ax.legend(markerscale=12 / max(point_size, 1), fontsize=8, loc="best", frameon=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def scatter_3d(
    points: np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    *,
    title: str = "",
    axis_titles: tuple[str, str, str] = ("x", "y", "z"),
    point_size: float = 2.5,
) -> go.Figure:
    """An interactive 3-D scatter (plotly) coloured by label, one trace per class.

    points : (N, 3). labels : N class labels, or None for one colour.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"expected points of shape (N, 3), got {pts.shape}")
    fig = go.Figure()
    lab = np.zeros(len(pts), dtype=int) if labels is None else np.asarray(labels)
    if len(lab) != len(pts):
        raise ValueError(f"{len(lab)} labels for {len(pts)} points")
    for i, cls in enumerate(np.unique(lab)):
        sel = lab == cls
        fig.add_trace(
            go.Scatter3d(
                x=pts[sel, 0],
                y=pts[sel, 1],
                z=pts[sel, 2],
                mode="markers",
                name=str(cls),
                marker={"size": point_size, "color": PALETTE[i % len(PALETTE)], "opacity": 0.8},
            )
        )
    fig.update_layout(
        title=title or None,
        showlegend=labels is not None,
        height=600,
        margin={"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
        scene={
            "xaxis_title": axis_titles[0],
            "yaxis_title": axis_titles[1],
            "zaxis_title": axis_titles[2],
        },
        legend={"itemsizing": "constant"},
    )
    return fig


def histogram_classes(
    counts: Sequence[float] | np.ndarray | Mapping[Any, float],
    labels: Sequence[str] | None = None,
    *,
    title: str = "",
    ylabel: str = "count",
    highlight: Any = None,
) -> Figure:
    """A bar chart of counts per class (the judge's predicted classes of a set of samples).

    counts : K numbers (class i at position i) or a mapping class -> count.
    highlight : a class to draw in a stronger colour (the intended class).
    """
    if isinstance(counts, Mapping):
        names = [str(k) for k in counts]
        vals = np.asarray(list(counts.values()), dtype=np.float64)
    else:
        vals = np.asarray(counts, dtype=np.float64).ravel()
        names = [str(x) for x in (labels if labels is not None else range(len(vals)))]
    if len(names) != len(vals):
        raise ValueError(f"{len(names)} labels for {len(vals)} counts")
    colours = [
        PALETTE[3] if highlight is not None and n == str(highlight) else PALETTE[0] for n in names
    ]
    fig = Figure(figsize=(max(4.0, 0.45 * len(vals) + 1.5), 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(vals)), vals, color=colours)
    ax.set_xticks(range(len(vals)), names)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def loss_curves(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Sequence[str] | None = None,
    *,
    title: str = "",
    log_y: bool = False,
) -> Figure:
    """Training curves, one colour per run; train keys solid, validation keys dashed.

    histories : run name -> one dict per epoch (as `training.fit` logs them), with an optional
        "epoch" key for the x axis. keys : the columns to draw; default every numeric key with
        "loss" in its name.
    """
    fig = Figure(figsize=(6.5, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for i, (name, history) in enumerate(histories.items()):
        if not history:
            continue
        colour = PALETTE[i % len(PALETTE)]
        run_keys = keys or [
            k
            for k in history[0]
            if "loss" in k and isinstance(history[0][k], int | float | np.number)
        ]
        xs = [float(h.get("epoch", j + 1)) for j, h in enumerate(history)]
        for key in run_keys:
            ys = [float(h[key]) if h.get(key) is not None else np.nan for h in history]
            style = "--" if key.startswith("val") or "val_" in key else "-"
            ax.plot(xs, ys, style, color=colour, marker="o", markersize=3, label=f"{name}: {key}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log_y:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def panel_curves(
    panels: Mapping[str, tuple[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]],
    *,
    ylabel: str = "",
    hline: tuple[float, str] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Small multiples, one panel per entry: panel title -> (x label, series name -> (x values,
    y values)); the series keep one colour each across panels and share one legend. hline:
    (y, label) drawn as a dotted line in every panel (a target)."""
    if not panels:
        raise ValueError("panel_curves needs at least one panel")
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.3 * ncols, 2.7 * nrows + 0.4), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    colours: dict[str, str] = {}
    for ax, (title, (xlabel, series)) in zip(axes.flat, panels.items(), strict=False):
        for name, (xs, ys) in series.items():
            if len(xs) != len(ys):
                raise ValueError(f"{title!r}, {name!r}: {len(xs)} x values but {len(ys)} y values")
            colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
            ax.plot(xs, ys, "-o", color=colour, markersize=3, label=name)
        if hline is not None:
            ax.axhline(hline[0], color="#555555", linestyle=":", linewidth=1, label=hline[1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    legend: dict[str, Any] = {}  # every series once, whichever panel drew it
    for ax in axes.flat[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="outside lower center",
        ncols=len(legend),
        fontsize=8,
    )
    return fig


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    log_x: bool = False,
    log_y: bool = False,
    hover: Mapping[str, Sequence[str]] | None = None,
) -> go.Figure:
    """An interactive line plot (plotly): series name -> (x values, y values).

    hover : optional name -> one text per point, shown on hover.
    """
    fig = go.Figure()
    for i, (name, (xs, ys)) in enumerate(series.items()):
        if len(xs) != len(ys):
            raise ValueError(f"series {name!r}: {len(xs)} x values but {len(ys)} y values")
        text = list(hover[name]) if hover and name in hover else None
        fig.add_trace(
            go.Scatter(
                x=[_finite(v) for v in xs],
                y=[_finite(v) for v in ys],
                mode="lines+markers",
                name=name,
                text=text,
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis_title=xlabel,
        yaxis_title=ylabel,
        template="plotly_white",
        height=450,
        margin={"t": 50 if title else 20},
    )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def scatter_quality_novelty(
    curves: Mapping[str, Sequence[tuple[float, float, str]]],
    references: Mapping[str, tuple[float, float]] | None = None,
    *,
    title: str = "Quality against novelty",
) -> go.Figure:
    """Quality (y) against novelty (x): one curve per generator across its settings, with the
    real-data reference points as stars.

    curves : generator -> [(quality, novelty, setting label), ...] in sweep order.
    references : name -> (quality, novelty), e.g. "test vs train".
    """
    fig = go.Figure()
    for i, (name, pts) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=[_finite(p[1]) for p in pts],
                y=[_finite(p[0]) for p in pts],
                text=[str(p[2]) for p in pts],
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{text}<br>novelty %{x:.3f}<br>quality %{y:.3f}",
            )
        )
    for j, (name, (q, nov)) in enumerate((references or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=[_finite(nov)],
                y=[_finite(q)],
                mode="markers+text",
                name=name,
                text=[name],
                textposition="top center",
                marker={"symbol": "star", "size": 14, "color": "black", "opacity": 1 - 0.2 * j},
                hovertemplate=name + "<br>novelty %{x:.3f}<br>quality %{y:.3f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis_title="novelty (0 = copy of a training digit)",
        yaxis_title="quality (judge's confidence)",
        template="plotly_white",
        height=500,
        margin={"t": 50 if title else 20},
    )
    return fig


def _finite(v: Any) -> float | None:
    """Plotly draws None as a gap; NaN would be serialised as an invalid JSON token."""
    f = float(v)
    return f if math.isfinite(f) else None
