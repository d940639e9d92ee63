"""The U-Net inpainter (Ronneberger et al., 2015), as in the original recipe.

Down: two 3x3 same-padded ReLU convolutions, then 2x2 max pooling, ``depth``
times, doubling the filters each time. Bottom: one more convolution block.
Up: 2x upsampling, concatenation with the encoder's maps of the same size, two
convolutions. Out: a 1x1 convolution with 3 filters and a sigmoid. Trained
with Adam on the mean squared error.

Two options, on by default, turn it into a coarse-to-fine inpainter that learns
faster (bench/time_to_quality.py measures by how much; both off, with the MSE
loss, is the original recipe):

- ``smooth_start``: the hole arrives filled by :class:`~inpaintlib.smooth_fill.SmoothFill`
  instead of grey, and the network learns a correction of that fill (added to
  its logit, from zero at the start), so an untrained network already fills
  as well as smooth interpolation does;
- ``keep_known``: the known pixels pass through to the output, as they do when
  the fill is used, so a loss on the output is a loss on the hole alone.
"""

from __future__ import annotations

import keras
from keras import layers

from inpaintlib.errors import ConfigError
from inpaintlib import smooth_fill
from inpaintlib.smooth_fill import corrected_fill


def build_unet(image_size: int = 64, base_filters: int = 32, depth: int = 3, mask_channel: bool = True,
               smooth_start: bool = True, keep_known: bool = True, smooth_refine_steps: int = 0) -> keras.Model:
    """Build (uncompiled) a U-Net that maps a masked image and its mask to a full image.

    Parameters
    ----------
    image_size : int
        Side of the square input; must be divisible by ``2 ** depth``.
    base_filters : int
        Filters of the first level; each level down doubles them.
    depth : int
        Number of poolings (levels below the input resolution).
    mask_channel : bool
        Give the network the mask as a 4th input channel. False reproduces the
        original recipe exactly: the network sees only the image with a blank hole
        and must find the hole itself.
    smooth_start : bool
        Start from a smooth fill of the hole and learn its correction (see above).
    keep_known : bool
        Output the known pixels as given, the network's prediction only in the hole.
    smooth_refine_steps : int
        The smooth fill's ``refine_steps`` (:class:`~inpaintlib.smooth_fill.SmoothFill`): a start
        closer to the biharmonic fill on thin holes, for a little more time per step.

    Returns
    -------
    keras.Model
        Inputs ``(masked_image, mask)``, float32 (B, S, S, 3) and (B, S, S, 1);
        output (B, S, S, 3) in [0, 1], the full predicted image (composited
        only with ``keep_known``).

    Examples
    --------
    >>> model = build_unet(image_size=32, base_filters=8, depth=2)
    >>> model.output_shape
    (None, 32, 32, 3)
    """
    if depth < 1 or base_filters < 1:
        raise ConfigError(f"depth and base_filters must be at least 1, not {depth} and {base_filters}")
    if image_size % 2**depth:
        raise ConfigError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}: lower the depth")

    masked_image = keras.Input((image_size, image_size, 3), name="masked_image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    start = smooth_fill.smooth_start(masked_image, mask, smooth_start, smooth_refine_steps)
    x = layers.Concatenate(name="image_and_mask")([start, mask]) if mask_channel else start

    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = MaxPool2x2(name=f"down{level}_pool")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottom")
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = _conv_block(x, base_filters * 2**level, f"up{level}")
    # float32 output even under mixed precision, so the loss and the images stay exact.
    if smooth_start:
        output = corrected_fill(x, start)
    else:
        output = layers.Conv2D(3, 1, activation="sigmoid", dtype="float32", name="image")(x)
    if keep_known:
        output = output * mask + masked_image * (1.0 - mask)
    return keras.Model([masked_image, mask], output, name="unet")


def receptive_field(depth: int) -> int:
    """Side, in input pixels, of the window one unit at the bottom of a U-Net of ``depth`` levels sees.

    Each 3x3 convolution widens the window by 2 units of the current resolution
    and each pooling doubles the size of a unit: the reason a deeper U-Net can
    fill the middle of a large hole from context far away.

    Examples
    --------
    >>> [receptive_field(d) for d in (1, 2, 3)]
    [14, 32, 68]
    """
    field, unit = 1, 1
    for _ in range(depth):
        field += 2 * 2 * unit  # two 3x3 convolutions
        field += unit  # a 2x2 pooling
        unit *= 2
    return field + 2 * 2 * unit  # the bottom block


@keras.saving.register_keras_serializable(package="inpaintlib")
class MaxPool2x2(layers.Layer):
    """2x2 max pooling with stride 2: the same output as ``layers.MaxPooling2D(2)``.

    Written as a reshape and a max because XLA on a CPU runs MaxPooling2D's gradient
    (a select-and-scatter) about 8x slower than this one (a comparison): a tenth of
    a U-Net training step (bench/train.py). Where maxima tie, the gradient is shared
    between them instead of going to the first; after a ReLU the ties are zeros,
    whose gradient the ReLU stops anyway.
    """

    def call(self, x):
        _, height, width, channels = x.shape  # static: build_unet checks they are even
        windows = keras.ops.reshape(x, (-1, height // 2, 2, width // 2, 2, channels))
        return keras.ops.max(windows, axis=(2, 4))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return batch, height // 2, width // 2, channels


def _conv_block(x, filters: int, name: str):
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    return x
