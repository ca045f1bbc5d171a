"""The study settings a user can set from the command line, and how their text is read.

Each study's registry entry (``mnistlab.studies.STUDIES``) lists its ``Setting``s: the config
field, the flag, the help and a parser from text to value that raises ``ValueError`` with a
message a user can act on. The CLI builds each study's command from these, so a new study needs
no CLI code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One command-line setting of a study: ``flag`` sets config field ``field``."""

    field: str
    flag: str
    help: str
    parse: Callable[[str], Any]
    metavar: str = "LIST"


def _parts(text: str) -> list[str]:
    parts = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"expected values separated by commas, got {text!r}")
    return parts


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """A parser of one integer in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is not in the range {lo:,}-{hi:,}")
        return value

    return parse


def integers(lo: int, hi: int) -> Callable[[str], tuple[int, ...]]:
    """A parser of integers in [lo, hi] separated by commas."""

    def parse(text: str) -> tuple[int, ...]:
        parts = _parts(text)
        if not all(p.isdigit() and lo <= int(p) <= hi for p in parts):
            raise ValueError(f"expected integers {lo}-{hi} separated by commas, got {text!r}")
        return tuple(int(p) for p in parts)

    return parse


def floats(lo: float, hi: float) -> Callable[[str], tuple[float, ...]]:
    """A parser of numbers in (lo, hi] separated by commas."""

    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(p) for p in _parts(text))
        except ValueError:
            raise ValueError(f"expected numbers separated by commas, got {text!r}") from None
        if any(not lo < v <= hi for v in values):  # also refuses nan
            raise ValueError(f"each value must lie in ({lo:g}, {hi:g}], got {text!r}")
        return values

    return parse


def shots(text: str) -> tuple[int | None, ...]:
    """Training-set sizes: integers >= 2 or 'all' (None), separated by commas."""
    out: list[int | None] = []
    for p in _parts(text):
        if p.lower() == "all":
            out.append(None)
        elif p.isdigit() and int(p) >= 2:
            out.append(int(p))
        else:
            raise ValueError(f"each N must be an integer >= 2 or 'all', got {p!r}")
    return tuple(out)
