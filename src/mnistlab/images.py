"""Digits from anywhere, as the one array all of mnistlab takes: float32 (N, 28, 28) in [0, 1].

``as_images`` is the one normaliser: numpy arrays, torch tensors and nested lists; shapes
(N, 28, 28), (N, 784), (N, 1, 28, 28) and (N, 28, 28, 1), the layouts of MNIST files, of
scikit-learn's ``fetch_openml`` and of torchvision / pythae / most PyTorch code (three channels,
(N, 3, 28, 28) or (N, 28, 28, 3), are turned grey as a colour picture is); uint8 or any
integer type holding 0-255, bool, or float in [0, 1] (in [-1, 1], as a tanh output gives, only
when the caller says so: a range is never guessed). ``read_images`` loads a file or folder of them:
``.npy`` / ``.npz`` (never unpickled, the header checked before anything is allocated),
``.safetensors`` and folders of PNG or JPEG files (grey or colour, converted to grey). Every refusal
is a ``DataError`` of one line that says what was found and what is expected.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from mnistlab.errors import DataError

SIDE = 28
N_PIXELS = SIDE * SIDE
RANGES = ("0,1", "-1,1")  # the value ranges a float input may be declared to have
DEFAULT_MAX_IMAGES = 1_000_000
ARRAY_KEYS = ("images", "samples")  # tried in this order when a file holds several arrays
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SUFFIXES = (".npy", ".npz", ".safetensors")
# A page whose colour channels differ by this much (of 255) is coloured: viridis' lowest colour,
# the page of a digit saved with matplotlib's default colour map, is (68, 1, 84).
COLOURED_PAGE = 32
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # refused, with a word of why
SHAPES = "(N, 28, 28), (N, 784), (N, 1, 28, 28) or (N, 28, 28, 1), or with 3 colour channels"
EXPECTED = f"uint8 or integers in [0, 255], or float in [0, 1], of shape {SHAPES}"


def as_images(
    images: Any, name: str = "images", *, value_range: str = "0,1", min_count: int = 1
) -> np.ndarray:
    """Any array-like of digits -> float32 array (N, 28, 28) in [0, 1] (see the module doc).

    value_range : "0,1" (default) or "-1,1" for floats scaled like a tanh output.
    min_count : the fewest images accepted.
    Raises ``DataError`` (one line) for anything else.
    """
    if value_range not in RANGES:
        raise DataError(f"value range must be one of {', '.join(RANGES)}, got {value_range!r}")
    x = _to_numpy(images, name)
    x = _to_stack(x, name)  # (N, 28, 28), or (N, 28, 28, 3) for colour: grey after the checks
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    elif np.issubdtype(x.dtype, np.integer):
        if x.dtype != np.uint8 and x.size and (int(x.min()) < 0 or int(x.max()) > 255):
            raise DataError(
                f"{name}: integer images must lie in [0, 255], found "
                f"[{int(x.min())}, {int(x.max())}]"
            )
        if x.ndim == 4:
            _check_page(x, 255, name)
            x = _luma_levels(x)
        x = x.astype(np.float32) / np.float32(255)  # as torchvision: exact for 0 and 255
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise DataError(f"{name}: contains NaN or infinite values")
        lo_ok = -1.0 if value_range == "-1,1" else 0.0
        if x.size and (x.min() < lo_ok or x.max() > 1.0):
            # The shortest digits that give the stored value back: 1.0000001 must not print as 1.
            lo, hi = (np.format_float_positional(v, trim="-") for v in (x.min(), x.max()))
            hint = ""
            if value_range != "-1,1" and -1 <= x.min() < -0.5 and x.max() <= 1:
                hint = " (in [-1, 1], as tanh gives: say so, --range -1,1 or value_range='-1,1')"
            elif x.min() >= 0 and 2 < x.max() <= 255:
                drop = " and drop --range -1,1" if value_range == "-1,1" else ""
                hint = f" (on the 0-255 scale: divide them by 255{drop}, or save them as uint8)"
            elif x.min() >= lo_ok - 0.1 and x.max() <= 1.1:
                hint = " (a little outside: clip them)"
            raise DataError(
                f"{name}: float values must lie in [{value_range.replace(',', ', ')}], "
                f"found [{lo}, {hi}]{hint}"
            )
        if value_range == "-1,1":
            x = (x + np.float32(1)) * np.float32(0.5)
    else:
        raise DataError(f"{name}: expected {EXPECTED}; got dtype {x.dtype}")
    if x.ndim == 4:  # float colour (integers were turned grey above)
        _check_page(x, 1, name)
        x = _luma(x)
    if len(x) < min_count:
        raise DataError(f"{name}: need at least {min_count} images, got {len(x)}")
    return x


def to_uint8(images: Any, name: str = "images") -> np.ndarray:
    """Anything ``as_images`` takes -> uint8 (N, 28, 28), each pixel rounded to the nearest of
    the 256 levels (halves to even): how MNIST files and the trainer's data sets store digits."""
    return np.clip(np.rint(as_images(images, name) * 255.0), 0, 255).astype(np.uint8)


