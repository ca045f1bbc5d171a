"""Projection distance, novelty's third opinion, on real digits: a training digit that lost its
detail (projected on a few principal components) stays next to its source on the training
digits' own components, closer than fresh digits by other writers come to any."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from mnistlab import perturb, projection, tangent
from mnistlab.errors import DataError
from mnistlab.neighbors import nearest


@pytest.fixture(scope="module")
def refs(mnist):
    # 3,000 training digits (uint8) and their index; 1,000 test digits (images, labels); 5,000
    # other training digits to fit the projections of the copies on (not the index's own
    # components).
    index = projection.ProjectionIndex.fit(mnist.x_train[:3000], mnist.y_train[:3000])
    fresh = (mnist.x_test[:1000], mnist.y_test[:1000])
    return mnist.x_train[:3000], index, fresh, mnist.x_train[3000:8000]


def _projected(images: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    pca = PCA(k, random_state=0).fit(other.reshape(len(other), 784) / 255.0)
    flat = images.reshape(len(images), 784) / 255.0
    return np.clip(pca.inverse_transform(pca.transform(flat)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("k", [20, 50])
def test_a_projected_training_digit_is_closer_to_its_source_than_fresh_digits_come(refs, k):
    images, index, (fresh, fresh_labels), other = refs
    source = np.arange(0, len(images), 6)
    copies = _projected(images[source], other, k)
    dist, near = index.distances(copies, index.labels[source])
    fresh_dist = index.distances(fresh, fresh_labels)[0]
    threshold = np.quantile(fresh_dist, 0.01, axis=1)[:, None]  # per projection size
    # At the smallest projection size the source is the nearest for (almost) every copy, where
    # pixel distance loses a fifth of the PCA-20 ones (measured: 100% against 80%).
    assert (near[0] == source).mean() >= 0.98
    if k == 20:
        pixels = images.reshape(-1, 784).astype(np.float32) / 255.0
        pixel_near = nearest(copies, pixels, 1)[1][:, 0]
        assert (near[0] == source).mean() > (pixel_near == source).mean() + 0.1
    # and at some size the copy lies closer than 99% of fresh digits do (91% and 99% measured).
    assert (dist < threshold).any(0).mean() >= 0.85
    # A fresh digit that lost the same detail is no closer to the training digits for it.
    fresh_projected = index.distances(_projected(fresh, other, k), fresh_labels)[0]
    assert (fresh_projected < threshold).any(0).mean() <= 0.05


def test_a_reference_is_at_distance_zero_from_itself_at_every_size(refs):
    images, index, _, _ = refs
    dist, near = index.distances(images[:50], index.labels[:50])
    assert dist.shape == near.shape == (len(projection.DIMS), 50)
    assert np.all(dist < 1e-3)
    assert np.all(near == np.arange(50))


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: torch.from_numpy(x.astype(np.float32) / 255.0)[:, None],
        lambda x: x.astype(np.int64),
        lambda x: x.reshape(len(x), 784),
    ],
    ids=["float tensor (N, 1, 28, 28)", "int64", "flat uint8"],
)
def test_every_form_of_the_same_images_gives_the_same_distances(refs, convert):
    _, index, (fresh, labels), _ = refs
    a = index.distances(fresh[:100], labels[:100])
    b = index.distances(convert(fresh[:100]), labels[:100])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)
    np.testing.assert_array_equal(a[1], b[1])


def test_a_subset_measures_in_units_among_its_own_rows(refs, rng):
    images, index, (fresh, labels), _ = refs
    rows = np.sort(rng.choice(len(images), 1000, replace=False))
    sub = index.subset(rows)
    np.testing.assert_array_equal(sub.codes, index.codes[rows])
    np.testing.assert_array_equal(sub.labels, index.labels[rows])
    np.testing.assert_allclose(sub.scale, projection.ProjectionIndex.scales(index.codes[rows]))
    # fewer references lie farther apart: each unit is at least the whole set's
    assert np.all(sub.scale >= index.scale[:, rows] - 1e-6)
    # its distances: the nearest of the subset, in the subset's units
    dist, near = sub.distances(fresh[:100], labels[:100])
    z = sub.encode(sub.mean, sub.components, fresh[:100])
    for j, d in enumerate(sub.sizes):
        for m in range(0, 100, 9):
            same = np.flatnonzero(sub.labels == labels[m])
            gaps = np.linalg.norm(sub.codes[same, :d] - z[m, :d], axis=1)
            assert near[j, m] == same[gaps.argmin()]
            np.testing.assert_allclose(dist[j, m], gaps.min() / sub.scale[j, near[j, m]], rtol=1e-4)


def test_a_small_subset_keeps_the_sizes_it_was_fitted_with(mnist):
    # 34 references: half of them (17) still measure at 16 and 32 components, the sizes the
    # test digits' distances were calibrated at.
    index = projection.ProjectionIndex.fit(mnist.x_train[:34], mnist.y_train[:34])
    half = index.subset(np.arange(17))
    assert index.sizes == half.sizes == (16, 32)
    assert half.scale.shape == (2, 17)
    assert half.distances(mnist.x_test[:5], mnist.y_test[:5])[0].shape == (2, 5)


def test_the_search_stays_within_the_class_it_is_given(refs):
    images, index, (fresh, labels), _ = refs
    dist, near = index.distances(fresh[:200], labels[:200])
    assert np.all(index.labels[near] == labels[:200])
    # Told another class, an image is measured against that class's digits: farther (in
    # another reference's unit, so not always, but nearly).
    other = (labels[:200] + 1) % 10
    far, far_near = index.distances(fresh[:200], other)
    assert np.all(index.labels[far_near] == other)
    assert (far > dist).mean() >= 0.95
    # A class the references lack: searched among all of them.
    only_some = index.subset(np.flatnonzero(index.labels != 3))
    threes = fresh[:200][labels[:200] == 3]
    _, alone_near = only_some.distances(threes, np.full(len(threes), 3))
    z = only_some.encode(only_some.mean, only_some.components, threes)
    for j, d in enumerate(only_some.sizes):
        everyone = nearest(np.ascontiguousarray(z[:, :d]), only_some.codes[:, :d].copy(), 1)[1]
        np.testing.assert_array_equal(alone_near[j], everyone[:, 0])
    with pytest.raises(DataError, match="a class for each of 200 queries, got 3"):
        index.distances(fresh[:200], labels[:3])


def test_the_sizes_fit_the_references(mnist):
    assert projection.dims(60_000) == projection.DIMS
    assert projection.dims(20) == (16, 19)
    assert projection.dims(17) == (16,)
    assert projection.dims(5) == (4,)
    index = projection.ProjectionIndex.fit(mnist.x_train[:20], mnist.y_train[:20])
    assert index.components.shape == (19, 784) and index.scale.shape == (2, 20)
    with pytest.raises(DataError, match="at least 2 reference images"):
        projection.ProjectionIndex.fit(mnist.x_train[:1], mnist.y_train[:1])
    with pytest.raises(DataError, match="a label for each of 20 images, got 19"):
        projection.ProjectionIndex.fit(mnist.x_train[:20], mnist.y_train[:19])


def test_a_noisy_copy_is_measured_with_its_noise_taken_out(refs):
    # Under noise of sd 0.3, a training digit's nearest reference on the components is still its
    # source (measured: 97.6% of these 500; 99.2% with the noise taken out), but the noise's
    # haze and spread kept most copies beyond 99% of clean fresh digits' distances (42% within
    # at some size; 92% with the noise taken out); fresh digits under the same noise stay far
    # (0.1%; 1.0%: clean ones 1.3%).
    images, index, (fresh, fresh_labels), _ = refs
    source = np.arange(0, len(images), 6)
    clean = index.distances(fresh, fresh_labels)[0]
    threshold = np.quantile(clean, 0.01, axis=1)[:, None]

    def noisy(x: np.ndarray) -> torch.Tensor:
        x = torch.tensor(x, dtype=torch.float32)[:, None] / 255.0
        return perturb.noise(x, torch.Generator().manual_seed(3), 0.3)

    copies, others = noisy(images[source]), noisy(fresh)
    level, other_level = tangent.noise_level(copies), tangent.noise_level(others)
    as_is = index.distances(copies, index.labels[source])[0]
    dist, near = index.distances(copies, index.labels[source], level)
    assert (near[0] == source).mean() >= 0.98
    within, within_as_is = (dist < threshold).any(0).mean(), (as_is < threshold).any(0).mean()
    assert within >= 0.85 and within >= within_as_is + 0.3
    fresh_dist = index.distances(others, fresh_labels, other_level)[0]
    assert (fresh_dist < threshold).any(0).mean() <= 0.02
    # A clean image (level 0) is measured as before, whatever form its level takes
    zero = np.zeros(len(fresh))
    for level in (zero, torch.from_numpy(zero).float()):
        np.testing.assert_array_equal(index.distances(fresh, fresh_labels, level)[0], clean)
    # and so is one beside noisy images in its batch
    mixed = torch.cat([copies[:50], torch.tensor(fresh[:50] / 255.0, dtype=torch.float32)[:, None]])
    labels = np.concatenate([index.labels[source[:50]], fresh_labels[:50]])
    levels = torch.cat([level[:50], torch.zeros(50)])
    np.testing.assert_array_equal(index.distances(mixed, labels, levels)[0][:, 50:], clean[:, :50])
    with pytest.raises(DataError, match="a noise level for each of 1000 images, got 3"):
        index.distances(fresh, fresh_labels, zero[:3])


def test_the_haze_comes_off_the_codes_as_it_would_off_the_pixels(refs):
    # The codes of (x - h) / (1 - 2 h), h = sd / sqrt(2 pi), computed on the codes: the same as
    # on the pixels, and the codes as they are where sd is 0.
    _, index, (fresh, _), _ = refs
    x = fresh[:50].reshape(50, 784).astype(np.float32) / 255.0
    sd = np.linspace(0.0, 0.3, 50)
    haze = (sd / np.sqrt(2 * np.pi))[:, None]
    expected = ((x - haze) / (1 - 2 * haze) - index.mean) @ index.components.T
    codes = index.encode(index.mean, index.components, x)
    got = projection._dehazed(codes, sd, index.mean, index.components)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got[0], codes[0])
