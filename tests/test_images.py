"""Digits from anywhere: every layout, type and file other tools write gives the same array."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file

from mnistlab import images, metrics
from mnistlab.errors import DataError


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    return mnist.x_test[:12]  # uint8 (12, 28, 28)


def layouts(x: np.ndarray) -> dict[str, object]:
    f = x.astype(np.float32) / 255
    return {
        "uint8 (N, 28, 28)": x,
        "uint8 (N, 784)": x.reshape(len(x), 784),
        "int64 0-255": x.astype(np.int64),
        "float (N, 1, 28, 28)": f[:, None],
        "float (N, 28, 28, 1)": f[..., None],
        "float64 list": f.astype(np.float64).tolist(),
        "torch uint8 (N, 1, 28, 28)": torch.from_numpy(x[:, None].copy()),
        "torch float (N, 28, 28)": torch.from_numpy(f),
    }


def test_every_layout_gives_the_same_images(digits):
    want = digits.astype(np.float32) / 255
    for name, x in layouts(digits).items():
        got = images.as_images(x, name)
        assert got.dtype == np.float32 and got.shape == (12, 28, 28), name
        np.testing.assert_allclose(got, want, atol=1e-7, err_msg=name)


def test_minus_one_to_one_only_when_said(digits):
    pm = digits.astype(np.float32) / 127.5 - 1
    with pytest.raises(DataError, match=r"\[-1, 1\], as tanh gives: say so, --range -1,1"):
        images.as_images(pm)
    # Floats on the 0-255 scale get their own hint, not the [-1, 1] one; a small overshoot its own
    with pytest.raises(DataError, match=r"found \[0, 255\] \(on the 0-255 scale: divide"):
        images.as_images(digits.astype(np.float32))
    with pytest.raises(DataError, match=r"divide them by 255 and drop --range -1,1"):
        images.as_images(digits.astype(np.float32), value_range="-1,1")
    with pytest.raises(DataError, match=r"found \[0, 1.02\] \(a little outside: clip them\)"):
        images.as_images(digits / 250.0)
    with pytest.raises(DataError, match=r"\(a little outside: clip them\)"):
        images.as_images(digits / 255.0 - 0.01)
    np.testing.assert_allclose(images.as_images(pm, value_range="-1,1"), digits / 255, atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (np.zeros((4, 32, 32), np.uint8), "got (4, 32, 32)"),
        (np.full((4, 784), 300, np.int64), "[0, 255], found [300, 300]"),
        (np.full((4, 784), -0.5, np.float32), "found [-0.5, -0.5]"),
        (np.full((2, 784), "a"), "dtype <U1"),
        (np.zeros((0, 28, 28), np.uint8), "no images"),
        (None, "no images given"),
    ],
)
def test_refusals_say_what_was_found(bad, fragment):
    with pytest.raises(DataError) as info:
        images.as_images(bad)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_files_and_folders_of_every_kind(tmp_path, digits):
    want = digits.astype(np.float32) / 255
    np.save(tmp_path / "a.npy", digits[:, None])
    np.savez(tmp_path / "b.npz", samples=digits.reshape(12, 784), labels=np.arange(12))
    save_file(
        {"images": digits.astype(np.float32)[..., None] / 255}, str(tmp_path / "c.safetensors")
    )
    grey, colour = tmp_path / "grey", tmp_path / "colour"
    grey.mkdir(), colour.mkdir()
    for i, d in enumerate(digits):
        Image.fromarray(d).save(grey / f"{i:03d}.png")
        Image.fromarray(np.stack([d] * 3, -1)).save(colour / f"{i:03d}.png")
    for path in ["a.npy", "b.npz", "c.safetensors", "grey", "colour"]:
        got = images.read_images(tmp_path / path)
        np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6, err_msg=path)


def test_pictures_as_other_tools_save_them_read_as_the_digits(tmp_path, digits):
    # 16-bit grey (OpenCV, Pillow from uint16), and transparent pages as drawing tools and
    # canvases export them: Pillow's convert("L") read the first as white blots (it clips at
    # 255) and black ink on a transparent page as blank pages.
    want = digits.astype(np.float32) / 255
    alpha = np.zeros((*digits.shape, 4), np.uint8)
    alpha[..., 3] = digits  # black ink, its strength in the alpha channel
    white = alpha.copy()
    white[..., :3] = 255  # white ink on a transparent page that is white underneath
    over_white = np.stack([255 - digits] * 3 + [np.where(digits > 0, 255, 0)], -1).astype(np.uint8)
    opaque = np.stack([digits] * 3 + [np.full_like(digits, 255)], -1)
    kinds = {
        "16-bit": lambda d, i: Image.fromarray(d.astype(np.uint16) * 257),
        "black ink on transparent": lambda d, i: Image.fromarray(alpha[i], "RGBA"),
        "white ink on transparent": lambda d, i: Image.fromarray(white[i], "RGBA"),
        "dark ink, a white transparent page": lambda d, i: Image.fromarray(over_white[i], "RGBA"),
        "white ink, grey and alpha": lambda d, i: Image.fromarray(
            np.stack([np.full_like(d, 255), d], -1), "LA"
        ),
        "opaque RGBA": lambda d, i: Image.fromarray(opaque[i], "RGBA"),
    }
    for name, picture in kinds.items():
        folder = tmp_path / name
        folder.mkdir()
        for i, d in enumerate(digits):
            picture(d, i).save(folder / f"{i:03d}.png")
        got = images.read_images(folder)
        np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6, err_msg=name)
    # An opaque picture reads exactly as its grey levels
    np.testing.assert_array_equal(images.read_images(tmp_path / "opaque RGBA"), want)


def test_three_channels_are_turned_grey_as_a_colour_picture_is(digits):
    # torchvision-style generators often give (N, 3, 28, 28): grey digits repeated to RGB read
    # exactly as the grey ones, in either channel order; colour ones as Pillow reads a colour
    # picture (ITU-R 601 luma), within its integer rounding.
    want = images.as_images(digits)
    rgb = np.stack([digits] * 3, 1)  # (N, 3, 28, 28) uint8
    np.testing.assert_array_equal(images.as_images(rgb), want)
    np.testing.assert_array_equal(images.as_images(np.moveaxis(rgb, 1, -1) / 255.0), want)
    np.testing.assert_array_equal(images.as_images(torch.from_numpy(rgb)), want)
    colour = np.stack([digits, digits // 2, digits // 3], -1)  # coloured ink, black page
    pillow = np.stack([np.asarray(Image.fromarray(c, "RGB").convert("L")) for c in colour])
    np.testing.assert_array_equal(images.as_images(colour), images.as_images(pillow))
    np.testing.assert_allclose(images.as_images(colour / 255.0), pillow / 255, atol=1 / 255)
    # Every channel is held to the value range before it is turned grey
    bad = rgb.astype(np.int32)
    bad[:, 0] = 300
    with pytest.raises(DataError, match=r"integer images must lie in \[0, 255\], found \[0, 300\]"):
        images.as_images(bad)
    with pytest.raises(DataError, match=r"found \[0, 2\]"):
        images.as_images(np.where(np.arange(3)[:, None, None] == 0, 2.0, rgb / 255.0))


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((5, 32, 32), r"MNIST padded by 2 px.*crop them to \[2:30, 2:30\]"),
        ((5, 1, 32, 32), r"crop them to \[2:30, 2:30\]"),
        ((5, 64, 64, 3), r"images of 64x64 pixels; resize \(or crop\) them to 28x28"),
        ((5, 4, 28, 28), r"2 or 4 channels \(grey or colour with alpha\?\)"),
        ((5, 28, 28, 2), r"2 or 4 channels"),
        ((5, 1024), r"reshape to \(N, 32, 32\), crop \[2:30, 2:30\]"),
        ((784,), r"one image\? give it as a stack of one"),
        ((28, 28, 3), r"one image\? give it as a stack of one"),
    ],
)
def test_other_sizes_and_channels_are_told_what_to_do(shape, fragment):
    with pytest.raises(DataError, match=fragment):
        images.as_images(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl"])
def test_pickles_are_refused_with_a_word_of_why(tmp_path, suffix):
    path = tmp_path / f"samples{suffix}"
    torch.save(torch.zeros(3, 28, 28), path)
    with pytest.raises(DataError, match="a pickle .* never loads, since a pickle can run code"):
        images.read_images(path)


def test_pictures_saved_with_a_colour_map_are_refused_with_why(tmp_path, digits):
    # matplotlib's imsave maps a 2-D array through viridis unless told cmap="gray": the luma of
    # its colours is not the digit's ink (the page read as 0.118), so such pictures are refused;
    # saved in grey they read as the digits.
    import matplotlib.pyplot as plt

    for cmap in (None, "gray"):
        folder = tmp_path / str(cmap)
        folder.mkdir()
        for i, d in enumerate(digits):
            plt.imsave(folder / f"{i:03d}.png", d, **({"cmap": cmap} if cmap else {}))
    with pytest.raises(
        DataError, match=r"12 of 12 on a coloured page \(000.png: RGB \(68, 1, 84\)\)"
    ):
        images.read_images(tmp_path / "None")
    # One such picture among grey ones is enough to refuse the folder, and it is named
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, d in enumerate(digits):
        plt.imsave(mixed / f"{i:03d}.png", d, **({} if i == 7 else {"cmap": "gray"}))
    with pytest.raises(DataError, match=r"1 of 12 on a coloured page \(007.png: RGB"):
        images.read_images(mixed)
    want = digits / 255.0
    np.testing.assert_allclose(images.read_images(tmp_path / "gray"), want, atol=1 / 255 + 1e-6)
    # The same in an array: a colour-mapped stack (N, 28, 28, 3) is refused as well
    mapped = plt.get_cmap("viridis")(digits)[..., :3]  # float RGB in [0, 1]
    with pytest.raises(
        DataError, match=r"12 of 12 on a coloured page \(image 0: RGB \(68, 1, 84\)"
    ):
        images.as_images(mapped)
    with pytest.raises(DataError, match=r"on a coloured page"):
        images.as_images((mapped * 255).round().astype(np.uint8))


def test_a_folder_without_images_says_what_it_found(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no image files .* found notes.txt"):
        images.read_images(tmp_path)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="32x32 pixels; expected 28x28"):
        images.read_images(tmp_path)


def test_scorer_takes_a_tensor(small):
    from mnistlab import models

    torch.manual_seed(0)
    scorer = metrics.Scorer(models.get_model("classifier"), small, judge_id="test", progress=False)
    x = small.x_test[:50]
    as_array = scorer.score(x).as_dict()
    as_tensor = scorer.score(torch.from_numpy(x.astype(np.float32) / 255)[:, None]).as_dict()
    ci_array, ci_tensor = as_array.pop("ci"), as_tensor.pop("ci")
    assert as_array == pytest.approx(as_tensor)
    assert {k: pytest.approx(v) for k, v in ci_array.items()} == ci_tensor


def test_data_finds_a_torchvision_download_root(tmp_path):
    import shutil

    from mnistlab import data

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in data.bundled_dir().glob("*.gz"):
        shutil.copy(f, raw / f.name)
    for folder in (tmp_path, tmp_path / "MNIST", raw):
        assert data.find_files(folder)["train-images"].parent == raw
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="also looked in MNIST/raw/ or raw/"):
        data.find_files(tmp_path / "empty")


def test_to_uint8_rounds_back_to_the_stored_levels(small):
    x = small.x_train[:20]  # uint8 (20, 28, 28)
    np.testing.assert_array_equal(images.to_uint8(images.as_images(x)), x)  # a round trip
    np.testing.assert_array_equal(images.to_uint8(x.reshape(20, 784)), x)  # any layout
    half = np.array([0.5 / 255, 1.5 / 255, 2.5 / 255, 1.0], dtype=np.float32)
    assert images.to_uint8(np.tile(half, 196).reshape(1, 28, 28))[0, 0, :4].tolist() == [
        0, 2, 2, 255,
    ]  # halves to even, as np.rint  # fmt: skip
    with pytest.raises(DataError):
        images.to_uint8(np.full((1, 28, 28), 1.5, dtype=np.float32))  # not in [0, 1]
