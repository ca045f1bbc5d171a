"""The report machinery: HTML builder, figure helpers, JSON/CSV writers, and the browser check."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from mnistlab import __version__
from mnistlab.report import (
    Report,
    atomic_write_bytes,
    browser,
    write_csv,
    write_index,
    write_json,
)
from mnistlab.report import figures as F

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)


def _pngs(page: str) -> list[np.ndarray]:
    """Decode every inline PNG of a page."""
    found = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    return [imread(io.BytesIO(base64.b64decode(b)), format="png") for b in found]


def _full_report(small) -> tuple[Report, int]:
    """A report with every kind of block, built from real digits; returns (report, n_images)."""
    x, y = small.x_train, small.y_train
    r = Report("Every element", "a **test** page", generated_at=WHEN, footer="seed 0")
    r.section("Digits")
    r.text("Plain text with **bold** and `code`.\n\nA second paragraph.")
    r.image_grid(x[:30], ncols=10, caption="thirty training digits")
    r.image_grid(x[:20], ncols=10, labels=[str(v) for v in y[:20]], row_labels=["a", "b"])
    r.section("Novelty", level=3)
    r.figure(F.pairs_with_neighbours(x[:10], x[10:20], values=np.linspace(0, 1, 10)))
    r.figure(F.strip({"pixel": x[:8], "latent": x[8:16]}, {"pixel": np.linspace(0, 1, 8)}))
    r.figure(F.sample_grid(x[:12], ncols=6, title="grid"))
    r.section("Classes")
    cm = np.bincount(y[:200] * 10 + small.y_test[:200], minlength=100).reshape(10, 10)
    r.figure(F.confusion_matrix_figure(cm, [str(i) for i in range(10)]), caption="confusion")
    r.figure(F.scatter_2d(x[:300].reshape(300, -1)[:, 300:302] / 255.0, y[:300]))
    r.figure(F.histogram_classes(np.bincount(y, minlength=10), highlight=2))
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e} for e in range(1, 5)]
    r.figure(F.loss_curves({"ae": history, "vae": history[:2]}))
    r.section("Interactive")
    r.plotly(F.scatter_3d(x[:300].reshape(300, -1)[:, 400:403] / 255.0, y[:300]), caption="3-D")
    r.plotly(
        F.scatter_quality_novelty(
            {"pixel KDE": [(0.9, 0.05, "h=0.1"), (0.6, 0.4, "h=1")]},
            {"test vs train": (0.95, 0.5)},
        )
    )
    r.plotly(F.line_plot({"quality": ([0, 0.5, 1], [0.9, float("nan"), 0.8])}, title="path"))
    r.section("Tables")
    r.table([{"name": "pixel KDE", "quality": np.float32(0.5), "n": np.int64(10_000)}])
    return r, 9


@pytest.mark.browser
def test_full_report_renders_offline_in_chromium(small, tmp_path):
    report, n_images = _full_report(small)
    path = report.write(tmp_path / "out", save_figures=True)
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")

    # No CDN: no script or stylesheet comes from the network, plotly.js is inlined exactly once.
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*['\"]?(https?:)?//", page, re.I)
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    assert page.count(js[:300]) == 1

    result = browser.check(path)
    assert result.console_errors == []
    assert result.page_errors == []
    assert result.failed_requests == []
    assert (result.n_images, result.n_images_rendered) == (n_images, n_images)
    assert (result.n_plotly, result.n_plotly_rendered) == (3, 3)
    assert result.figures == result.rendered == n_images + 3
    assert result.ok, result.problems
    # Every static figure was also saved beside the report.
    assert len(list((tmp_path / "out" / "figures").glob("fig-*.png"))) == n_images


@pytest.mark.browser
def test_browser_check_catches_network_errors_and_broken_figures(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<script src='https://cdn.example.invalid/plotly.min.js'></script></head><body>"
        "<img src='missing.png' alt='x'>"
        "<div class='plotly-graph-div'></div>"
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    result = browser.check(page, timeout_s=2)
    assert any("cdn.example.invalid" in u for u in result.failed_requests)
    assert any("undefinedFunction" in e for e in result.page_errors)
    assert (result.n_images, result.n_images_rendered) == (1, 0)
    assert (result.n_plotly, result.n_plotly_rendered) == (1, 0)
    assert not result.ok
    assert len(result.problems) >= 4


def test_browser_check_without_chromium_is_a_clear_error(tmp_path, monkeypatch):
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    monkeypatch.setenv("MNISTLAB_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(browser.BrowserUnavailable, match="Chromium"):
        browser.check(page)
    with pytest.raises(FileNotFoundError):
        browser.check(tmp_path / "absent.html")


def test_text_titles_and_tables_are_escaped():
    r = Report("A <title> & more", generated_at=WHEN)
    r.section("<b>Section</b>")
    r.text("<script>alert(1)</script> & **bold** `x<y`")
    r.table([{"<col>": "<td>", "v": float("nan"), "w": None}], caption="<cap>")
    page = r.to_html()
    body = page.split("<body>", 1)[1]
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <strong>bold</strong>" in body
    assert "<code>x&lt;y</code>" in body
    assert "<h1>A &lt;title&gt; &amp; more</h1>" in body
    assert "&lt;b&gt;Section&lt;/b&gt;" in body
    assert "<th scope='col'>&lt;col&gt;</th>" in body
    assert "<td>&lt;td&gt;</td>" in body
    assert "n/a" in body
    assert "&lt;cap&gt;" in body
    # Trusted HTML goes in unescaped only when asked for.
    r.text("<em>ok</em>", html=True)
    assert "<em>ok</em>" in r.to_html()


def test_table_formats_numbers_and_keeps_column_order():
    r = Report("t", generated_at=WHEN)
    rows = [{"b": np.float64(0.123456), "a": 3}, {"a": np.int64(12345), "c": True}]
    r.table(rows, float_format="{:.2f}")
    r.table(rows, columns=["c", "a"])
    page = r.to_html()
    heads = re.findall(r"<th scope='col'>(\w+)</th>", page)
    assert heads == ["b", "a", "c", "c", "a"]
    assert "<td class='num'>0.12</td>" in page
    assert "<td class='num'>12,345</td>" in page
    assert "<td>yes</td>" in page


def test_toc_lists_sections_with_unique_anchors_and_footer():
    r = Report("t", generated_at=WHEN, footer="seed 7")
    a = r.section("Results")
    b = r.section("Results")
    c = r.section("Detail", level=3)
    assert (a, b, c) == ("results", "results-2", "detail")
    page = r.to_html()
    toc = page.split("<nav class='toc'>", 1)[1].split("</nav>", 1)[0]
    assert re.findall(r"href='#([\w-]+)'", toc) == ["results", "results-2", "detail"]
    assert toc.count("<ul>") == 2  # the level-3 section nests under the second
    assert f"mnistlab {__version__}" in page
    assert "2024-05-01 12:30:00+00:00" in page
    assert "seed 7" in page
    with pytest.raises(ValueError):
        r.section("bad", level=1)


def test_image_grid_is_the_digits_pixel_for_pixel(small):
    digits = small.x_train[:23]  # uint8 (23, 28, 28): 3 rows of 10, the last one partly empty
    r = Report("grid", generated_at=WHEN)
    r.image_grid(digits, ncols=10, scale=2)
    (img,) = _pngs(r.to_html())
    pad = 2
    assert img.shape[:2] == (2 * (3 * 28 + 4 * pad), 2 * (10 * 28 + 11 * pad))
    grey = img[..., 0]
    # Tile (row 1, column 2) is digit 12, enlarged twice; 8-bit PNG rounding allows 1/255.
    y0, x0 = 2 * (pad + 1 * 30), 2 * (pad + 2 * 30)
    tile = grey[y0 : y0 + 56 : 2, x0 : x0 + 56 : 2]
    np.testing.assert_allclose(tile, digits[12] / 255.0, atol=1.5 / 255)
    # Missing cells in the last row are background, and float input gives the same picture.
    assert np.all(grey[-2 * 30 :, -2 * 30 :] == 1.0)
    r2 = Report("grid", generated_at=WHEN)
    r2.image_grid(digits.astype(np.float32) / 255.0, ncols=10, scale=2)
    np.testing.assert_allclose(_pngs(r2.to_html())[0], img, atol=1.5 / 255)


def test_figure_closes_pyplot_figures():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    r = Report("f", generated_at=WHEN)
    r.figure(fig, caption="line", alt="a falling line")
    assert fig.number not in plt.get_fignums()
    page = r.to_html()
    assert 'alt="a falling line"' in page
    assert "<figcaption>line</figcaption>" in page
    assert len(_pngs(page)) == 1
    r.figure(F.line_plot({"a": ([0, 1], [1, 0])}))  # a plotly figure is routed to .plotly
    assert 'class="plotly-graph-div"' in r.to_html()


def test_figure_helpers_check_their_inputs(small):
    x = small.x_train[:6]
    with pytest.raises(ValueError, match="shape"):
        F.as_images(np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        F.as_images(np.full((1, 784), np.nan, np.float32))
    with pytest.raises(ValueError, match="labels"):
        F.sample_grid(x, labels=["1", "2"])
    with pytest.raises(ValueError, match="neighbours"):
        F.pairs_with_neighbours(x, x[:5])
    with pytest.raises(ValueError, match="values"):
        F.strip({"a": x}, {"a": [0.1]})
    assert F.as_images(x.reshape(6, 784)).shape == (6, 28, 28)
    assert F.mosaic(x, ncols=4).shape == (2 * 28 + 3 * 2, 4 * 28 + 5 * 2)
    fig = F.scatter_quality_novelty({"g": [(0.5, float("nan"), "a")]}, {"real": (0.9, 0.5)})
    assert fig.data[0].x == (None,)
    assert len(F.scatter_3d(np.zeros((10, 3)), [0] * 5 + [1] * 5).data) == 2


def test_panel_curves_draw_one_panel_per_entry_with_one_shared_legend():
    series = {"copies": ([1, 2, 3], [1.0, 0.6, 0.1]), "fresh": ([1, 2, 3], [0.0, 0.0, 0.01])}
    panels = {f"change {i}": ("px", series) for i in range(4)}
    fig = F.panel_curves(panels, ylabel="rate", hline=(0.9, "target"), ylim=(0, 1))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == list(panels)  # 4 of a 2 x 3 grid, 2 hidden
    assert len(fig.axes) == 6 and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["copies", "fresh", "target"]
    assert list(shown[0].lines[0].get_ydata()) == [1.0, 0.6, 0.1]
    with pytest.raises(ValueError, match="2 x values but 3 y values"):
        F.panel_curves({"a": ("px", {"s": ([1, 2], [1, 2, 3])})})
    with pytest.raises(ValueError, match="at least one panel"):
        F.panel_curves({})


@dataclass(frozen=True)
class _Config:
    bandwidth: float
    path: Path


def test_write_json_round_trip_with_numpy_and_nan(tmp_path):
    obj = {
        "n": np.int64(7),
        "q": np.float32(0.5),
        "nan": float("nan"),
        "inf": np.float64(np.inf),
        "arr": np.array([[1.0, np.nan], [3.0, 4.0]]),
        "flags": np.array([True, False]),
        "path": Path("/tmp/x"),
        "config": _Config(0.25, Path("a/b")),
        "tuple": (1, np.int32(2)),
        3: "int key",
    }
    path = write_json(tmp_path / "sub" / "metrics.json", obj)
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back == {
        "n": 7,
        "q": 0.5,
        "nan": None,
        "inf": None,
        "arr": [[1.0, None], [3.0, 4.0]],
        "flags": [True, False],
        "path": "/tmp/x",
        "config": {"bandwidth": 0.25, "path": "a/b"},
        "tuple": [1, 2],
        "3": "int key",
    }
    assert "NaN" not in path.read_text(encoding="utf-8")
    with pytest.raises(TypeError, match="object"):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_write_csv_round_trip(tmp_path):
    rows = [{"name": "kde", "q": np.float64(1 / 3)}, {"name": "ae", "nan": float("nan"), "n": 5}]
    path = write_csv(tmp_path / "t.csv", rows)
    with path.open(newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0]) == ["name", "q", "nan", "n"]
    assert math.isclose(float(back[0]["q"]), 1 / 3, rel_tol=1e-15)
    assert back[1] == {"name": "ae", "q": "", "nan": "", "n": "5"}


def test_atomic_writes_leave_no_temporary_files(tmp_path, small):
    out = tmp_path / "run"
    write_json(out / "m.json", {"a": 1})
    write_csv(out / "t.csv", [{"a": 1}])
    r = Report("r", generated_at=WHEN)
    r.image_grid(small.x_train[:4], ncols=4)
    r.write(out)
    r.write(out)  # overwriting is atomic too
    write_index(out, [("r", "report.html", "")])
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert names == [
        "index.html",
        "m.json",
        "report.html",
        "t.csv",
    ]
    # A write that fails halfway keeps the old file and removes its temporary file.
    target = out / "m.json"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "m.json", "report.html", "t.csv"]


def test_index_links_every_report(tmp_path):
    links = [
        ("Generation <study>", "generation/report.html", "KDE **copies**"),
        ("Latent atlas", "latent/report.html", ""),
    ]
    path = write_index(tmp_path, links, title="All studies")
    assert path == tmp_path / "index.html"
    page = path.read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]+)"', page) == ["generation/report.html", "latent/report.html"]
    assert "Generation &lt;study&gt;" in page
    assert "KDE <strong>copies</strong>" in page
    assert "<title>All studies</title>" in page


def test_answers_fold_their_detail_and_wide_tables_wrap():
    from mnistlab.report.html import Report

    rep = Report("t")
    rep.answer("Does the KDE copy?", "Yes: at small bandwidths. The details: h=0.01 gives 99%.")
    rep.answer("Short?", "Yes")
    rep.table([{f"column_{i}": 1.0 for i in range(10)}])
    html = rep.to_html()
    assert (
        "<details class='answer'><summary><strong>Does the KDE copy?</strong> Yes: at small" in html
    )
    assert "The details: h=0.01 gives 99%.</p></details>" in html
    assert "<p class='answer'><strong>Short?</strong> Yes</p>" in html
    assert "<table class='wide'>" in html and "column_<wbr>9" in html
