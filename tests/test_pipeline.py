"""The tf.data pipeline: shapes, dtypes, masking, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintlib.data import load_images, make_dataset
from inpaintlib.errors import DataError, MaskError
from inpaintlib.masks import eval_masks


@pytest.fixture(scope="module")
def faces():
    return load_images("synthetic", "train", image_size=32, limit=40)


def first_batches(dataset, n):
    return [tuple(np.asarray(t) for t in (masked, mask, target)) for (masked, mask), target in dataset.take(n)]


@pytest.mark.parametrize("kind", ["center", "random-box", "free-form"])
def test_batches_are_masked_images_masks_and_targets(faces, kind):
    dataset = make_dataset(faces, mask=kind, batch_size=8, seed=1)
    for masked, mask, target in first_batches(dataset, 3):
        assert masked.shape == (8, 32, 32, 3) and mask.shape == (8, 32, 32, 1) and target.shape == (8, 32, 32, 3)
        assert masked.dtype == mask.dtype == target.dtype == np.float32
        assert 0.0 <= target.min() and target.max() <= 1.0
        np.testing.assert_array_equal(masked, target * (1 - mask))
        assert mask.sum() > 0
        # Targets are real images of the set, in float.
        as_uint8 = np.round(target * 255).astype(np.uint8)
        assert all(any(np.array_equal(image, face) for face in faces) for image in as_uint8)


def test_training_pipeline_reshuffles_and_draws_fresh_masks(faces):
    batches = first_batches(make_dataset(faces, mask="random-box", batch_size=40, seed=3), 2)
    (_, mask_a, target_a), (_, mask_b, target_b) = batches
    assert not np.array_equal(target_a, target_b), "a new order each epoch"
    assert not np.array_equal(mask_a, mask_b), "fresh masks for every batch"


def test_same_seed_same_batches(faces):
    one = first_batches(make_dataset(faces, mask="free-form", batch_size=8, seed=7), 3)
    two = first_batches(make_dataset(faces, mask="free-form", batch_size=8, seed=7), 3)
    for a, b in zip(one, two):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    other = first_batches(make_dataset(faces, mask="free-form", batch_size=8, seed=8), 1)
    assert not np.array_equal(one[0][1], other[0][1])


def test_evaluation_pipeline_keeps_order_and_fixed_masks(faces):
    masks = eval_masks("free-form", len(faces), image_size=32)
    dataset = make_dataset(faces, mask=masks, batch_size=16, shuffle=False)
    batches = first_batches(dataset, 10)
    assert [len(b[0]) for b in batches] == [16, 16, 8], "one pass, last batch partial"
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), masks)
    np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), faces / np.float32(255))


def test_bad_pipeline_arguments(faces):
    with pytest.raises(MaskError, match="unknown mask kind"):
        make_dataset(faces, mask="blob")
    with pytest.raises(DataError, match="uint8 array"):
        make_dataset(faces.astype(np.float32))
    with pytest.raises(DataError, match="fixed masks must have shape"):
        make_dataset(faces, mask=np.zeros((3, 32, 32, 1)))
    with pytest.raises(DataError, match="batch_size must be at least 1"):
        make_dataset(faces, batch_size=0)


def test_skip_continues_the_same_stream_of_batches(faces):
    """What a resumed training run gets: batch k onwards of the uninterrupted run, holes included."""
    whole = make_dataset(faces, "free-form", batch_size=4, seed=3)
    expected = [batch for _, batch in zip(range(10), whole.as_numpy_iterator())][6:]
    resumed = make_dataset(faces, "free-form", batch_size=4, seed=3, skip=6)
    got = [batch for _, batch in zip(range(4), resumed.as_numpy_iterator())]
    for ((masked_a, masks_a), targets_a), ((masked_b, masks_b), targets_b) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(targets_b, targets_a)
        np.testing.assert_array_equal(masks_b, masks_a)
        np.testing.assert_array_equal(masked_b, masked_a)
    with pytest.raises(DataError, match="skip must be a number of batches, 0 or more, not -1"):
        make_dataset(faces, batch_size=4, skip=-1)
