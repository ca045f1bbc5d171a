"""The data layer: reading MNIST-format folders, bad input, the load cache, splits, noise."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from mnistlab import data
from mnistlab.cli import main
from mnistlab.datasource import write_idx
from mnistlab.errors import DataError

PARTS = ("train-images", "train-labels", "test-images", "test-labels")


def file_name(part: str, naming: str = "dash", gz: bool = True) -> str:
    """The file name of a part under one of the two usual namings."""
    name = data.MNIST_FILES[part]
    if naming == "dot":  # train-images.idx3-ubyte
        stem, _, dim = name.rpartition("-idx")
        name = f"{stem}.idx{dim}"
    return name + (".gz" if gz else "")


def write_set(folder: Path, ds: data.Dataset, naming: str = "dash", gz: bool = True) -> Path:
    """Write ``ds`` as the four IDX files of an MNIST-format folder."""
    arrays = dict(zip(PARTS, (ds.x_train, ds.y_train, ds.x_test, ds.y_test), strict=True))
    folder.mkdir(parents=True, exist_ok=True)
    for part, arr in arrays.items():
        write_idx(folder / file_name(part, naming, gz), arr)
    return folder


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- reading ------------------------------------------------------------------------------


def test_bundled_mnist_is_the_official_data_set(mnist):
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (60_000,) and mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.is_mnist and mnist.name == "mnist" and mnist.source == "bundled MNIST"
    assert set(np.unique(mnist.y_test)) == set(range(10))
    # The well-known MNIST figures: first label 5, training mean 0.1307.
    assert mnist.y_train[0] == 5
    assert mnist.x_train.mean() / 255 == pytest.approx(0.1307, abs=1e-4)


@pytest.mark.parametrize("naming", ["dash", "dot"])
@pytest.mark.parametrize("gz", [True, False])
def test_both_namings_gzipped_or_not_give_the_same_arrays(tmp_path, small, naming, gz):
    folder = write_set(tmp_path / "set", small, naming, gz)
    files = data.find_files(folder)
    assert {p.name for p in files.values()} == {file_name(p, naming, gz) for p in PARTS}
    ds = data.load(folder)
    np.testing.assert_array_equal(ds.x_train, small.x_train)
    np.testing.assert_array_equal(ds.y_test, small.y_test)
    assert not ds.is_mnist and ds.source == str(folder)
    assert ds.name.startswith("data-")


def test_the_checksum_depends_on_the_content_not_on_the_naming(tmp_path, small):
    a = data.load(write_set(tmp_path / "a", small, "dash", gz=True))
    b = data.load(write_set(tmp_path / "b", small, "dot", gz=False))
    c = data.load(write_set(tmp_path / "c", small.subset(500, 200)))
    assert a.checksum == b.checksum != c.checksum


def test_parse_idx_reads_what_write_idx_wrote(tmp_path, small):
    write_idx(tmp_path / "x-idx3-ubyte", small.x_test)
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and len(raw) == 16 + 200 * 28 * 28
    np.testing.assert_array_equal(data.parse_idx(raw, "images"), small.x_test)


# --- bad input: one DataError line, exit 2 from the CLI, never a traceback ------------------


def _replace(folder: Path, part: str, raw: bytes) -> None:
    (folder / file_name(part)).write_bytes(gzip.compress(raw))


def _header(magic: int, *dims: int) -> bytes:
    return np.array([magic, *dims], dtype=">u4").tobytes()


def _missing_file(folder: Path, small) -> None:
    (folder / file_name("test-labels")).unlink()


def _truncated_file(folder: Path, small) -> None:
    raw = _header(data.IMAGE_MAGIC, 200, 28, 28) + small.x_test.tobytes()
    _replace(folder, "test-images", raw[:-100])


def _wrong_magic(folder: Path, small) -> None:
    _replace(folder, "train-labels", _header(0x0803, 600) + small.y_train.tobytes())


def _counts_disagree(folder: Path, small) -> None:
    _replace(folder, "train-labels", _header(data.LABEL_MAGIC, 599) + small.y_train[:599].tobytes())


def _images_32x32(folder: Path, small) -> None:
    big = np.zeros((600, 32, 32), dtype=np.uint8)
    big[:, 2:30, 2:30] = small.x_train
    write_idx(folder / file_name("train-images"), big)


def _corrupt_gzip(folder: Path, small) -> None:
    path = folder / file_name("train-images")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)  # zeroes in the deflate stream
    path.write_bytes(bytes(raw))


def _not_gzip(folder: Path, small) -> None:
    (folder / file_name("test-labels")).write_bytes(b"this is not gzip at all")


def _labels_out_of_range(folder: Path, small) -> None:
    _replace(folder, "test-labels", _header(data.LABEL_MAGIC, 200) + bytes([11] * 200))


BAD_INPUTS = {
    "missing file": (_missing_file, "missing test labels"),
    "truncated file": (_truncated_file, "truncated"),
    "wrong magic number": (_wrong_magic, "wrong magic number"),
    "counts disagree": (_counts_disagree, "600 images but 599 labels"),
    "32x32 images": (_images_32x32, "32x32"),
    "corrupt gzip": (_corrupt_gzip, "corrupt gzip"),
    "not a gzip": (_not_gzip, "corrupt gzip"),
    "labels beyond 9": (_labels_out_of_range, "digits 0-9"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_line(tmp_path, small, capsys, case):
    spoil, expected = BAD_INPUTS[case]
    folder = write_set(tmp_path / "set", small)
    spoil(folder, small)
    with pytest.raises(DataError, match=expected):
        data.load(folder)
    out_dir = tmp_path / "study-out"
    commands = [
        ["data", "info"],
        ["data", "verify"],
        ["train", "ae", "--epochs", "1"],
        ["study", "generation", "--quick", "--out", str(out_dir)],
    ]
    for command in commands:
        code, out, err = run_cli([*command, "--data", str(folder)], capsys)
        assert code == 2, command
        assert err.startswith("mnistlab: error: ") and err.count("\n") == 1, err
        assert expected in err and "Traceback" not in err + out
    assert not out_dir.exists(), "a failed study leaves no half-written output"


def test_a_damaged_bundled_copy_is_refused_not_taken_for_another_data_set(
    tmp_path, small, monkeypatch, capsys
):
    # Files that parse but are not the official MNIST, where the bundled copy should be.
    monkeypatch.setattr(data, "bundled_dir", lambda: write_set(tmp_path / "bundled", small))
    with pytest.raises(DataError, match="does not match the official SHA-256"):
        data.load()
    code, _, err = run_cli(["train", "classifier", "--epochs", "1"], capsys)
    assert code == 2 and "reinstall mnistlab" in err and err.count("\n") == 1
    # Also when the same files sit in the load cache from an explicit --data load.
    folder = data.bundled_dir()
    assert not data.load(folder).is_mnist
    with pytest.raises(DataError, match="does not match the official SHA-256"):
        data.load()


def test_missing_folder_gives_one_clear_line(tmp_path, capsys):
    code, out, err = run_cli(["data", "info", "--data", str(tmp_path / "nope")], capsys)
    assert code == 2 and out == ""
    assert err == f"mnistlab: error: data folder not found: {tmp_path / 'nope'}\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        data.load(tmp_path / "file")


def test_bad_input_writes_nothing_to_the_cache(tmp_path, small):
    folder = write_set(tmp_path / "set", small)
    _wrong_magic(folder, small)
    before = sorted((data.cache_dir() / "data").glob("*"))
    with pytest.raises(DataError):
        data.load(folder)
    assert sorted((data.cache_dir() / "data").glob("*")) == before


# --- the load cache -------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_with_identical_arrays(tmp_path, small):
    folder = write_set(tmp_path / "set", small)
    first = data.load(folder)
    entry = data.cache_dir() / "data" / data._stat_key(data.find_files(folder))
    assert (entry / "meta.json").is_file()
    second = data.load(folder)
    for a, b in zip(
        (first.x_train, first.y_train, first.x_test, first.y_test),
        (second.x_train, second.y_train, second.x_test, second.y_test),
        strict=True,
    ):
        assert a.dtype == b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    assert (first.checksum, first.is_mnist) == (second.checksum, second.is_mnist)
    np.testing.assert_array_equal(data.load(folder, use_cache=False).x_test, second.x_test)


def test_a_changed_file_invalidates_the_cache(tmp_path, small):
    folder = write_set(tmp_path / "set", small)
    before = data.load(folder)
    path = folder / file_name("train-labels")
    stat = path.stat()
    # Same size, new content, new mtime: what an edit in place looks like.
    write_idx(path, (small.y_train + 1) % 10)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    after = data.load(folder)
    np.testing.assert_array_equal(after.y_train, (small.y_train + 1) % 10)
    assert after.checksum != before.checksum


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, small):
    folder = write_set(tmp_path / "set", small)
    data.load(folder)
    entry = data.cache_dir() / "data" / data._stat_key(data.find_files(folder))
    (entry / "train-images.npy").write_bytes(b"garbage")
    np.testing.assert_array_equal(data.load(folder).x_train, small.x_train)


def test_file_sha256_is_the_decompressed_checksum_and_is_cached(tmp_path, small):
    write_idx(tmp_path / "l.gz", small.y_test)
    write_idx(tmp_path / "l", small.y_test)
    digest = data.file_sha256(tmp_path / "l.gz")
    assert digest == data.file_sha256(tmp_path / "l", use_cache=False)
    assert len(list((data.cache_dir() / "sha256").glob("*"))) >= 2


# --- the validation split -------------------------------------------------------------------


def test_train_val_split_is_seeded_sized_and_disjoint():
    train, val = data.train_val_split(60_000, seed=3)
    assert len(val) == 5_000 and len(train) == 55_000
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(60_000))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again_train, again_val = data.train_val_split(60_000, seed=3)
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    _, other_val = data.train_val_split(60_000, seed=4)
    assert not np.array_equal(val, other_val)


@pytest.mark.parametrize("n, fraction, n_val", [(600, 0.1, 60), (10, 0.25, 2), (7, 0.01, 1)])
def test_train_val_split_sizes(n, fraction, n_val):
    train, val = data.train_val_split(n, fraction, seed=0)
    assert (len(train), len(val)) == (n - n_val, n_val)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_val_split_rejects_a_fraction_outside_0_1(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(100, fraction, seed=0)


# --- float images and the noise model -------------------------------------------------------


def test_to_float_scales_and_reshapes(small):
    x = data.to_float(small.x_test)
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(data.to_float(x.reshape(200, 784)), x)


def test_noise_on_mid_grey_has_the_stated_mean_and_std():
    grey = np.full((400, 28, 28), 0.5, dtype=np.float32)
    noisy = data.add_noise(grey, factor=0.1, random_state=0)
    noise = noisy - grey  # factor 0.1 around 0.5: clipping (5 sigma away) never happens here
    assert noisy.dtype == np.float32 and noisy.shape == grey.shape
    assert abs(noise.mean()) < 3 * 0.1 / np.sqrt(noise.size)
    assert noise.std() == pytest.approx(0.1, rel=0.01)


def test_noise_is_clipped_to_0_1_and_takes_uint8():
    grey = np.full((50, 28, 28), 128, dtype=np.uint8)
    noisy = data.add_noise(grey, factor=1.0, random_state=1)
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    # With factor 1 about 31% of pixels fall below 0 and as many above 1.
    assert 0.28 < np.mean(noisy == 0.0) < 0.34 and 0.28 < np.mean(noisy == 1.0) < 0.34
    inside = noisy[(noisy > 0) & (noisy < 1)]
    assert abs(inside.mean() - 128 / 255) < 0.01


def test_noise_is_deterministic_per_seed(small):
    x = data.to_float(small.x_test[:20])
    a = data.add_noise(x, 0.5, random_state=7)
    np.testing.assert_array_equal(a, data.add_noise(x, 0.5, random_state=7))
    assert not np.array_equal(a, data.add_noise(x, 0.5, random_state=8))
    np.testing.assert_array_equal(data.add_noise(x, 0.0, random_state=7), x)
