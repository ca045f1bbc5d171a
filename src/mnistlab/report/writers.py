"""Atomic file writers: bytes, text, JSON (numpy-aware, NaN -> null) and CSV.

Every write goes through `mnistlab.fileio.atomic_write`: a temporary file in the destination folder,
then `os.replace`, so a reader never sees a half-written file and a crash leaves the old file
intact; the file gets the mode the user's umask gives.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.fileio import atomic_write

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "collect_columns",
    "to_jsonable",
    "write_csv",
    "write_json",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically, creating the parent folders. Returns the path."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    return atomic_write(path, bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (UTF-8 by default). Returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def to_jsonable(obj: Any) -> Any:
    """Convert `obj` to plain JSON types.

    numpy scalars and arrays become Python numbers and lists, NaN and infinities become None,
    `Path` becomes str, dataclasses become dicts, datetimes ISO strings, enums their value,
    mapping keys str. Anything else raises TypeError.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {_json_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # torch tensors and other array types
        return to_jsonable(obj.tolist())
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, os.PathLike):
        return os.fspath(key)
    return str(key)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write `obj` as JSON to `path` atomically (see `to_jsonable` for the conversions)."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def collect_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The union of the rows' keys, in order of first appearance."""
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(str(key), None)
    return list(columns)


def _csv_cell(value: Any) -> Any:
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def write_csv(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
) -> Path:
    """Write `rows` (one dict per row) as CSV to `path` atomically.

    `columns` defaults to the union of the rows' keys in order of first appearance; a missing
    key, None or NaN gives an empty cell. Floats keep their full precision.
    """
    columns = list(columns) if columns is not None else collect_columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return atomic_write_text(path, buf.getvalue())
