"""Classical baselines: the inpaint contract, fills that are close on smooth images, lookup by name."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintlib.baselines import BASELINES, INPAINT_RADIUS, Baseline, MeanFill, get_baseline
from inpaintlib.data import load_images
from inpaintlib.errors import ConfigError, DataError
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import composite, evaluate, l1_hole

N = 6


@pytest.fixture(scope="module")
def faces():
    return load_images("synthetic", "test", image_size=64, limit=N)


@pytest.fixture(scope="module")
def holes():
    return eval_masks("center", N, 64)


@pytest.fixture
def smooth():
    """Smooth colour ramps with a small hole: easy to fill from the border."""
    y, x = np.mgrid[0:64, 0:64] / 63
    ramps = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * np.sin(2 * x + y)], -1)
    images = np.stack([ramps, ramps[::-1], ramps[:, ::-1]]).astype(np.float32)
    masks = np.zeros((3, 64, 64, 1), np.float32)
    masks[:, 28:36, 26:34] = 1
    return images, masks


@pytest.mark.parametrize("name", BASELINES)
def test_output_shape_dtype_range_and_known_pixels(name, faces, holes):
    method = get_baseline(name)
    assert isinstance(method, Baseline) and method.name == name
    images = faces.astype(np.float32) / 255
    filled = method.inpaint(images * (1 - holes), holes)
    assert filled.shape == images.shape and filled.dtype == np.float32
    assert filled.min() >= 0 and filled.max() <= 1
    known = np.broadcast_to(holes == 0, images.shape)
    np.testing.assert_array_equal(filled[known], images[known])
    np.testing.assert_array_equal(composite(filled, images, holes), filled)
    # What was under the hole is ignored, and uint8 input works the same.
    np.testing.assert_array_equal(method.inpaint(images, holes), filled)
    np.testing.assert_allclose(method.inpaint(faces, holes), filled, atol=1e-6)


@pytest.mark.parametrize("name", ["telea", "navier-stokes", "biharmonic"])
def test_smooth_images_are_filled_closely(name, smooth):
    images, masks = smooth
    filled = get_baseline(name).inpaint(images * (1 - masks), masks)
    errors = l1_hole(filled, images, masks)
    assert (errors < 0.02).all(), errors  # 5 grey levels in 255
    assert (errors < l1_hole(MeanFill().inpaint(images, masks), images, masks) / 2).all()


def test_mean_fill_is_the_mean_of_the_known_pixels(faces, holes):
    filled = MeanFill().inpaint(faces, holes)
    for image, mask, result in zip(faces / 255, holes, filled):
        expected = image[mask[..., 0] == 0].mean(axis=0)
        np.testing.assert_allclose(result[mask[..., 0] == 1], np.broadcast_to(expected, (32 * 32, 3)), atol=1e-6)


def test_baselines_are_deterministic_under_evaluate(faces, holes):
    result = evaluate(get_baseline("telea"), faces, holes, diversity_images=4)
    assert result["diversity"] == 0.0 and result["n"] == N


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        get_baseline("patchmatch")
    for name in ("telea", "navier-stokes", "biharmonic", "mean"):
        assert name in str(error.value)
    assert set(BASELINES) == {"telea", "navier-stokes", "biharmonic", "mean"}
    assert INPAINT_RADIUS == 3


def test_bad_input_raises_data_error(faces, holes):
    telea = get_baseline("telea")
    with pytest.raises(DataError, match="whole image"):
        telea.inpaint(faces, np.ones_like(holes))
    with pytest.raises(DataError, match="shape"):
        telea.inpaint(faces, holes[:, :32])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        telea.inpaint(faces.astype(np.float32), holes)
