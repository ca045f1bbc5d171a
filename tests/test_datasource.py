"""Download from mirrors (a real HTTP server on 127.0.0.1), OpenML conversion, verify and info."""

from __future__ import annotations

import gzip
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from mnistlab import data, datasource
from mnistlab.cli import main
from mnistlab.errors import DataError

GZ_NAMES = [name + ".gz" for name in data.MNIST_FILES.values()]


class Mirror:
    """A static file server on 127.0.0.1 that can fail its first requests with HTTP 503."""

    def __init__(self, root: Path, fail_first: int = 0):
        self.root, self.fail_first, self.requests = root, fail_first, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                path = mirror.root / name
                if len(mirror.requests) < mirror.fail_first:
                    status = 503
                elif path.is_file():
                    status = 200
                else:
                    status = 404
                mirror.requests.append((Path(name).name, status))
                if status != 200:
                    self.send_error(status)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def good_root(tmp_path_factory) -> Path:
    """The mirror's folder: real copies of the bundled .gz files, served under /mnist/."""
    root = tmp_path_factory.mktemp("mirror")
    (root / "mnist").mkdir()
    for name in GZ_NAMES:
        shutil.copy(data.bundled_dir() / name, root / "mnist" / name)
    return root


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory, good_root) -> Path:
    """The same mirror with train-labels corrupted (one label changed, still a valid gzip)."""
    root = tmp_path_factory.mktemp("bad-mirror")
    shutil.copytree(good_root / "mnist", root / "mnist")
    path = root / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))
    return root


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_gives_the_bundled_arrays_and_skips_what_is_there(tmp_path, good_root, mnist):
    dest = tmp_path / "dl"
    with Mirror(good_root) as mirror:
        fetched = datasource.download(dest, base_urls=[mirror.url], progress=False)
        assert [f.action for f in fetched] == ["downloaded"] * 4
        assert leftovers(dest) == sorted(GZ_NAMES)
        ds = data.load(dest)
        assert ds.is_mnist and ds.checksum == mnist.checksum
        np.testing.assert_array_equal(ds.x_train, mnist.x_train)
        np.testing.assert_array_equal(ds.y_test, mnist.y_test)
        n_requests = len(mirror.requests)
        again = datasource.download(dest, base_urls=[mirror.url], progress=False)
        assert [f.action for f in again] == ["present"] * 4
        assert len(mirror.requests) == n_requests == 4


def test_a_corrupted_file_is_rejected_and_nothing_is_left(tmp_path, bad_root):
    dest = tmp_path / "dl"
    dest.mkdir()
    shutil.copy(data.bundled_dir() / "train-images-idx3-ubyte.gz", dest)  # skip the big one
    with Mirror(bad_root) as mirror, pytest.raises(DataError) as err:
        datasource.download(dest, base_urls=[mirror.url], progress=False, backoff=0)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in msg and "checksum mismatch" in msg
    assert "\n" not in msg
    assert leftovers(dest) == ["train-images-idx3-ubyte.gz"]  # no half-written file, no .part


def test_a_broken_gzip_is_rejected(tmp_path, good_root):
    root = tmp_path / "root"
    shutil.copytree(good_root, root)
    path = root / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])  # the transfer is complete, the file is not
    with Mirror(root) as mirror, pytest.raises(DataError, match="corrupt gzip"):
        datasource.download(tmp_path / "dl", base_urls=[mirror.url], progress=False, backoff=0)
    assert leftovers(tmp_path / "dl") == []


def test_a_failed_request_is_retried(tmp_path, good_root):
    dest = tmp_path / "dl"
    with Mirror(good_root, fail_first=2) as mirror:
        fetched = datasource.download(dest, base_urls=[mirror.url], progress=False, backoff=0)
    assert [f.action for f in fetched] == ["downloaded"] * 4
    assert mirror.requests[:3] == [("train-images-idx3-ubyte.gz", s) for s in (503, 503, 200)]
    assert data.load(dest).is_mnist


def test_the_next_mirror_is_tried(tmp_path, good_root):
    with socket.socket() as s:  # a port where nothing listens: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/mnist/"
    empty = tmp_path / "empty"
    empty.mkdir()
    with Mirror(empty) as missing, Mirror(good_root) as good:
        fetched = datasource.download(
            tmp_path / "dl", base_urls=[dead, missing.url, good.url], progress=False, backoff=0
        )
    assert {f.url for f in fetched} == {good.url + name for name in GZ_NAMES}
    assert missing.requests[0] == ("train-images-idx3-ubyte.gz", 404)
    assert len(missing.requests) == 4  # a 404 is not retried on the same mirror


def test_404_on_all_mirrors_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    dest = tmp_path / "dl"
    with Mirror(empty) as a, Mirror(empty) as b:
        code = main(["data", "download", str(dest), "--base-url", a.url, "--base-url", b.url])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("mnistlab: error: could not download train-images-idx3-ubyte.gz: ")
    assert f"{a.url}train-images-idx3-ubyte.gz: HTTP 404" in err
    assert f"{b.url}train-images-idx3-ubyte.gz: HTTP 404" in err
    assert leftovers(dest) == []


