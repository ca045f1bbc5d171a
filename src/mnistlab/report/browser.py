"""Open a report in headless Chromium (Debian's package, driven by Playwright) and check it.

The page must open offline: every request that is not file: or data: is blocked and counted as
a failure. The check then waits until each plotly figure has drawn its SVG and counts the images
that decoded. Playwright is a development dependency, imported only when `check` runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.errors import MnistlabError

__all__ = ["BrowserCheck", "BrowserUnavailable", "check", "find_chromium"]

DEFAULT_CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_COUNT_JS = """() => {
  const imgs = Array.from(document.images);
  const divs = Array.from(document.querySelectorAll('.plotly-graph-div'));
  return {
    n_images: imgs.length,
    n_images_rendered: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    n_plotly: divs.length,
    n_plotly_rendered: divs.filter(d => d.querySelector('.main-svg') !== null).length,
  };
}"""

_ALL_PLOTLY_DRAWN_JS = """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
  .every(d => d.querySelector('.main-svg') !== null)"""


class BrowserUnavailable(MnistlabError):
    """Chromium or Playwright is missing, so a report cannot be checked in a browser."""


@dataclass
class BrowserCheck:
    """What headless Chromium saw when it opened a report."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    n_images: int = 0
    n_images_rendered: int = 0
    n_plotly: int = 0
    n_plotly_rendered: int = 0
    failed_requests: list[str] = field(default_factory=list)

    @property
    def figures(self) -> int:
        """Every figure on the page: images plus plotly figures."""
        return self.n_images + self.n_plotly

    @property
    def rendered(self) -> int:
        """The figures that rendered: decoded images plus drawn plotly figures."""
        return self.n_images_rendered + self.n_plotly_rendered

    @property
    def problems(self) -> list[str]:
        """One line per problem found; empty when the page is fine."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"page error: {m}" for m in self.page_errors]
        out += [f"blocked or failed request: {u}" for u in self.failed_requests]
        if self.n_images_rendered < self.n_images:
            out.append(f"{self.n_images - self.n_images_rendered} of {self.n_images} images broken")
        if self.n_plotly_rendered < self.n_plotly:
            out.append(
                f"{self.n_plotly - self.n_plotly_rendered} of {self.n_plotly} plotly figures "
                "not drawn"
            )
        return out

    @property
    def ok(self) -> bool:
        """True when there is no error, no network request, and every figure rendered."""
        return not self.problems


def find_chromium() -> str:
    """Path of the Chromium executable: $MNISTLAB_CHROMIUM if set, else /usr/bin/chromium or
    chromium on PATH. Raises BrowserUnavailable when there is none."""
    override = os.environ.get("MNISTLAB_CHROMIUM")
    candidates = [override] if override else [DEFAULT_CHROMIUM, shutil.which("chromium")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    where = f"MNISTLAB_CHROMIUM={override} is not an executable" if override else "not found"
    raise BrowserUnavailable(
        f"Chromium {where}: install Debian's chromium package (apt-get install chromium) "
        "or set MNISTLAB_CHROMIUM to its path"
    )


def check(path: str | os.PathLike[str], *, timeout_s: float = 60.0) -> BrowserCheck:
    """Open `path` (an HTML file) in headless Chromium and report what went wrong, if anything.

    Waits for the page's load event and for every plotly figure to draw (up to `timeout_s`).
    Raises BrowserUnavailable when Chromium or Playwright is missing, FileNotFoundError when
    `path` does not exist.
    """
    page_path = Path(path).resolve()
    if not page_path.is_file():
        raise FileNotFoundError(f"no report at {page_path}")
    executable = find_chromium()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable(
            "the playwright package is missing: pip install 'mnistlab[dev]'"
        ) from exc

    result = BrowserCheck()
    timeout_ms = timeout_s * 1000

    def on_route(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            result.failed_requests.append(url)
            route.abort("blockedbyclient")

    def on_request_failed(request) -> None:
        if request.url not in result.failed_requests:
            result.failed_requests.append(request.url)

    def on_console(msg) -> None:
        if msg.type == "error":
            result.console_errors.append(msg.text)

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, headless=True
            )
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BrowserUnavailable(f"could not start Chromium at {executable}: {first}") from exc
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda err: result.page_errors.append(str(err)))
            page.on("requestfailed", on_request_failed)
            context.route("**/*", on_route)
            page.goto(page_path.as_uri(), wait_until="load", timeout=timeout_ms)
            # A figure that never draws is counted below, not raised.
            with contextlib.suppress(PlaywrightError):
                page.wait_for_function(_ALL_PLOTLY_DRAWN_JS, timeout=timeout_ms)
            counts = page.evaluate(_COUNT_JS)
        finally:
            browser.close()
    for key, value in counts.items():
        setattr(result, key, int(value))
    return result
