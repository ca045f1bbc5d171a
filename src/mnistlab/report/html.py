"""The HTML report builder: one self-contained page that opens offline.

Matplotlib figures and digit grids are inlined as base64 PNG, plotly figures as JSON with
plotly.js inlined once in the page's head, the stylesheet (style.css beside this module) in a
<style> element. Nothing is loaded from the network.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistlab import __version__
from mnistlab.report import figures as _figures
from mnistlab.report.writers import atomic_write_bytes, atomic_write_text, collect_columns

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

__all__ = ["Report", "write_index", "png_bytes", "markdown_lite"]

REPORT_FILENAME = "report.html"
INDEX_FILENAME = "index.html"


@cache
def stylesheet() -> str:
    """The report stylesheet (package data)."""
    return resources.files("mnistlab.report").joinpath("style.css").read_text(encoding="utf-8")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)
_CODE = re.compile(r"`([^`]+)`")


def markdown_lite(text: str) -> str:
    """Escape plain text for HTML, then turn **bold** into <strong> and `code` into <code>."""
    out = escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _slug(title: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return s or "section"


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _close(fig: Figure) -> None:
    # Figures made with pyplot stay registered until closed; ours (Figure()) are not registered.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _array_png(canvas: np.ndarray) -> bytes:
    """Encode a grey image (H, W) float in [0, 1] as PNG, pixel for pixel."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, canvas, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class _Section:
    title: str
    level: int
    anchor: str