def _to_numpy(images: Any, name: str) -> np.ndarray:
    if images is None:
        raise DataError(f"{name}: no images given")
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # a torch tensor, on any device
        images = images.detach().cpu().numpy()
    try:
        x = np.asarray(images)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: not an array of images ({exc})") from None
    if x.dtype == object:
        raise DataError(f"{name}: expected {EXPECTED}; got Python objects")
    return x


def _to_stack(x: np.ndarray, name: str) -> np.ndarray:
    """(N, 28, 28) from any accepted layout; the shape found and the shapes expected otherwise."""
    shape = tuple(x.shape)
    if x.ndim == 0 or shape[0] == 0:
        raise DataError(f"{name}: no images (shape {shape})")
    if x.ndim == 2 and shape[1] == N_PIXELS:
        return x.reshape(len(x), SIDE, SIDE)
    if x.ndim == 3 and shape[1:] == (SIDE, SIDE):
        return x
    if x.ndim == 4 and shape[1:] == (1, SIDE, SIDE):
        return x[:, 0]
    if x.ndim == 4 and shape[1:] == (SIDE, SIDE, 1):
        return x[..., 0]
    if x.ndim == 4 and shape[1:] in ((3, SIDE, SIDE), (SIDE, SIDE, 3)):
        return np.moveaxis(x, 1, -1) if shape[1] == 3 else x  # colour, channels last
    raise DataError(f"{name}: expected shape {SHAPES}; got {shape}{_shape_hint(shape)}")


