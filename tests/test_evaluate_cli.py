"""``mnistlab evaluate`` end to end on a small real data set: output, exit codes, bad files.

Only the judge loader is replaced (by a seeded, untrained classifier, so the tests need no
training); the data loading, the file handling and the metrics run for real.
"""

from __future__ import annotations

import gzip
import json
import re
import struct

import numpy as np
import pytest
import torch

from mnistlab import metrics, models
from mnistlab.cli import main
from mnistlab.commands import evaluate_cmd

KEYS = list(metrics.SCORE_KEYS)  # the JSON has the library's keys, in its order


def write_idx(path, array: np.ndarray) -> None:
    magic = 0x803 if array.ndim == 3 else 0x801
    header = struct.pack(">II", magic, len(array)) + b"".join(
        struct.pack(">I", s) for s in array.shape[1:]
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_dir(small, tmp_path_factory):
    """The ``small`` data set (600 + 200 digits) written as a folder of IDX files."""
    folder = tmp_path_factory.mktemp("small-idx")
    write_idx(folder / "train-images-idx3-ubyte.gz", small.x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", small.y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", small.x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", small.y_test)
    return folder


def seeded_judge():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return models.get_model("classifier")


@pytest.fixture(autouse=True)
def stand_in_judge(monkeypatch):
    judge = seeded_judge()
    monkeypatch.setattr(
        evaluate_cmd,
        "_load_judge",
        lambda dataset, version="v2": (judge, {"judge_id": "classifier-seed-0"}),
    )


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_exactly_the_metric_keys(capsys, tmp_path, data_dir, small):
    images = small.x_test[:40]
    np.save(tmp_path / "s.npy", images)
    code, out, _ = run(capsys, tmp_path / "s.npy", "--data", data_dir, "--json")
    assert code == 0
    scores = json.loads(out)
    assert list(scores) == [*KEYS, "ci"]
    # The keys other tools read, pinned here, not taken from the library:
    line = "n quality novelty diversity fid precision recall density coverage near_copy_rate ci"
    assert " ".join(scores) == line
    assert scores["n"] == 40
    # Every headline number but diversity has its 95% bootstrap interval around it.
    assert set(scores["ci"]) == set(KEYS) - {"n", "diversity"}
    for key, (lo, hi) in scores["ci"].items():
        assert lo <= scores[key] <= hi, key
    # The same numbers as the library gives.
    from mnistlab import data

    direct = metrics.Scorer(seeded_judge(), data.load(data_dir), judge_id="x", progress=False)
    theirs = direct.score(images).as_dict()
    for key, value in theirs.pop("ci").items():
        assert scores["ci"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    for key, value in theirs.items():
        assert scores[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_text_output_and_npz_forms(capsys, tmp_path, data_dir, small):
    images = (small.x_train[:30] / 255.0).astype(np.float32).reshape(30, 784)
    np.savez(tmp_path / "one.npz", whatever=images)
    np.savez(tmp_path / "named.npz", labels=np.zeros(30), samples=images)
    outs = []
    for name in ("one.npz", "named.npz"):
        code, out, _ = run(capsys, tmp_path / name, "--data", data_dir)
        assert code == 0
        outs.append(out)
    for key in KEYS:
        assert key in outs[0]
    assert "judge           classifier-seed-0" in outs[0]
    # Copies of training images: novelty 0, all near copies, the same numbers either way.
    assert "novelty         0.0000" in outs[0]
    assert "near_copy_rate  1.0000" in outs[0]
    assert outs[0].splitlines()[1:] == outs[1].splitlines()[1:]


def test_a_grey_page_is_named_on_stderr_and_nothing_else_changes(capsys, tmp_path, data_dir, small):
    # Judge v2 reads digits on a grey page as less sure (metrics.HAZE): evaluate says so on
    # stderr, so that a hazy generator's lower quality is not taken for worse digits, and the
    # JSON on stdout stays one object.
    clean = small.x_test[:40] / 255.0
    np.save(tmp_path / "clean.npy", clean.astype(np.float32))
    np.save(tmp_path / "hazy.npy", np.clip(clean + 0.05, 0, 1).astype(np.float32))
    code, out, err = run(capsys, tmp_path / "hazy.npy", "--data", data_dir, "--json", "--quiet")
    assert code == 0 and json.loads(out)["n"] == 40
    assert "background is not black (median pixel 0.050, real digits 0.000)" in err
    code, out, err = run(capsys, tmp_path / "clean.npy", "--data", data_dir, "--json", "--quiet")
    assert code == 0 and err == ""
    code, out, err = run(capsys, tmp_path / "hazy.npy", "--data", data_dir, "--judge", "v1")
    assert code == 0 and "background" not in err  # v1 barely minds a grey page
    page = tmp_path / "page"
    assert run(capsys, tmp_path / "hazy.npy", "--data", data_dir, "--report", page)[0] == 0
    html = (page / "report.html").read_text()
    assert html.index("<table") < html.index("The samples' background is not black")
    assert "background is not black" in json.loads((page / "metrics.json").read_text())["note"]


def test_binary_samples_are_named_on_stderr_and_in_the_report(
    capsys, monkeypatch, tmp_path, data_dir, small
):
    # Binary samples (every pixel 0 or 1) draw metrics.binary_note, beside the numbers. This
    # test's small judge may lose less quality to binarising than BINARY_GAP: the wiring is
    # tested here, the note's figures with the shipped judge in test_judge_check.
    monkeypatch.setattr(metrics, "BINARY_GAP", -1.0)
    binary = (small.x_test[:40] > 127).astype(np.uint8) * 255
    np.save(tmp_path / "binary.npy", binary)
    code, out, err = run(capsys, tmp_path / "binary.npy", "--data", data_dir, "--json", "--quiet")
    assert code == 0 and json.loads(out)["n"] == 40
    assert err.startswith("note: The samples are binary (every pixel 0 or 1)")
    np.save(tmp_path / "grey.npy", small.x_test[:40])
    assert run(capsys, tmp_path / "grey.npy", "--data", data_dir, "--json", "--quiet")[2] == ""
    page = tmp_path / "page"
    assert run(capsys, tmp_path / "binary.npy", "--data", data_dir, "--report", page)[0] == 0
    assert "samples are binary" in json.loads((page / "metrics.json").read_text())["note"]


def save_object_array(path):
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


BAD_FILES = {
    "wrong-shape.npy": (lambda p: np.save(p, np.zeros((10, 27, 27), np.float32)), "shape"),
    "nan.npy": (lambda p: np.save(p, np.full((10, 784), np.nan, np.float32)), "NaN"),
    "range.npy": (lambda p: np.save(p, np.full((10, 784), 2.0, np.float32)), "in \\[0, 1\\]"),
    "empty.npy": (lambda p: np.save(p, np.zeros((0, 28, 28), np.uint8)), "no images"),
    "zero-bytes.npy": (lambda p: p.write_bytes(b""), "not a .npy file"),
    "text.npy": (lambda p: p.write_text("hello"), "not a .npy file"),
    "text.npz": (lambda p: p.write_text("hello"), "not a .npz file"),
    "objects.npy": (save_object_array, "pickled"),
    "two.npz": (lambda p: np.savez(p, a=np.zeros((10, 784)), b=np.zeros(3)), "found a, b"),
    "images.txt": (lambda p: p.write_text("0 0 0"), "expected a .npy, .npz or .safetensors"),
    "few.npy": (lambda p: np.save(p, np.zeros((3, 784), np.float32)), "at least 6 images"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_give_one_error_line(capsys, tmp_path, data_dir, name):
    make, message = BAD_FILES[name]
    make(tmp_path / name)
    code, out, err = run(capsys, tmp_path / name, "--data", data_dir, "--json")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnistlab: error: ")
    assert re.search(message, lines[0]), lines[0]


def test_missing_file(capsys, tmp_path, data_dir):
    code, _, err = run(capsys, tmp_path / "nope.npy", "--data", data_dir)
    assert code == 2
    assert err.strip() == f"mnistlab: error: samples file not found: {tmp_path / 'nope.npy'}"


def test_report_shows_the_samples_before_the_numbers(capsys, tmp_path, data_dir, small):
    np.save(tmp_path / "s.npy", small.x_train[:30])
    out = tmp_path / "page"
    code, stdout, err = run(capsys, tmp_path / "s.npy", "--data", data_dir, "--report", out)
    assert code == 0, err
    assert f"report          {out / 'report.html'}" in stdout
    html = (out / "report.html").read_text()
    assert html.index("<img") < html.index("<table") and "real: test vs train" in html
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["scores"]["near_copy_rate"] == 1.0  # training digits: every one a copy
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, tmp_path / "s.npy", "--data", data_dir, "--report", blocker)
    assert code == 2 and "is a file" in err and blocker.read_text() == "x"
