"""The smooth fill: known pixels kept, smooth surfaces rebuilt, close to the biharmonic fill."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintlib.baselines import Biharmonic
from inpaintlib.data import load_images
from inpaintlib.errors import ConfigError
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import psnr_hole
from inpaintlib.smooth_fill import SmoothFill


def fill(images, masks, **options):
    return np.asarray(SmoothFill(**options)([images * (1 - masks), masks]))


def test_known_pixels_are_kept_and_a_linear_ramp_is_rebuilt():
    """A biharmonic surface through a plane is the plane: the fill must find it in the hole."""
    ramp = np.linspace(0.1, 0.9, 64, dtype=np.float32)
    images = np.broadcast_to((ramp[:, None] + ramp[None, :])[None, ..., None] / 2, (2, 64, 64, 3)).copy()
    masks = eval_masks("center", 2, 64, hole=0.5)
    filled = fill(images, masks)
    np.testing.assert_array_equal(filled * (1 - masks), images * (1 - masks))
    assert np.abs(filled - images).max() < 0.03, "the plane is rebuilt inside a 32x32 hole"
    assert np.abs(filled - images).max() < np.abs(fill(images, masks, steps_per_level=0) - images).max() / 2, \
        "relaxing is what smooths the pyramid's guess"


@pytest.mark.parametrize("kind", ["center", "random-box", "free-form"])
def test_close_to_the_biharmonic_fill_on_faces(kind):
    faces = load_images("synthetic", "test", image_size=64, limit=24).astype(np.float32) / 255
    masks = eval_masks(kind, len(faces), 64)
    ours = psnr_hole(np.clip(fill(faces, masks), 0, 1), faces, masks).mean()
    biharmonic = psnr_hole(Biharmonic().inpaint(faces, masks), faces, masks).mean()
    assert ours > biharmonic - 1.5, f"{ours:.2f} dB against the biharmonic fill's {biharmonic:.2f}"


def biharmonic_energy(images):
    """The sum of the squared 5-point Laplacian over the interior: what the biharmonic fill minimises."""
    laplacian = (images[:, :-2, 1:-1] + images[:, 2:, 1:-1] + images[:, 1:-1, :-2] + images[:, 1:-1, 2:]
                 - 4 * images[:, 1:-1, 1:-1])
    return float(np.square(laplacian).sum())


def test_refining_reaches_the_biharmonic_fill_on_thin_strokes():
    """On strokes a few pixels wide the gradient steps barely move; conjugate gradients converge."""
    faces = load_images("synthetic", "test", image_size=64, limit=8).astype(np.float32) / 255
    masks = eval_masks("free-form", len(faces), 64, hole=0.25)
    plain, refined = fill(faces, masks), fill(faces, masks, refine_steps=10)
    np.testing.assert_array_equal(refined * (1 - masks), faces * (1 - masks))
    assert biharmonic_energy(refined) < biharmonic_energy(plain), "each conjugate-gradient step lowers it"
    target = Biharmonic().inpaint(faces, masks)
    gap = {name: np.abs(out - target)[masks[..., 0] > 0].mean() for name, out in
           (("plain", plain), ("refined", refined))}
    assert gap["refined"] < gap["plain"] / 2, gap


@pytest.mark.parametrize("option", [{"steps_per_level": -1}, {"refine_steps": 2.5}])
def test_a_negative_or_fractional_step_count_is_refused(option):
    with pytest.raises(ConfigError, match=next(iter(option))):
        SmoothFill(**option)


def test_a_model_with_the_fill_saves_and_loads(tmp_path):
    import keras

    masked, mask = keras.Input((32, 32, 3)), keras.Input((32, 32, 1))
    model = keras.Model([masked, mask], SmoothFill(steps_per_level=3, refine_steps=2)([masked, mask]))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert (loaded.layers[-1].steps_per_level, loaded.layers[-1].refine_steps) == (3, 2)
    images = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    masks = eval_masks("free-form", 1, 32)
    np.testing.assert_allclose(loaded.predict([images * (1 - masks), masks], verbose=0),
                               fill(images, masks, steps_per_level=3, refine_steps=2), atol=1e-6)
