"""The U-Net: the original recipe's layers, the mask channel option, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintlib.errors import ConfigError
from inpaintlib.unet import MaxPool2x2, build_unet


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


ORIGINAL = {"smooth_start": False, "keep_known": False}  # the original recipe's network


def test_original_recipe_layers():
    model = build_unet(image_size=32, base_filters=8, depth=3, **ORIGINAL)
    types = layer_types(model)
    assert types.count("MaxPool2x2") == 3 and types.count("UpSampling2D") == 3
    assert types.count("Conv2D") == 2 * 3 + 2 + 2 * 3 + 1, "two convolutions per level, the bottom block, the output"
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" and c.activation.__name__ == "relu" for c in convs[:-1])
    out = convs[-1]
    assert out.filters == 3 and out.activation.__name__ == "sigmoid"
    assert [c.filters for c in convs[:8]] == [8, 8, 16, 16, 32, 32, 64, 64], "filters double at each level"
    skip_sizes = [layer.output.shape[1] for layer in model.layers if layer.name.endswith("_skip")]
    assert skip_sizes == [8, 16, 32], "the decoder concatenates the encoder's maps of the same size"


@pytest.mark.parametrize("jit_compile", [False, True])
def test_pooling_matches_keras_max_pooling_and_its_gradient(jit_compile):
    """MaxPool2x2 is MaxPooling2D(2) with a gradient XLA computes fast: same output, same gradient
    (random inputs have no tied maxima), eagerly and under XLA."""
    import keras
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 3, 3)).astype(np.float32))

    @tf.function(jit_compile=jit_compile)
    def value_and_gradient(pool, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = pool(x)
            loss = tf.reduce_sum(y * weights)
        return y, tape.gradient(loss, x)

    ours, our_gradient = value_and_gradient(MaxPool2x2(), x)
    keras_pool, keras_gradient = value_and_gradient(keras.layers.MaxPooling2D(2), x)
    np.testing.assert_array_equal(ours.numpy(), keras_pool.numpy())
    np.testing.assert_allclose(our_gradient.numpy(), keras_gradient.numpy(), rtol=1e-6)
    assert np.count_nonzero(our_gradient.numpy()) == ours.numpy().size, "one maximum per window takes the gradient"


def test_output_is_an_image_in_unit_range():
    model = build_unet(image_size=32, base_filters=4, depth=2)
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    masks = np.zeros((2, 32, 32, 1), np.float32)
    output = model.predict([images, masks], verbose=0)
    assert output.shape == (2, 32, 32, 3) and output.dtype == np.float32
    assert 0 <= output.min() and output.max() <= 1


def test_mask_channel_off_ignores_the_mask():
    """Without the mask channel the network sees only the blanked image (the original recipe)."""
    with_mask = build_unet(image_size=16, base_filters=4, depth=1, mask_channel=True, **ORIGINAL)
    without = build_unet(image_size=16, base_filters=4, depth=1, mask_channel=False, **ORIGINAL)
    assert with_mask.get_layer("down0_conv0").kernel.shape[2] == 4
    assert without.get_layer("down0_conv0").kernel.shape[2] == 3
    images = np.full((1, 16, 16, 3), 0.3, np.float32)
    a = without.predict([images, np.zeros((1, 16, 16, 1), np.float32)], verbose=0)
    b = without.predict([images, np.ones((1, 16, 16, 1), np.float32)], verbose=0)
    np.testing.assert_array_equal(a, b)


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError, match="must be divisible by 2\\*\\*depth = 16: lower the depth"):
        build_unet(image_size=40, depth=4)
    with pytest.raises(ConfigError, match="at least 1"):
        build_unet(depth=0)


def test_smooth_start_begins_at_the_smooth_fill_and_keep_known_passes_known_pixels():
    from inpaintlib.masks import eval_masks
    from inpaintlib.smooth_fill import SmoothFill

    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    masks = eval_masks("free-form", 2, 32)
    masked = images * (1 - masks)
    model = build_unet(image_size=32, base_filters=4, depth=2, smooth_start=True, keep_known=True)
    output = model.predict([masked, masks], verbose=0)
    np.testing.assert_array_equal(output * (1 - masks), masked, err_msg="known pixels as given")
    smooth = np.clip(np.asarray(SmoothFill()([masked, masks])), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(output * masks, smooth * masks, atol=1e-5, err_msg="untrained: the smooth fill")
    plain = build_unet(image_size=32, base_filters=4, depth=2, smooth_start=False).predict([masked, masks], verbose=0)
    assert np.abs(plain - output).max() > 0.05, "without the smooth start the hole is the network's own guess"
