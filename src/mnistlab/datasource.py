"""Where MNIST-format data comes from and what it holds: the public mirrors, OpenML, verify, info.

``download`` fetches the four official files from the public MNIST mirrors (or OpenML's
``mnist_784`` through scikit-learn) into a folder that ``data.load`` reads; ``verify`` compares a
folder with the official MNIST checksums; ``info`` counts and describes a data set. Every file is
written atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import data
from mnistlab.errors import DataError
from mnistlab.fileio import atomic_write, new_file_mode
from mnistlab.progress import bar as progress_bar

# Tried in order; each serves the four official .gz files under their official names.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
SOURCES = ("mirrors", "openml")
_CHUNK = 1 << 20
DEADLINE = 60.0  # seconds for a whole download: the four files are 11 MB
# Client errors that another attempt on the same mirror will not fix.
_PERMANENT_HTTP = {400, 401, 403, 404, 405, 410}


# --- verify ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """One file of a data set against the official MNIST checksum of its part."""

    part: str  # "train-images", "train-labels", "test-images" or "test-labels"
    path: Path
    sha256: str  # of the decompressed content
    expected: str

    @property
    def ok(self) -> bool:
        return self.sha256 == self.expected


@dataclass(frozen=True)
class Verification:
    """The verdict on a folder: per-file checks, and why it is unusable (``problem``) if it is."""

    folder: str
    files: tuple[FileCheck, ...]
    problem: str | None = None

    @property
    def is_mnist(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def is_valid(self) -> bool:
        """A usable MNIST-format data set (official or not)."""
        return self.problem is None


def verify(data_dir: str | Path | None = None, *, use_cache: bool = True) -> Verification:
    """Compare the decompressed SHA-256 of each file with the official MNIST (``None``: bundled).

    Checksums are cached by path, inode, size, mtime and ctime (``data.file_sha256``);
    ``use_cache=False`` reads and hashes every file again. When a file differs, the
    folder is also read as an MNIST-format data set, and ``problem`` says why it cannot be used.
    Raises ``DataError`` for a missing folder or file, or a file that cannot be decompressed.
    """
    folder = data.bundled_dir() if data_dir is None else Path(data_dir)
    files = data.find_files(folder)
    checks = tuple(
        FileCheck(
            part,
            files[part],
            data.file_sha256(files[part], use_cache=use_cache),
            data.MNIST_SHA256[name],
        )
        for part, name in data.MNIST_FILES.items()
    )
    problem = None
    if not all(c.ok for c in checks):
        try:
            data.load(folder, use_cache=use_cache)
        except DataError as exc:
            problem = str(exc)
    label = "bundled MNIST" if data_dir is None else str(folder)
    return Verification(label, checks, problem)


# --- info -----------------------------------------------------------------------------------


def _pixel_stats(images: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max (on the [0, 1] scale) and share of zeros of uint8 images (N, 28, 28)."""
    hist = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256)  # (256,)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = hist.sum()
    mean = float(hist @ values / n)
    var = float(hist @ (values - mean) ** 2 / n)
    nonzero = np.flatnonzero(hist)
    return {
        "mean": mean,
        "std": var**0.5,
        "min": float(values[nonzero[0]]),
        "max": float(values[nonzero[-1]]),
        "zero_share": float(hist[0] / n),
    }


def info(dataset: data.Dataset | str | Path | None = None) -> dict[str, Any]:
    """Counts per split and per class, image size and pixel statistics of a data set.

    ``dataset`` is a loaded ``Dataset`` or a folder (``None``: the bundled MNIST). Pixel statistics
    are on the [0, 1] scale the models see. Returns a JSON-ready dict.
    """
    ds = dataset if isinstance(dataset, data.Dataset) else data.load(dataset)
    splits = {}
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        per_class = np.bincount(y, minlength=10)
        splits[split] = {
            "count": len(x),
            "per_class": {str(d): int(c) for d, c in enumerate(per_class)},
            "pixels": _pixel_stats(x),
        }
    return {
        "source": ds.source,
        "name": ds.name,
        "checksum": ds.checksum,
        "is_mnist": ds.is_mnist,
        "image_size": list(ds.x_train.shape[1:]),
        "splits": splits,
    }