def _format_cell(value: Any, float_format: str) -> tuple[str, str]:
    """(escaped text, css class) for one table cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "", "na"
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value), "num"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a", "na"
        if math.isinf(value):
            return ("∞" if value > 0 else "−∞"), "num"
        return escape(float_format.format(value)), "num"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return escape(str(value)), ""


QUICK_BANNER = (
    "**Quick mode.** Its models are under-trained (a few epochs on part of the data) and its "
    "samples few: the numbers and answers here can differ from a full run, and some do. Run "
    "without `--quick` for results to rely on."
)


class Report:
    """A report page built block by block, then written as one self-contained HTML file.

    >>> r = Report("Generation study", "KDE against autoencoders")
    >>> r.section("Samples"); r.text("The **pixel KDE** copies.")
    >>> r.write("runs/x")  # -> runs/x/report.html
    """

    def __init__(
        self,
        title: str,
        subtitle: str = "",
        *,
        generated_at: dt.datetime | None = None,
        footer: str = "",
        banner: str = "",
    ) -> None:
        self.title = title
        self.subtitle = subtitle
        self.banner = banner  # a warning shown above everything, e.g. QUICK_BANNER
        self.generated_at = generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.footer = footer
        self._blocks: list[str] = []
        self._sections: list[_Section] = []
        self._pngs: list[tuple[str, bytes]] = []  # (file stem, PNG) of every static figure
        self._n_plotly = 0

    # ---- structure and text -------------------------------------------------------------

    def section(self, title: str, level: int = 2) -> str:
        """Start a section (h2 by default; 3 or 4 nest under it in the table of contents).

        Returns the section's anchor id.
        """
        if level not in (2, 3, 4):
            raise ValueError(f"section level must be 2, 3 or 4, got {level}")
        anchor = base = _slug(title)
        used = {s.anchor for s in self._sections}
        k = 2
        while anchor in used:
            anchor, k = f"{base}-{k}", k + 1
        self._sections.append(_Section(title, level, anchor))
        self._blocks.append(f'<h{level} id="{anchor}">{escape(title)}</h{level}>')
        return anchor

    def text(self, content: str, *, html: bool = False) -> None:
        """A paragraph (blank lines start a new one).

        Plain text is escaped, with **bold** and `code` as the only markup; `html=True` inserts
        `content` as HTML, unescaped (for trusted, program-made markup only).
        """
        if html:
            self._blocks.append(f"<div class='html-block'>{content}</div>")
            return
        for para in re.split(r"\n\s*\n", content.strip()):
            if para.strip():
                self._blocks.append(f"<p>{markdown_lite(para.strip())}</p>")

    def answer(self, question: str, answer: str) -> None:
        """A question and its answer's first sentence in one line; the rest folded below it."""
        head, _, rest = answer.partition(". ")
        head = head if not rest else head + "."
        summary = f"<strong>{markdown_lite(question)}</strong> {markdown_lite(head)}"
        if rest.strip():
            self._blocks.append(
                f"<details class='answer'><summary>{summary}</summary>"
                f"<p>{markdown_lite(rest.strip())}</p></details>"
            )
        else:
            self._blocks.append(f"<p class='answer'>{summary}</p>")

    def fold(self, summary: str, content: str) -> None:
        """Text folded under a one-line summary (closed until clicked)."""
        paras = "".join(
            f"<p>{markdown_lite(p.strip())}</p>" for p in re.split(r"\n\s*\n", content) if p.strip()
        )
        self._blocks.append(
            f"<details><summary>{markdown_lite(summary)}</summary>{paras}</details>"
        )

    def bullets(self, items: Sequence[str]) -> None:
        """A bulleted list of plain-text items (escaped, with **bold** and `code`)."""
        lis = "".join(f"<li>{markdown_lite(str(item))}</li>" for item in items)
        self._blocks.append(f"<ul class='bullets'>{lis}</ul>")

    # ---- tables ---------------------------------------------------------------------------

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        caption: str = "",
        float_format: str = "{:.3f}",
    ) -> None:
        """A table, one dict per row; `columns` defaults to every key in order of appearance.

        Floats use `float_format`, NaN shows as "n/a", a missing key as an empty cell; every
        cell and header is escaped.
        """
        cols = list(columns) if columns is not None else collect_columns(rows)
        # Headers wrap at underscores: a wide table fits the page instead of scrolling sideways.
        head = "".join(
            f"<th scope='col'>{escape(str(c)).replace('_', '_<wbr>')}</th>" for c in cols
        )
        body = []
        for row in rows:
            cells = []
            for c in cols:
                text, cls = _format_cell(row.get(c), float_format)
                cells.append(f"<td class='{cls}'>{text}</td>" if cls else f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{markdown_lite(caption)}</caption>" if caption else ""
        wide = " class='wide'" if len(cols) > 8 else ""
        self._blocks.append(
            f"<div class='table-wrap'><table{wide}>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )

    # ---- figures --------------------------------------------------------------------------

    def _img_block(self, png: bytes, caption: str, alt: str, *, pixelated: bool = False) -> None:
        stem = f"fig-{len(self._pngs) + 1:02d}"
        label = caption or alt or (self._sections[-1].title if self._sections else "")
        if label:
            stem += "-" + _slug(label)[:40].rstrip("-")
        self._pngs.append((stem, png))
        cls = " class='pixelated'" if pixelated else ""
        alt_text = escape(alt or caption or "figure", quote=True)
        cap = f"<figcaption>{markdown_lite(caption)}</figcaption>" if caption else ""
        self._blocks.append(
            f"<figure><img{cls} src='{_data_uri(png)}' alt=\"{alt_text}\">{cap}</figure>"
        )

    def figure(self, fig: Figure, caption: str = "", alt: str = "", *, dpi: int = 100) -> None:
        """A matplotlib figure as an inline PNG; the figure is closed afterwards.

        A plotly figure given here goes to `plotly` instead.
        """
        if hasattr(fig, "to_plotly_json"):
            self.plotly(fig, caption)  # type: ignore[arg-type]
            return
        try:
            png = png_bytes(fig, dpi=dpi)
        finally:
            _close(fig)
        self._img_block(png, caption, alt)

    def plotly(self, fig: go.Figure, caption: str = "") -> None:
        """An interactive plotly figure; plotly.js is inlined once per page."""
        self._n_plotly += 1
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plotly-{self._n_plotly}",
            config={"displaylogo": False, "responsive": True},
        )
        cap = f"<figcaption>{markdown_lite(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure><div class='plotly-figure'>{div}</div>{cap}</figure>")

    def image_grid(
        self,
        images: np.ndarray,
        ncols: int = 10,
        labels: Sequence[str] | None = None,
        caption: str = "",
        row_labels: Sequence[str] | None = None,
        *,
        scale: int = 2,
    ) -> None:
        """A grid of digits, `ncols` a row.

        images : (N, 28, 28) or (N, 784), uint8 or float in [0, 1]. Without labels the grid is
        one PNG, pixel for pixel and enlarged `scale` times (2-pixel white gaps); with `labels`
        (one per image) or `row_labels` (one per row) it is drawn by `figures.sample_grid`.
        """
        if labels is not None or row_labels is not None:
            fig = _figures.sample_grid(images, ncols, labels=labels, row_labels=row_labels)
            self.figure(fig, caption=caption, alt=caption or "grid of digits")
            return
        canvas = _figures.mosaic(images, ncols)
        if scale > 1:
            canvas = np.kron(canvas, np.ones((scale, scale), dtype=canvas.dtype))
        self._img_block(_array_png(canvas), caption, caption or "grid of digits", pixelated=True)

    # ---- output ---------------------------------------------------------------------------

    def _toc(self) -> str:
        if not self._sections:
            return ""
        out, depth = [], 1
        base = min(s.level for s in self._sections)
        out.append("<nav class='toc'><h2>Contents</h2><ul>")
        for i, s in enumerate(self._sections):
            level = s.level - base + 1
            if i:
                if level > depth:
                    out.append("<ul>" * (level - depth))
                else:
                    out.append("</li>" + "</ul></li>" * (depth - level))
            depth = level
            out.append(f"<li><a href='#{s.anchor}'>{escape(s.title)}</a>")
        out.append("</li>" + "</ul></li>" * (depth - 1) + "</ul></nav>")
        return "".join(out)

    def to_html(self) -> str:
        """The whole page as one string."""
        head_js = ""
        if self._n_plotly:
            head_js = f'<script type="text/javascript">{_plotly_js()}</script>'
        sub = f"<p class='subtitle'>{markdown_lite(self.subtitle)}</p>" if self.subtitle else ""
        if self.banner:
            sub += f"<p class='banner' role='note'>{markdown_lite(self.banner)}</p>"
        when = self.generated_at.isoformat(sep=" ")
        foot = f" · {markdown_lite(self.footer)}" if self.footer else ""
        return (
            "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{escape(self.title)}</title>\n"
            f"<style>\n{stylesheet()}</style>\n{head_js}\n</head>\n<body>\n<main>\n"
            f"<header class='report-header'><h1>{escape(self.title)}</h1>{sub}</header>\n"
            f"{self._toc()}\n"
            + "\n".join(self._blocks)
            + f"\n<footer class='report-footer'>Generated by mnistlab {escape(__version__)}"
            f" on {escape(when)}{foot}</footer>\n</main>\n</body>\n</html>\n"
        )

    def write(self, out_dir: str | os.PathLike[str], *, save_figures: bool = False) -> Path:
        """Write `out_dir/report.html` atomically (creating `out_dir`) and return its path.

        save_figures : also write every static figure as `out_dir/figures/fig-NN-*.png`.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if save_figures:
            for stem, png in self._pngs:
                atomic_write_bytes(out / "figures" / f"{stem}.png", png)
        return atomic_write_text(out / REPORT_FILENAME, self.to_html())


def write_index(
    out_dir: str | os.PathLike[str],
    links: Sequence[tuple[str, str, str]],
    *,
    title: str = "mnistlab studies",
    subtitle: str = "",
) -> Path:
    """Write `out_dir/index.html`: a page linking study reports.

    links : (title, path relative to out_dir, one-line summary) for each report.
    """
    report = Report(title, subtitle)
    items = []
    for link_title, rel, summary in links:
        href = escape(Path(rel).as_posix(), quote=True)
        summ = f"<span class='summary'>{markdown_lite(summary)}</span>" if summary else ""
        items.append(f'<li><a href="{href}">{escape(link_title)}</a>{summ}</li>')
    report.text(f"<ul class='links'>{''.join(items)}</ul>", html=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / INDEX_FILENAME, report.to_html())
