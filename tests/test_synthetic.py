"""Tests for the procedural face generator, the offline stand-in for CelebA."""

import numpy as np
import pytest

from inpaintlib.data import synthetic_faces


@pytest.fixture(scope="module")
def batch():
    return synthetic_faces(64, image_size=64, seed=0)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shape_and_dtype(size):
    faces = synthetic_faces(3, image_size=size, seed=1)
    assert faces.shape == (3, size, size, 3)
    assert faces.dtype == np.uint8


def test_zero_faces():
    faces = synthetic_faces(0, image_size=32)
    assert faces.shape == (0, 32, 32, 3)
    assert faces.dtype == np.uint8


def test_deterministic_across_calls():
    np.testing.assert_array_equal(synthetic_faces(5, seed=7), synthetic_faces(5, seed=7))


@pytest.mark.parametrize("size", [33, 64])
def test_face_depends_only_on_seed_and_index(size):
    # More faces than one render chunk, so chunk boundaries fall in different places.
    whole = synthetic_faces(40, image_size=size, seed=3)
    np.testing.assert_array_equal(whole[5], synthetic_faces(1, image_size=size, seed=3, start=5)[0])
    tail = synthetic_faces(23, image_size=size, seed=3, start=17)
    np.testing.assert_array_equal(whole[17:40], tail)
    np.testing.assert_array_equal(whole[:10], synthetic_faces(10, image_size=size, seed=3))


def test_example_from_docstring():
    assert (synthetic_faces(10, seed=3)[5] == synthetic_faces(1, seed=3, start=5)[0]).all()


def test_seeds_give_different_faces():
    a, b = synthetic_faces(4, seed=0), synthetic_faces(4, seed=1)
    for x, y in zip(a, b):
        assert np.abs(x.astype(int) - y).mean() > 5


def test_faces_differ_within_a_batch(batch):
    flat = batch.reshape(len(batch), -1).astype(np.float32)
    dist = np.abs(flat[:, None] - flat[None]).mean(-1)
    off_diagonal = dist[~np.eye(len(batch), dtype=bool)]
    assert off_diagonal.min() > 3


def test_images_are_not_flat(batch):
    assert batch.reshape(len(batch), -1).std(1).min() > 10
    # Each image uses a good part of the intensity range.
    assert (batch.max((1, 2, 3)).astype(int) - batch.min((1, 2, 3)) > 80).all()


def test_face_centre_is_skin_and_differs_from_corners(batch):
    S = batch.shape[1]
    # Cheek below the eyes and beside the nose: always skin, never hair or background.
    cheek = batch[:, int(0.56 * S) : int(0.6 * S), int(0.34 * S) : int(0.38 * S)]
    cheek = cheek.reshape(len(batch), -1, 3).mean(1)
    r, g, b = cheek.T
    assert (r >= g - 5).all() and (g >= b - 5).all(), "skin is warm: R >= G >= B"
    assert (r - b > 15).all()
    corners = np.stack([batch[:, :4, :4], batch[:, :4, -4:]], 1).reshape(len(batch), -1, 3)
    assert (np.abs(cheek - corners.mean(1)).sum(1) > 10).mean() > 0.9


def test_sizes_render_the_same_face():
    # Same face at different resolutions: block-averaged down, they agree closely.
    big = synthetic_faces(4, image_size=128, seed=2).astype(np.float32)
    small = synthetic_faces(4, image_size=64, seed=2).astype(np.float32)
    down = big.reshape(4, 64, 2, 64, 2, 3).mean((2, 4))
    assert np.abs(down - small).mean() < 8


def test_statistics_are_plausible():
    faces = synthetic_faces(200, seed=4).astype(np.float32)
    assert 60 < faces.mean() < 190
    assert faces.std() > 30


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=-1),
        dict(n=2.0),
        dict(n="3"),
        dict(n=True),
        dict(n=1, image_size=7),
        dict(n=1, image_size=64.0),
        dict(n=1, seed=-1),
        dict(n=1, seed=1.5),
        dict(n=1, start=-2),
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="must be an integer"):
        synthetic_faces(**kwargs)


def test_numpy_integers_are_accepted():
    faces = synthetic_faces(
        np.int64(2), image_size=np.int32(16), seed=np.uint8(1), start=np.int64(3)
    )
    assert faces.shape == (2, 16, 16, 3)