# --- IDX writing and OpenML -----------------------------------------------------------------


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write uint8 images (N, rows, cols) or labels (N,) as an IDX file, gzipped if ``.gz``.

    The write is atomic; the gzip header carries no name or time, so equal arrays give equal bytes.
    """
    path = Path(path)
    raw = idx_bytes(array)
    if path.suffix == ".gz":
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    atomic_write(path, raw)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """The decompressed IDX file of uint8 images (N, rows, cols) or labels (N,)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise DataError(f"IDX data must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        header = np.array([data.IMAGE_MAGIC, *arr.shape], dtype=">u4").tobytes()
    elif arr.ndim == 1:
        header = np.array([data.LABEL_MAGIC, len(arr)], dtype=">u4").tobytes()
    else:
        raise DataError(f"IDX data must be images (N, rows, cols) or labels (N,), got {arr.shape}")
    return header + np.ascontiguousarray(arr).tobytes()


def write_idx_folder(
    dest: str | Path, arrays: dict[str, np.ndarray], *, compress: bool = True
) -> list[Path]:
    """Write the four parts (keys as in ``data.MNIST_FILES``) under their official MNIST names."""
    dest = Path(dest)
    suffix = ".gz" if compress else ""
    return [
        write_idx(dest / (name + suffix), arrays[part]) for part, name in data.MNIST_FILES.items()
    ]


def openml_to_arrays(X: Any, y: Any, n_train: int = 60_000) -> dict[str, np.ndarray]:
    """Turn ``fetch_openml("mnist_784")``'s (X, y) into the four MNIST arrays.

    X : array of shape (n_samples, 784), pixel values 0-255 (any numeric dtype)
    y : array of shape (n_samples,), the digits as strings or numbers
    The first ``n_train`` rows are the training set, as in MNIST. Returns uint8 arrays keyed
    ``"train-images"`` (n_train, 28, 28), ``"train-labels"`` (n_train,), ``"test-images"``,
    ``"test-labels"``.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    side = data.IMAGE_SIZE
    if X.ndim != 2 or X.shape[1] != side * side:
        raise DataError(f"OpenML images must have shape (n, {side * side}), got {X.shape}")
    if len(y) != len(X):
        raise DataError(f"OpenML data: {len(X)} images but {len(y)} labels")
    if not 0 < n_train < len(X):
        raise DataError(f"OpenML data: cannot keep {n_train} of {len(X)} images for training")
    pixels = X.astype(np.float64)
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
        raise DataError("OpenML images must hold whole pixel values in 0-255")
    try:
        labels = y.astype(np.int64)
    except ValueError:
        raise DataError("OpenML labels must be the digits 0-9") from None
    if labels.min() < 0 or labels.max() > 9:
        raise DataError("OpenML labels must be the digits 0-9")
    images = pixels.astype(np.uint8).reshape(-1, side, side)  # (n, 28, 28)
    labels = labels.astype(np.uint8)
    return {
        "train-images": images[:n_train],
        "train-labels": labels[:n_train],
        "test-images": images[n_train:],
        "test-labels": labels[n_train:],
    }


def fetch_openml_xy(data_home: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OpenML data set 554, ``mnist_784``, through scikit-learn: X (70000, 784), y (70000,).

    A thin wrapper over ``sklearn.datasets.fetch_openml``; scikit-learn's own download cache goes
    to ``data_home`` (default: ``data.cache_dir() / "openml"``).
    """
    from sklearn.datasets import fetch_openml

    home = Path(data_home) if data_home is not None else data.cache_dir() / "openml"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its "network error, retrying" lines
            X, y = fetch_openml(
                "mnist_784",
                version=1,
                as_frame=False,
                return_X_y=True,
                parser="liac-arff",  # needs no pandas
                data_home=str(home),
            )
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not fetch mnist_784 from OpenML: {msg}") from None
    return X, y


# --- download -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """What ``download`` did for one file."""

    path: Path
    action: str  # "downloaded", "present" (already there and valid) or "written" (OpenML)
    url: str | None = None


def _decompressed_sha256(path: Path) -> str:
    """SHA-256 of a gzip file's content, streamed; ``DataError`` if it is not a valid gzip."""
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"corrupt gzip file: {exc}") from None
    return h.hexdigest()


def _present_and_valid(dest: Path, name: str) -> Path | None:
    """The existing file for official ``name`` in ``dest`` if its content is the official one."""
    for candidate in (dest / (name + ".gz"), dest / name):
        if candidate.is_file():
            try:
                if data.file_sha256(candidate) == data.MNIST_SHA256[name]:
                    return candidate
            except DataError:
                pass
            if candidate.suffix != ".gz":
                raise DataError(
                    f"{candidate} exists and is not the official MNIST file; remove it first"
                )
    return None