def _check_page(rgb: np.ndarray, top: float, name: str) -> None:
    """Refuse colour images (N, 28, 28, 3) on 0..top any of which lies on a coloured page (over
    at most 1,000 images evenly spread), as ``_read_pictures`` refuses such pictures."""
    step = -(-len(rgb) // 1000)
    pages = np.median(rgb[::step].reshape(-1, SIDE * SIDE, 3), 1) * (255 / top)  # (n, 3)
    _refuse_coloured(pages, name, [f"image {i * step}" for i in range(len(pages))])


def _refuse_coloured(pages: np.ndarray, name: str, what: list[str]) -> None:
    """DataError when any page colour (n, 3) on 0-255 is coloured (``COLOURED_PAGE``)."""
    coloured = np.flatnonzero(np.ptp(pages, 1) >= COLOURED_PAGE) if len(pages) else []
    if len(coloured):
        first = coloured[0]
        page = tuple(np.round(pages[first]).astype(int).tolist())
        raise DataError(
            f"{name}: {len(coloured):,} of {len(pages):,} on a coloured page ({what[first]}: RGB "
            f"{page}), where MNIST's is black: a colour map (matplotlib's imsave uses viridis "
            "unless told cmap='gray') or a coloured scan; give the digits as grey levels, light "
            "ink on a black page"
        )


def _luma_levels(rgb: np.ndarray) -> np.ndarray:
    """Integer colour levels in [0, 255] (N, 28, 28, 3) -> grey levels (N, 28, 28), exactly as
    Pillow's convert("L") reads a colour picture (ITU-R 601 luma in 16-bit fixed point), so an
    array and a folder of the same pictures read the same; a grey digit repeated to three
    channels gives its levels back. Into one accumulator, a channel at a time."""
    acc = rgb[..., 0].astype(np.uint32)
    acc *= 19595
    term = np.empty_like(acc)
    for c, weight in ((1, 38470), (2, 7471)):
        np.multiply(rgb[..., c], weight, out=term, dtype=np.uint32, casting="unsafe")
        acc += term  # at most 255 * 65536 + 0x8000 < 2^32
    acc += 0x8000
    acc >>= 16
    return acc


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Float colour in [0, 1] (N, 28, 28, 3) -> grey (N, 28, 28) float32: ITU-R 601 luma, and
    exactly the channel where the three are equal (grey digits repeated to RGB)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.array_equal(r, g) and np.array_equal(r, b):
        return np.ascontiguousarray(r)
    return np.clip(r * np.float32(0.299) + g * np.float32(0.587) + b * np.float32(0.114), 0, 1)


def _shape_hint(shape: tuple[int, ...]) -> str:
    """What to do about a single image, images of another size, or other channels, for the
    error message ("" where there is nothing better to say)."""
    if shape in ((SIDE, SIDE), (SIDE, SIDE, 3), (N_PIXELS,)):
        return ": one image? give it as a stack of one (x[None])"
    if len(shape) == 2 and shape[1] == 32 * 32:
        return ": 1,024 = 32x32 pixels (padded MNIST?): reshape to (N, 32, 32), crop [2:30, 2:30]"
    if len(shape) == 3:
        side = shape[1:]
    elif len(shape) == 4 and (shape[1] in (2, 4) or shape[3] in (2, 4)):
        return ": 2 or 4 channels (grey or colour with alpha?); give grey or RGB images"
    elif len(shape) == 4 and shape[1] in (1, 3):
        side = shape[2:]
    elif len(shape) == 4 and shape[3] in (1, 3):
        side = shape[1:3]
    else:
        return ""
    if side == (32, 32):
        return (
            ": 32x32 is MNIST padded by 2 px, as LeNet and many GANs take it; crop them to "
            "[2:30, 2:30] (or resize them to 28x28 if they were resized)"
        )
    return f": images of {side[0]}x{side[1]} pixels; resize (or crop) them to 28x28 first"


# ---- files ----------------------------------------------------------------------------------


def max_images() -> int:
    """The most images a file may hold: ``MNISTLAB_MAX_IMAGES`` or 1,000,000 (3 GB as float32).
    A header that asks for more is refused before anything is allocated."""
    raw = os.environ.get("MNISTLAB_MAX_IMAGES", "")
    if not raw:
        return DEFAULT_MAX_IMAGES
    if not raw.isdigit() or int(raw) < 1:
        raise DataError(f"MNISTLAB_MAX_IMAGES must be a positive integer, got {raw!r}")
    return int(raw)


def read_images(
    path: str | os.PathLike[str],
    *,
    value_range: str = "0,1",
    min_count: int = 1,
    limit: int | None = None,
) -> np.ndarray:
    """The digits in a ``.npy``, ``.npz`` or ``.safetensors`` file, or in a folder of PNG/JPEG
    files (sorted by name), as float32 (N, 28, 28) in [0, 1].

    Nothing is unpickled; array headers are checked against the bytes that follow them and
    against ``limit`` images (default ``max_images()``) before any allocation.
    """
    path = Path(path)
    limit = max_images() if limit is None else limit
    if path.is_dir():
        array = _read_folder(path, limit)
    elif not path.exists():
        raise DataError(f"samples file not found: {path}")
    else:
        suffix = path.suffix.lower()
        if suffix in PICTURE_SUFFIXES:
            array = _read_pictures([path], path.name)
        elif suffix == ".npy":
            array = _read_npy(path, limit)
        elif suffix == ".npz":
            array = _read_npz(path, limit)
        elif suffix == ".safetensors":
            array = _read_safetensors(path, limit)
        elif suffix in PICKLE_SUFFIXES:
            raise DataError(
                f"{path}: a pickle (torch.save, pickle), which mnistlab never loads, since a "
                "pickle can run code; save the samples with numpy.save (tensor.numpy() first) "
                "or safetensors instead"
            )
        else:
            raise DataError(
                f"{path}: expected a .npy, .npz or .safetensors file, an image file or a folder "
                "of PNG/JPEG files"
            )
    return as_images(array, path.name, value_range=value_range, min_count=min_count)


def _read_folder(folder: Path, limit: int) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:3]
        found = f"found {', '.join(others)}{' ...' if len(others) == 3 else ''}" if others else ""
        raise DataError(
            f"{folder} is a folder with no image files (.png, .jpg); {found or 'it is empty'}"
        )
    if len(files) > limit:
        raise DataError(
            f"{folder}: {len(files):,} images, more than the limit of {limit:,} "
            "(MNISTLAB_MAX_IMAGES raises it)"
        )
    return _read_pictures(files, folder.name)


def _read_pictures(files: list[Path], name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(files), SIDE, SIDE), dtype=np.uint8)
    pages = []  # the page colour of each opaque colour picture
    for i, file in enumerate(files):
        try:
            with Image.open(file) as im:
                if im.size != (SIDE, SIDE):
                    raise DataError(f"{file}: {im.size[0]}x{im.size[1]} pixels; expected 28x28")
                out[i] = _grey(im)
                if im.mode not in ("1", "L", "LA") and not im.mode.startswith("I"):
                    rgba = np.asarray(im.convert("RGBA")).reshape(-1, 4)
                    if rgba[:, 3].min() == 255:  # opaque: its page is what shows
                        pages.append((file, np.median(rgba[:, :3], 0)))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{file}: not a readable image ({exc})") from None
    _refuse_coloured(np.array([p for _, p in pages]), name, [f.name for f, _ in pages])
    return out


