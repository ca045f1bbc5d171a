"""Reports: one self-contained HTML page per study, JSON/CSV writers, and the browser check.

`Report` builds the page (inline PNG figures, plotly inlined once, no network), `write_json` and
`write_csv` write results atomically, `figures` holds the shared plot helpers, `write_index`
links study reports, and `browser.check(path)` opens a page in headless Chromium.
"""

from mnistlab.report import browser, figures
from mnistlab.report.browser import BrowserCheck
from mnistlab.report.html import Report, write_index
from mnistlab.report.writers import (
    atomic_write_bytes,
    atomic_write_text,
    to_jsonable,
    write_csv,
    write_json,
)

__all__ = [
    "BrowserCheck",
    "Report",
    "atomic_write_bytes",
    "atomic_write_text",
    "browser",
    "figures",
    "to_jsonable",
    "write_csv",
    "write_index",
    "write_json",
]