class _Deadline:
    """The time left for a whole download; every request and pause is cut to fit inside it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> float:
        """Seconds left; a ``DataError`` naming ``what`` when none are."""
        left = self.left()
        if left <= 0:
            raise DataError(f"download stopped: {what} not done within {self.seconds:g} s")
        return left


def _fetch(
    url: str, out: Path, *, timeout: float, deadline: _Deadline, progress: bool, desc: str
) -> None:
    """``_stream`` in a worker thread that the deadline bounds as a whole: a server that sends
    its status line and headers a byte at a time never returns from ``urlopen`` otherwise."""
    box: dict[str, BaseException] = {}

    def work() -> None:
        try:
            _stream(url, out, timeout=timeout, deadline=deadline, progress=progress, desc=desc)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"download {desc}", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline.left()))
    if worker.is_alive():  # it dies with its socket's timeout; its file is removed by the caller
        deadline.check(desc)
        raise DataError(f"download stopped: {desc} not done within {deadline.seconds:g} s")
    if "error" in box:
        raise box["error"]


def _stream(
    url: str, out: Path, *, timeout: float, deadline: _Deadline, progress: bool, desc: str
) -> None:
    """Stream ``url`` into ``out``; raises on HTTP errors, a short body, or the deadline."""
    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    timeout = min(timeout, deadline.check(desc))
    with urllib.request.urlopen(request, timeout=timeout) as response, open(out, "wb") as f:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with progress_bar(
            total=total, unit="B", unit_scale=True, desc=desc, enabled=progress, inner=True
        ) as bar:
            # read1 returns what one read of the socket gives: a server that trickles a byte at
            # a time, each within the timeout, still meets the deadline here.
            while chunk := response.read1(_CHUNK):
                deadline.check(desc)
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)


def _download_one(
    name: str,
    dest: Path,
    base_urls: tuple[str, ...],
    *,
    retries: int,
    timeout: float,
    deadline: _Deadline,
    backoff: float,
    progress: bool,
) -> Fetched:
    filename = name + ".gz"
    expected = data.MNIST_SHA256[name]
    errors: list[str] = []
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{filename}.{os.getpid()}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        for base in base_urls:
            url = base.rstrip("/") + "/" + filename
            for attempt in range(retries):
                if attempt:
                    time.sleep(min(backoff * 2 ** (attempt - 1), deadline.check(filename)))
                try:
                    _fetch(
                        url,
                        tmp,
                        timeout=timeout,
                        deadline=deadline,
                        progress=progress,
                        desc=filename,
                    )
                except urllib.error.HTTPError as exc:
                    errors.append(f"{url}: HTTP {exc.code}")
                    if exc.code in _PERMANENT_HTTP:
                        break  # this mirror does not have it: try the next one
                    continue
                except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                    reason = getattr(exc, "reason", None) or exc
                    errors.append(f"{url}: {type(exc).__name__}: {reason}")
                    continue
                try:
                    digest = _decompressed_sha256(tmp)
                except DataError as exc:
                    errors.append(f"{url}: {exc}")
                    break  # the mirror serves a broken file: another attempt gets the same
                if digest != expected:
                    errors.append(
                        f"{url}: checksum mismatch (decompressed SHA-256 {digest[:12]}..., "
                        f"expected {expected[:12]}...)"
                    )
                    break
                os.chmod(tmp, new_file_mode())
                os.replace(tmp, dest / filename)
                return Fetched(dest / filename, "downloaded", url)
    finally:
        tmp.unlink(missing_ok=True)  # nothing half-written on failure or Ctrl-C
    raise DataError(f"could not download {filename}: " + "; ".join(errors))


def _sweep_parts(dest: Path) -> None:
    """Remove ``.<file>.gz.<pid>.*.part`` files of downloads whose process is gone."""
    for part in dest.glob(".*.gz.*.part"):
        pid = part.name.split(".gz.", 1)[1].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                part.unlink(missing_ok=True)
            except PermissionError:
                pass


def download(
    dest: str | Path,
    *,
    source: str = "mirrors",
    base_urls: tuple[str, ...] | list[str] | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    deadline: float = DEADLINE,
    backoff: float = 1.0,
    progress: bool = True,
) -> list[Fetched]:
    """Put the four official MNIST files, gzipped, into ``dest``; skip those already valid.

    source : "mirrors" (``base_urls``, default ``MIRRORS``, tried in order, each up to ``retries``
        times with exponential ``backoff`` seconds) or "openml" (``fetch_openml("mnist_784")``).
    ``timeout`` bounds each request's waits on the network, ``deadline`` the whole download (all
    files, mirrors and retries): past it, one line says so and nothing is left half-written.
    Every file's decompressed SHA-256 is checked before it is moved into place. Raises
    ``DataError`` with one line when a file cannot be had from any mirror.
    """
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    if retries < 1:
        raise DataError("retries must be at least 1")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"not a folder: {dest}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {dest}: {exc.strerror}") from None

    _sweep_parts(dest)
    done: dict[str, Fetched] = {}
    for name in data.MNIST_FILES.values():
        present = _present_and_valid(dest, name)
        if present is not None:
            done[name] = Fetched(present, "present")
    missing = [name for name in data.MNIST_FILES.values() if name not in done]
    if missing and source == "openml":
        arrays = openml_to_arrays(*fetch_openml_xy())
        for part, name in data.MNIST_FILES.items():
            if name in missing:
                # Checked before anything is written: a wrong file never lands under its name.
                if hashlib.sha256(idx_bytes(arrays[part])).hexdigest() != data.MNIST_SHA256[name]:
                    raise DataError(f"OpenML's {part} differ from the official MNIST file {name}")
                path = write_idx(dest / (name + ".gz"), arrays[part])
                done[name] = Fetched(path, "written", "openml:mnist_784")
    elif missing:
        urls = tuple(base_urls) if base_urls else MIRRORS
        clock = _Deadline(deadline)
        for name in missing:
            done[name] = _download_one(
                name,
                dest,
                urls,
                retries=retries,
                timeout=timeout,
                deadline=clock,
                backoff=backoff,
                progress=progress,
            )
    return [done[name] for name in data.MNIST_FILES.values()]
