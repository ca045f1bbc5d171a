"""What mnistlab survives, tried as a hostile user would. Read the test names as the list.

Each test goes through the real CLI (``mnistlab.cli.main``) and checks three things: the exit code
(2 for anything the user can fix), one line on stderr (never a traceback), and the state of the
disk afterwards: nothing half-written, nothing of the user's lost. Where a study would take
minutes, its ``run`` is replaced by a stand-in that records the call and returns at once; the
output folder handling, the writers and the error paths are the real ones.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mnistlab import data, store
from mnistlab.cli import main
from mnistlab.commands.options import SEED_MAX
from mnistlab.fileio import OutputFolder, atomic_write
from mnistlab.report.writers import write_csv, write_json


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x803 if array.ndim == 3 else 0x801
    header = struct.pack(">II", magic, len(array))
    header += b"".join(struct.pack(">I", s) for s in array.shape[1:])
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def idx_folder(folder: Path, ds: data.Dataset) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", ds.x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", ds.y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", ds.x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", ds.y_test)
    return folder


@pytest.fixture(scope="module")
def tiny_dir(mnist, tmp_path_factory) -> Path:
    """120 training and 40 test digits of the real MNIST as an IDX folder: trains in a second."""
    return idx_folder(tmp_path_factory.mktemp("tiny"), mnist.subset(n_train=120, n_test=40))


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert err.startswith("mnistlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---- a stand-in study: the real output handling around a run that takes no time ---------------


class StandIn:
    """Replaces the denoising study's ``run`` and the scaffold's ``write_outputs`` (through
    ``use_writer``); ``write`` uses the real writers."""

    def __init__(self, fail: BaseException | None = None, fail_in_write: bool = False) -> None:
        self.calls = 0
        self.fail, self.fail_in_write = fail, fail_in_write

    def run(self, config, context):
        self.calls += 1
        if self.fail is not None and not self.fail_in_write:
            raise self.fail
        return SimpleNamespace(levels=[], seconds=0.0, verdicts={})

    def write(self, result, out_dir):
        out = Path(out_dir)
        write_json(out / "metrics.json", {"study": "denoising", "levels": []})
        write_csv(out / "levels.csv", [{"noise": 0.5, "bce": 0.1}])
        atomic_write(out / "figures" / "curve.png", b"\x89PNG\r\n\x1a\n")
        if self.fail is not None:
            raise self.fail
        atomic_write(out / "report.html", b"<!doctype html><title>stand-in</title>")
        return out / "report.html"


@pytest.fixture
def stand_in(monkeypatch):
    from mnistlab.studies import denoising

    fake = StandIn()
    monkeypatch.setattr(denoising, "run", fake.run)
    use_writer(monkeypatch, fake.write)
    return fake


def use_writer(monkeypatch, write):
    """The scaffold writes a study's outputs with ``write(result, out_dir) -> report path``."""
    from mnistlab.studies import scaffold

    def write_outputs(module, study, result, out_dir):
        return [], write(result, out_dir)

    monkeypatch.setattr(scaffold, "write_outputs", write_outputs)


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_outputs_get_the_mode_the_umask_gives(
    capsys, tmp_path, stand_in, umask, file_mode, dir_mode
):
    out = tmp_path / "run"
    old = os.umask(umask)
    try:
        code, stdout, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    finally:
        os.umask(old)
    assert code == 0, err
    assert f"report: {out / 'report.html'}" in stdout
    for path in [out, *out.rglob("*")]:
        want = dir_mode if path.is_dir() else file_mode
        assert path.stat().st_mode & 0o777 == want, (path, oct(path.stat().st_mode))


def test_two_runs_in_the_same_second_get_two_folders(capsys, tmp_path, monkeypatch, stand_in):
    monkeypatch.chdir(tmp_path)
    with OutputFolder(None, "denoising") as first, OutputFolder(None, "denoising") as second:
        assert first != second  # both claimed at once, in the same second
    reports = []
    for _ in range(2):
        code, out, err = cli(capsys, "study", "denoising", "--quick")
        assert code == 0, err
        reports.append(out.split("report: ")[1].split("\n")[0])
    assert reports[0] != reports[1]
    assert all(Path(r).is_file() for r in reports)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert not [name for name in runs if name.startswith(".")]  # no temporary folders left