def _grey(im: Any) -> np.ndarray:
    """A PIL image -> its grey levels (28, 28) uint8: colour becomes grey (ITU-R 601 luma, as
    Pillow's ``convert("L")``); 16-bit grey scaled to 8 bits (``convert("L")`` clips it at 255,
    which read every 16-bit digit as a white blot); a picture with transparency read as its ink
    over a black page, the ink made light where it is dark (dark ink on a transparent page, as
    drawing tools save it, read as a blank page before)."""
    if im.mode.startswith("I"):  # "I;16", "I;16B", ...: only a 16-bit PNG opens so here
        levels = np.asarray(im).astype(np.int64).clip(0, 65535)
        return ((levels * 255 + 32767) // 65535).astype(np.uint8)  # rounded
    if "A" not in im.getbands() and "transparency" not in im.info:
        return np.asarray(im.convert("L"))
    rgba = im.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.int64)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.int64)
    if alpha.min() < 255 and 2 * (grey * alpha).sum() < 255 * alpha.sum():
        grey = 255 - grey  # the ink, weighed by its opacity, is dark: it is the light one here
    return ((grey * alpha + 127) // 255).astype(np.uint8)  # over a black page


def _read_npy(path: Path, limit: int) -> np.ndarray:
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataError(f"{path}: not a .npy file")
        f.seek(0)
        _check_npy_header(f, path.stat().st_size, path.name, limit)
    return _np_load(path)


def _read_npz(path: Path, limit: int) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a .npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            key = _pick_key(path, [n.removesuffix(".npy") for n in names])
            member = key + ".npy" if key + ".npy" in names else key
            with archive.open(member) as f:
                info = archive.getinfo(member)
                _check_npy_header(f, info.file_size, f"{path.name}[{key}]", limit)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from None
    return _np_load(path, key)


def _np_load(path: Path, key: str | None = None) -> np.ndarray:
    try:
        if key is None:
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds pickled Python objects, not a numeric array") from None
        raise DataError(f"{path}: not a valid {path.suffix} file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{path}: not a valid {path.suffix} file ({exc})") from None


def _check_npy_header(f: IO[bytes], file_size: int, name: str, limit: int) -> None:
    """Read a .npy header from ``f`` and refuse, before any allocation, an array that the file
    cannot hold (a petabyte claimed by a 100-byte file), pickled objects, or more than ``limit``
    images."""
    try:
        version = np.lib.format.read_magic(f)
        readers = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }
        read = readers.get(version)
        if read is not None:
            shape, _, dtype = read(f)
    except ValueError as exc:
        raise DataError(f"{name}: not a valid .npy header ({exc})") from None
    if read is None:
        raise DataError(f"{name}: unsupported .npy format version {version[0]}.{version[1]}")
    if dtype.hasobject:
        raise DataError(f"{name}: holds pickled Python objects, not a numeric array")
    _check_size(name, tuple(shape), dtype.itemsize, file_size - f.tell(), limit)


def _check_size(name: str, shape: tuple[int, ...], itemsize: int, have: int, limit: int) -> None:
    count = shape[0] if shape else 1
    if count > limit:
        raise DataError(
            f"{name}: {count:,} images, more than the limit of {limit:,} "
            "(MNISTLAB_MAX_IMAGES raises it)"
        )
    need = math.prod(shape) * itemsize  # Python ints: no overflow
    if need > have:
        raise DataError(
            f"{name}: truncated: its header promises shape {shape} ({need:,} bytes), "
            f"the file holds {max(have, 0):,}"
        )


def _read_safetensors(path: Path, limit: int) -> np.ndarray:
    import json
    import struct

    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= min(size - 8, 100_000_000):
            raise DataError(f"{path}: not a .safetensors file")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise DataError(f"{path}: not a .safetensors file (bad header)") from None
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    key = _pick_key(path, list(tensors))
    try:
        shape = tuple(int(d) for d in tensors[key]["shape"])
        start, end = (int(o) for o in tensors[key]["data_offsets"])
        itemsize = _SAFETENSORS_ITEMSIZE[tensors[key]["dtype"]]
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: not a .safetensors file (bad entry for {key!r})") from None
    have = min(end, size - 8 - n) - start
    _check_size(f"{path.name}[{key}]", shape, itemsize, have, limit)
    try:
        return load_file(str(path))[key]
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a valid .safetensors file ({exc})") from None


_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _pick_key(path: Path, keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in ARRAY_KEYS:
        if key in keys:
            return key
    found = ", ".join(keys) or "none"
    raise DataError(f"{path}: expected one array or one named 'images' or 'samples'; found {found}")