def test_download_cli(tmp_path, good_root, capsys):
    dest = tmp_path / "dl"
    with Mirror(good_root) as mirror:
        code = main(["data", "download", str(dest), "--base-url", mirror.url, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("downloaded") == 4 and "the official MNIST" in out
    assert main(["data", "verify", "--data", str(dest)]) == 0


def test_download_rejects_a_file_as_destination(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        datasource.download(tmp_path / "f", progress=False)
    with pytest.raises(DataError, match="unknown source"):
        datasource.download(tmp_path / "d", source="ftp", progress=False)


# --- OpenML: the conversion, tested on real MNIST arrays; the fetch is a thin wrapper --------


def openml_like(ds: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """What fetch_openml(as_frame=False, parser="liac-arff") returns: float X, string y."""
    X = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 784).astype(np.float64)
    y = np.concatenate([ds.y_train, ds.y_test]).astype(str).astype(object)
    return X, y


def test_openml_conversion_gives_the_mnist_arrays(tmp_path, small):
    X, y = openml_like(small)
    arrays = datasource.openml_to_arrays(X, y, n_train=600)
    assert arrays["train-images"].shape == (600, 28, 28)
    assert arrays["train-images"].dtype == arrays["test-labels"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["train-images"], small.x_train)
    np.testing.assert_array_equal(arrays["test-labels"], small.y_test)
    datasource.write_idx_folder(tmp_path / "om", arrays)
    ds = data.load(tmp_path / "om")
    np.testing.assert_array_equal(ds.x_test, small.x_test)
    np.testing.assert_array_equal(ds.y_train, small.y_train)


def test_openml_conversion_of_all_70000_rows_writes_the_official_files(tmp_path, mnist):
    X = np.concatenate([mnist.x_train, mnist.x_test]).reshape(-1, 784)  # uint8 keeps it small
    y = np.concatenate([mnist.y_train, mnist.y_test]).astype(str)
    arrays = datasource.openml_to_arrays(X, y)
    paths = datasource.write_idx_folder(tmp_path / "om", arrays, compress=False)
    for path in paths:
        assert data.file_sha256(path) == data.MNIST_SHA256[path.name]


@pytest.mark.parametrize(
    "X, y, expected",
    [
        (np.zeros((10, 28, 28)), np.zeros(10), "shape"),
        (np.zeros((10, 784)), np.zeros(9), "10 images but 9 labels"),
        (np.full((10, 784), 256.0), np.zeros(10), "0-255"),
        (np.full((10, 784), 0.5), np.zeros(10), "0-255"),
        (np.zeros((10, 784)), np.array(["x"] * 10, dtype=object), "digits"),
        (np.zeros((10, 784)), np.full(10, 10), "digits"),
    ],
)
def test_openml_conversion_rejects_bad_arrays(X, y, expected):
    with pytest.raises(DataError, match=expected):
        datasource.openml_to_arrays(X, y, n_train=6)


def test_write_idx_is_deterministic_and_rejects_what_idx_cannot_hold(tmp_path, small):
    a = datasource.write_idx(tmp_path / "a.gz", small.x_test).read_bytes()
    b = datasource.write_idx(tmp_path / "b.gz", small.x_test).read_bytes()
    assert a == b and a[:2] == b"\x1f\x8b"
    with pytest.raises(DataError, match="uint8"):
        datasource.write_idx(tmp_path / "c", small.x_test.astype(np.float32))
    with pytest.raises(DataError, match="images"):
        datasource.write_idx(tmp_path / "c", small.x_test.reshape(200, 784))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b.gz"]


def test_openml_source_skips_the_fetch_when_the_files_are_there(tmp_path):
    dest = tmp_path / "om"
    shutil.copytree(data.bundled_dir(), dest, ignore=shutil.ignore_patterns("*.md", "*.json"))
    fetched = datasource.download(dest, source="openml", progress=False)
    assert [f.action for f in fetched] == ["present"] * 4


# --- verify and info ------------------------------------------------------------------------


def test_verify_the_bundled_mnist(capsys):
    result = datasource.verify()
    assert result.is_mnist and result.is_valid
    assert [c.part for c in result.files] == list(data.MNIST_FILES)
    code = main(["data", "verify"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.count("OK ") == 4 and "all 4 files match the official MNIST" in out


def test_verify_a_checksum_mismatch(tmp_path, bad_root, capsys):
    folder = bad_root / "mnist"
    result = datasource.verify(folder)
    assert [c.ok for c in result.files] == [True, False, True, True]
    assert result.is_valid and not result.is_mnist
    code = main(["data", "verify", "--data", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "MISMATCH  train-labels-idx1-ubyte.gz" in out and out.count("OK ") == 3
    assert err.count("\n") == 1 and "1 of 4 files differ from the official MNIST" in err
    assert "valid MNIST-format data set, but not the official MNIST" in err
    assert main(["data", "verify", "--data", str(folder), "--allow-other"]) == 0


def test_info_counts_and_pixel_statistics(small, capsys):
    facts = datasource.info(small)
    train = facts["splits"]["train"]
    assert train["count"] == 600 and facts["image_size"] == [28, 28]
    assert sum(train["per_class"].values()) == 600
    assert train["per_class"]["3"] == int(np.sum(small.y_train == 3))
    x = small.x_train / 255.0
    pixels = train["pixels"]
    assert pixels["mean"] == pytest.approx(x.mean()) and pixels["std"] == pytest.approx(x.std())
    assert (pixels["min"], pixels["max"]) == (x.min(), x.max())
    assert pixels["zero_share"] == pytest.approx(np.mean(small.x_train == 0))
    assert not facts["is_mnist"] and facts["checksum"] == small.checksum


def test_info_cli(tmp_path, capsys):
    assert main(["data", "info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["is_mnist"] and facts["name"] == "mnist"
    assert facts["splits"]["test"]["per_class"]["1"] == 1135
    assert facts["splits"]["train"]["pixels"]["mean"] == pytest.approx(0.1307, abs=1e-4)
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "official MNIST  yes" in out and "60000" in out and "28x28" in out