def test_out_that_is_a_file_fails_before_any_work(capsys, tmp_path, stand_in):
    blocker = tmp_path / "results"
    blocker.write_text("my notes")
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", blocker)
    one_line_error(code, err, str(blocker), "is a file")
    assert stand_in.calls == 0
    assert blocker.read_text() == "my notes"


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_out_that_cannot_be_written_fails_before_any_work(capsys, tmp_path, stand_in, where):
    # /proc refuses new folders even to root, for whom a chmod'ed folder is still writable.
    if where == "under-a-file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "run"
    else:
        out = Path("/proc/mnistlab-test/run")
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    one_line_error(code, err)
    assert stand_in.calls == 0


def test_a_failed_run_leaves_nothing(capsys, tmp_path, monkeypatch, stand_in):
    from mnistlab.errors import MnistlabError

    monkeypatch.chdir(tmp_path)
    stand_in.fail, stand_in.fail_in_write = MnistlabError("the model diverged"), True
    code, _, err = cli(capsys, "study", "denoising", "--quick")
    one_line_error(code, err, "the model diverged")
    assert list((tmp_path / "runs").iterdir()) == []  # neither the claimed name nor a half
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", tmp_path / "mine")
    one_line_error(code, err)
    assert not (tmp_path / "mine").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_failed_run_keeps_the_previous_results_and_a_good_one_replaces_only_its_own(
    capsys, tmp_path, stand_in
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("last week's report")
    (out / "thesis.tex").write_text("my thesis")  # not a file of the study's
    (out / "figures").mkdir()
    (out / "figures" / "old.png").write_bytes(b"old")
    before = tree(out)
    stand_in.fail, stand_in.fail_in_write = KeyboardInterrupt(), True
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    assert code == 130 and "interrupted" in err
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    stand_in.fail = None
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    assert code == 0, err
    after = tree(out)
    assert sorted(after) == [
        "figures/curve.png",  # figures/ is the study's: replaced whole
        "levels.csv",
        "metrics.json",
        "report.html",
        "thesis.tex",
    ]
    assert after["thesis.tex"] == b"my thesis"
    assert after["report.html"].startswith(b"<!doctype html>")


@pytest.mark.parametrize("where", ["dot", "symlink"])
def test_out_can_be_the_current_folder_or_a_symlink(capsys, tmp_path, monkeypatch, stand_in, where):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("keep")
    if where == "dot":
        monkeypatch.chdir(real)
        out = Path(".")
    else:
        out = tmp_path / "link"
        out.symlink_to(real, target_is_directory=True)
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in real.iterdir()) == [
        "figures",
        "keep.txt",
        "levels.csv",
        "metrics.json",
        "report.html",
    ]


def test_sigterm_unwinds_like_ctrl_c(capsys, tmp_path, monkeypatch, stand_in):
    import signal

    monkeypatch.chdir(tmp_path)

    def killed(result, out_dir):
        write_json(Path(out_dir) / "metrics.json", {})
        os.kill(os.getpid(), signal.SIGTERM)  # as `timeout` or `docker stop` would

    use_writer(monkeypatch, killed)
    code, _, err = cli(capsys, "study", "denoising", "--quick")
    assert code == 143 and err.strip() == "mnistlab: terminated"
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_full_disk_names_the_file_and_leaves_nothing(capsys, tmp_path, monkeypatch, stand_in):
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write(result, out_dir):
        write_json(Path(out_dir) / "metrics.json", {})
        atomic_write(Path(out_dir) / "report.html", full)

    use_writer(monkeypatch, write)
    out = tmp_path / "run"
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", out)
    one_line_error(code, err, "No space left on device", "report.html")
    assert list(tmp_path.iterdir()) == []


