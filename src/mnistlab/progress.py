"""Progress that does not litter: one helper for every bar mnistlab shows.

In a terminal, bars fit its width (``dynamic_ncols``) and inner bars (a chunk loop inside a
stage, an epoch inside a training) leave nothing behind when they end. In a notebook with
ipywidgets the bars are widgets (``tqdm.auto``); in a notebook without them, in a log file or a
pipe, there are no bars at all: each outer stage writes one line when it starts. ``enabled=False``
(the library's ``progress=False``, the CLI's ``--no-progress``) silences everything.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm as _text_tqdm

__all__ = ["bar", "log", "mode"]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def mode() -> str:
    """``"widget"`` (a notebook with ipywidgets), ``"tty"`` (stderr is a terminal) or
    ``"lines"`` (anything else: one line per stage, no bars)."""
    if _in_notebook():
        return "widget" if _has_widgets() else "lines"
    return "tty" if sys.stderr.isatty() else "lines"


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    inner: bool = False,
    **kwargs: Any,
) -> Any:
    """A tqdm bar (or a silent stand-in with the same methods) for a loop of ``total`` steps.

    inner : a loop inside a stage; it leaves no trace when it ends and writes no line.
    """
    how = mode() if enabled else "off"
    if how == "lines" and not inner and desc:
        print(f"{desc} ...", file=sys.stderr, flush=True)
    show = how in ("tty", "widget")
    if how == "widget":
        from tqdm.auto import tqdm as cls
    else:
        cls = _text_tqdm
    return cls(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not show,
        leave=not inner,
        dynamic_ncols=True,
        file=sys.stderr,
        **kwargs,
    )


def log(message: str) -> None:
    """One line on stderr, above any bar that is running (``tqdm.write``)."""
    _text_tqdm.write(message, file=sys.stderr)
