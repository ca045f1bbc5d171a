"""The changes that keep a digit the same digit, the non-digits, and the canonical form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistlab import perturb
from mnistlab.errors import DataError
from mnistlab.models.classifier import canonicalise


@pytest.fixture(scope="module")
def digits(small):
    return torch.from_numpy(small.x_train[:64].astype(np.float32) / 255.0)[:, None]


def test_random_views_stay_images_and_are_seeded(digits):
    a = perturb.random_view(digits, torch.Generator().manual_seed(3))
    b = perturb.random_view(digits, torch.Generator().manual_seed(3))
    assert a.shape == digits.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, digits)  # the views are changed digits, not the digits


def test_shift_moves_ink_by_whole_pixels(digits):
    moved = perturb.shift(digits, 2, (1, 0))
    np.testing.assert_array_equal(moved[:, :, 2:].numpy(), digits[:, :, :-2].numpy())
    assert float(moved[:, :, :2].abs().sum()) == 0.0


def test_canonical_form_undoes_shifts_and_contrast_exactly(digits):
    base = canonicalise(digits)
    # MNIST digits are already centred and bright: the canonical form barely touches them.
    assert float((base - digits).abs().max()) <= 1 / 255 + 1e-6
    for direction in ((0, 1), (1, 0), (-1, 0), (0, -1)):
        back = canonicalise(perturb.shift(digits, 1, direction))
        same = (back - base).abs().amax((1, 2, 3)) < 1e-6
        assert float(same.float().mean()) >= 0.9
    faint = canonicalise(perturb.contrast(digits, 0.5))
    assert float((faint - base).abs().max()) < 0.01


def test_blur_preserves_ink_and_thickness_changes_it(digits):
    ink = digits.sum((1, 2, 3))
    blurred = perturb.blur(digits, 1.0)
    np.testing.assert_allclose(blurred.sum((1, 2, 3)).numpy(), ink.numpy(), rtol=0.05)
    assert bool((perturb.dilate(digits).sum((1, 2, 3)) > ink).all())
    assert bool((perturb.erode(digits).sum((1, 2, 3)) < ink).all())


@pytest.mark.parametrize("kind", list(perturb.NON_DIGITS))
def test_every_non_digit_kind_is_a_seeded_image_set(kind, small):
    a = perturb.non_digits(kind, 20, 0, small.x_test, small.y_test)
    b = perturb.non_digits(kind, 20, 0, small.x_test, small.y_test)
    assert a.shape == (20, 28, 28) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)


def test_overlaid_digits_are_of_two_different_classes(small):
    x = perturb.non_digits("two digits overlaid", 50, 1, small.x_test, small.y_test)
    single = small.x_test.astype(np.float32) / 255
    # Each overlay holds more ink than any single digit it could be a copy of.
    assert x.reshape(50, -1).sum(1).mean() > 1.3 * single.reshape(len(single), -1).sum(1).mean()


def test_outlier_batches_mix_every_kind(small):
    d = torch.from_numpy(small.x_test[:100].astype(np.float32) / 255)[:, None]
    y = torch.from_numpy(small.y_test[:100].astype(np.int64))
    out = perturb.outliers(130, torch.Generator().manual_seed(0), d, y)
    assert out.shape == (130, 1, 28, 28)
    blank = (out.amax((1, 2, 3)) - out.amin((1, 2, 3))) == 0
    assert 0 < float(blank.float().mean()) < 0.2  # the flat pages are one kind among many


def test_unknown_or_underfed_kinds_are_refused():
    with pytest.raises(DataError, match="unknown kind"):
        perturb.non_digits("fish", 3, 0)
    with pytest.raises(DataError, match="needs real digits"):
        perturb.non_digits("fragments", 3, 0)