def test_folders_left_by_a_killed_run_are_swept(capsys, tmp_path, monkeypatch, stand_in):
    from mnistlab import fileio

    host = fileio._part_prefix().split("-")[1]
    run = tmp_path / "run"
    dead = run / f".part-{host}-999999999-abc"  # no such process on this host
    dead.mkdir(parents=True)
    (dead / "metrics.json").write_text("{")
    elsewhere = run / ".part-otherhost-1-abc"  # maybe alive on another machine: left alone
    elsewhere.mkdir()
    code, _, err = cli(capsys, "study", "denoising", "--quick", "--out", run)
    assert code == 0, err
    assert not dead.exists() and elsewhere.exists()
    # A killed default run: its claimed runs/<time>-<study> with a part-folder in it.
    monkeypatch.chdir(tmp_path)
    killed = tmp_path / "runs" / "20200101-000000-denoising"
    (killed / f".part-{host}-999999999-xyz").mkdir(parents=True)
    code, _, err = cli(capsys, "study", "denoising", "--quick")
    assert code == 0, err
    assert not killed.exists()


# ---- values out of range: refused when the line is parsed ------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "ae", "--seed", "-1"], "--seed"),
        (["train", "ae", "--seed", str(2**64)], "--seed"),
        (["study", "denoising", "--seed", "-1"], "--seed"),
        (["study", "generation", "--seed", str(SEED_MAX + 1)], "--seed"),
        (["train", "ae", "--latent-dim", "100000000"], "--latent-dim"),
        (["train", "ae", "--epochs", "0"], "--epochs"),
        (["train", "ae", "--noise", "9"], "--noise"),
        (["study", "generation", "--samples", "0"], "--samples"),
        (["judge", "check", "--n", "0"], "--n"),
        (["data", "download", "x", "--retries", "0"], "--retries"),
        (["study", "latent", "--latent-dims", "2,100000"], "integers 1-256"),
        (["study", "denoising", "--noise", "0.5,9"], "--noise"),
        (["trian"], "No such command"),
    ],
)
def test_values_out_of_range_are_one_line_at_parse_time(capsys, tmp_path, argv, fragment):
    code, _, err = cli(capsys, *argv)
    one_line_error(code, err, fragment)


# ---- hostile input files ---------------------------------------------------------------------


def npy_bytes(shape: tuple[int, ...], descr: str = "<f4", body: int = 64) -> bytes:
    """A .npy file whose header claims ``shape`` followed by only ``body`` bytes."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (117 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(body)


@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("huge.npy", lambda p: p.write_bytes(npy_bytes((10**15, 28, 28))), "more than the limit"),
        ("short.npy", lambda p: p.write_bytes(npy_bytes((100, 28, 28))), "truncated"),
        (
            "huge.npz",
            lambda p: _zip(p, "images.npy", npy_bytes((10**15, 784))),
            "more than the limit",
        ),
        ("UPPER.NPY", lambda p: p.write_bytes(_npy(np.zeros((3, 28, 28), np.uint8))), "at least 6"),
        ("folder.npy", lambda p: p.mkdir(), "is a folder"),
        (
            "just-over.npy",
            lambda p: p.write_bytes(_npy(np.full((8, 784), np.float32(1.0000001)))),
            "1.0000001",
        ),
    ],
)
def test_hostile_sample_files_are_one_line(capsys, tmp_path, tiny_dir, name, make, fragment):
    make(tmp_path / name)
    code, _, err = cli(capsys, "evaluate", tmp_path / name, "--data", tiny_dir)
    one_line_error(code, err, fragment)


def test_the_image_limit_can_be_raised(capsys, tmp_path, monkeypatch):
    from mnistlab.images import read_images as read_samples

    path = tmp_path / "s.npy"
    path.write_bytes(_npy(np.zeros((20, 28, 28), np.uint8)))
    monkeypatch.setenv("MNISTLAB_MAX_IMAGES", "10")
    code, _, err = cli(capsys, "evaluate", path)
    one_line_error(code, err, "MNISTLAB_MAX_IMAGES")
    monkeypatch.setenv("MNISTLAB_MAX_IMAGES", "20")
    assert read_samples(path).shape == (20, 28, 28)


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _zip(path: Path, member: str, payload: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, payload)


@pytest.mark.parametrize("command", ["info", "verify"])
def test_idx_header_whose_size_overflows_64_bits(capsys, tmp_path, tiny_dir, command):
    folder = tmp_path / "forged"
    shutil.copytree(tiny_dir, folder)
    # 2^32-1 images of 2^32-1 x 2^32-1 pixels: the product overflows 64 bits.
    forged = struct.pack(">IIII", 0x803, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(forged)
    code, _, err = cli(capsys, "data", command, "--data", folder)
    one_line_error(code, err, "train-images")


def test_verify_sees_a_file_changed_in_place_with_size_and_mtime_kept(capsys, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(data.bundled_dir(), folder)
    gz = folder / "t10k-labels-idx1-ubyte.gz"
    target = folder / "t10k-labels-idx1-ubyte"  # uncompressed: a byte changes, the size does not
    target.write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    assert cli(capsys, "data", "verify", "--data", folder)[0] == 0
    st = target.stat()
    with open(target, "r+b") as f:  # in place: same inode, same size
        f.seek(-1, os.SEEK_END)
        last = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([(last + 1) % 10]))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    code, out, _ = cli(capsys, "data", "verify", "--data", folder)
    assert code == 2 and "MISMATCH  t10k-labels" in out, out
    code, out, _ = cli(capsys, "data", "verify", "--data", folder, "--no-cache")
    assert code == 2 and "MISMATCH  t10k-labels" in out, out


def test_a_data_set_too_small_fails_before_training_naming_the_split(
    capsys, tmp_path, mnist, monkeypatch
):
    from mnistlab import training

    folder = idx_folder(tmp_path / "five", mnist.subset(n_train=40, n_test=5))
    np.save(tmp_path / "s.npy", mnist.x_test[:10])
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained a judge"))
    code, _, err = cli(capsys, "evaluate", tmp_path / "s.npy", "--data", folder)
    one_line_error(code, err, "the test split has 5 images", "at least 6")


# ---- the model cache -------------------------------------------------------------------------


def test_a_cache_that_is_a_file_fails_before_training(capsys, tmp_path, tiny_dir, monkeypatch):
    from mnistlab import training

    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNISTLAB_CACHE", str(blocker))
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained into no cache"))
    code, _, err = cli(capsys, "train", "ae", "--data", tiny_dir, "--epochs", "1")
    one_line_error(code, err, "model cache", "MNISTLAB_CACHE")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    "damage", [{"latent_dim": -5}, {"latent_dim": 10**8}, {"channels": []}, {"bogus": 1}]
)
def test_a_damaged_cache_entry_is_trained_again(capsys, tmp_path, tiny_dir, monkeypatch, damage):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    argv = ["train", "ae", "--data", tiny_dir, "--epochs", "1", "--latent-dim", "2"]
    assert cli(capsys, *argv)[0] == 0
    (entry,) = (tmp_path / "cache" / "models").glob("ae-*.json")
    meta = json.loads(entry.read_text())
    meta["config"] |= damage  # the weights' SHA-256 still matches
    entry.write_text(json.dumps(meta))
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "trained" in out and "from the cache" not in out
    said = [line for line in err.splitlines() if "damaged" in line]
    assert len(said) == 1 and str(entry.with_suffix("")) in said[0], err
    assert "Traceback" not in err
    code, out, err = cli(capsys, *argv)
    assert code == 0 and "from the cache" in out and "damaged" not in err


def test_train_out_checks_before_training(capsys, tmp_path, tiny_dir, monkeypatch):
    from mnistlab import training

    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained first"))
    (tmp_path / "x.json").mkdir()
    (tmp_path / "d.safetensors").mkdir()
    base = ["train", "ae", "--data", tiny_dir, "--epochs", "1", "--out"]
    code, _, err = cli(capsys, *base, tmp_path / "x.safetensors")
    one_line_error(code, err, "x.json is a folder")
    code, _, err = cli(capsys, *base, tmp_path / "d.safetensors")
    one_line_error(code, err, "d.safetensors is a folder")
    code, _, err = cli(capsys, *base, tmp_path)
    one_line_error(code, err, "must name a .safetensors file")
    assert ".part" not in err and ".tmp" not in err


@pytest.mark.slow
def test_two_processes_share_one_training(tmp_path, tiny_dir):
    env = os.environ | {"MNISTLAB_CACHE": str(tmp_path / "cache")}
    argv = [
        sys.executable,
        "-m",
        "mnistlab",
        "train",
        "ae",
        "--data",
        str(tiny_dir),
        "--epochs",
        "2",
        "--latent-dim",
        "3",
    ]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    said = sorted("from the cache" in out for out, _ in outs)
    assert said == [False, True], outs  # one trained, the other waited and loaded its model
    assert len(list((tmp_path / "cache" / "models").glob("ae-*.safetensors"))) == 1


def test_a_download_that_trickles_stops_at_the_deadline(capsys, tmp_path):
    import http.server
    import threading
    import time

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)  # each byte well within any per-request timeout
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    dest = tmp_path / "dl"
    try:
        t0 = time.monotonic()
        code, _, err = cli(
            capsys, "data", "download", dest, "--base-url", url, "--deadline", "1", "--no-progress"
        )
        elapsed = time.monotonic() - t0
    finally:
        server.shutdown()
        server.server_close()
    one_line_error(code, err, "within 1 s")
    assert elapsed < 10
    assert list(dest.iterdir()) == []  # nothing half-written


def test_store_load_model_of_a_damaged_sidecar_is_a_model_file_error(tmp_path):
    from mnistlab import models
    from mnistlab.errors import ModelFileError

    path = store.save_model(tmp_path / "m.safetensors", models.get_model("ae", latent_dim=2))
    meta = json.loads(store.sidecar(path).read_text())
    meta["config"]["latent_dim"] = 10**8
    store.sidecar(path).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="latent_dim"):
        store.load_model(path)


@pytest.mark.parametrize("damage", ["keys", "huge-header", "wrong-shape"])
def test_a_damaged_data_cache_entry_is_rebuilt(capsys, tmp_path, tiny_dir, monkeypatch, damage):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    assert cli(capsys, "data", "info", "--data", tiny_dir)[0] == 0
    (entry,) = (tmp_path / "cache" / "data").iterdir()
    if damage == "keys":
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps(meta | {"keys": 5}))
    elif damage == "huge-header":
        (entry / "train-images.npy").write_bytes(npy_bytes((10**15, 28, 28), "|u1"))
    else:
        np.save(entry / "train-images.npy", np.zeros((3, 5), np.uint8))
    code, out, err = cli(capsys, "data", "info", "--data", tiny_dir)
    assert code == 0, err
    assert "120" in out  # the right counts, from the files
    assert err.count("\n") == 1 and "damaged" in err and "rebuilding" in err
    code, _, err = cli(capsys, "data", "info", "--data", tiny_dir)
    assert code == 0 and err == ""  # rebuilt


def test_a_sidecar_with_broken_figures_is_trained_again(capsys, tmp_path, tiny_dir, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    argv = ["train", "ae", "--data", tiny_dir, "--epochs", "1", "--latent-dim", "2", "--quiet"]
    assert cli(capsys, *argv)[0] == 0
    (entry,) = (tmp_path / "cache" / "models").glob("ae-*.json")
    entry.write_text(json.dumps(json.loads(entry.read_text()) | {"test": {"mse": "x"}}))
    code, out, err = cli(capsys, *argv)
    assert code == 0 and "trained" in out, err
    assert err.count("\n") == 1 and "damaged" in err


def test_a_download_whose_headers_trickle_stops_at_the_deadline(capsys, tmp_path):
    import socket as socketlib
    import threading
    import time

    server = socketlib.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle():
        conn, _ = server.accept()
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n" * 100:
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    dest = tmp_path / "dl"
    t0 = time.monotonic()
    code, _, err = cli(
        capsys, "data", "download", dest, "--base-url", url, "--deadline", "1", "--retries", "1",
        "--no-progress",
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    stop.set()
    server.close()
    one_line_error(code, err, "within 1 s")
    assert elapsed < 5
    assert list(dest.iterdir()) == []
