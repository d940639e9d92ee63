"""A smooth fill computed inside a network: the coarse stage of a coarse-to-fine inpainter.

A network that starts from a grey hole spends its first training minutes
learning what smooth interpolation gets for free: on thin strokes every
missing pixel has known neighbours, and the biharmonic fill is hard to beat.
:class:`.SmoothFill` gives the network that start. It is a Keras layer with no
weights, built from pooling, resizing and one fixed convolution, so it runs
wherever the network runs (CPU, GPU, an exported ONNX model) and costs a few
milliseconds per 64x64 image:

1. **pull** (Gortler et al., 1996): average the known pixels into a pyramid
   down to one pixel; a coarse cell is known where any of its pixels is;
2. **push**: from the coarsest level up, fill each level's unknown cells
   with the bilinear upsampling of the level below;
3. **relax**: at each level, a few gradient steps on the biharmonic energy
   ``|laplacian(u)|^2`` over the unknown cells, which turns the pyramid's
   blocky guess into the smooth surface scikit-image's biharmonic fill
   solves for exactly (a multigrid cascade: the coarse levels carry the
   low frequencies that single-level relaxation would take thousands of
   steps to spread);
4. **refine** (optional, ``refine_steps``): conjugate-gradient steps on the
   finest level's biharmonic system, which converge where plain gradient steps
   crawl: in a hole a few pixels wide, 20 gradient steps barely move the
   surface, while 10 conjugate-gradient steps come within 0.05 dB of the
   biharmonic fill on free-form strokes of a quarter of the side (0.2 dB at
   half), for about 1.5 ms more per image.

With 20 steps per level it scores within 0.7 dB of
:class:`inpaintlib.baselines.Biharmonic`'s hole PSNR on 64x64 faces, and above
it on small centre holes (200 validation faces of the CelebA sample, the six
conditions of bench/time_to_quality.py), at about 3.5 ms per image on a 2-core CPU inside
the network's own graph.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from inpaintlib.errors import ConfigError

#: The 13-point stencil of the biharmonic operator (the Laplacian applied twice).
_BILAPLACIAN = np.array(
    [[0, 0, 1, 0, 0], [0, 2, -8, 2, 0], [1, -8, 20, -8, 1], [0, 2, -8, 2, 0], [0, 0, 1, 0, 0]], np.float32
)
#: The 5-point Laplacian: applied twice, with edges mirrored, the biharmonic operator as a symmetric matrix,
#: which conjugate gradients need.
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
#: Conjugate gradients stop once the squared residual is this share of its start (its norm a thousandth).
_TOLERANCE = 1e-6
#: Step size of the relaxation: stable below 2 / 64, the stencil's largest eigenvalue.
_STEP = 1 / 40


@keras.saving.register_keras_serializable(package="inpaintlib")
class SmoothFill(layers.Layer):
    """Fill the holes of masked images smoothly from their known pixels (no weights).

    Call it on ``[masked_images, masks]``: float (B, H, W, C) images and
    (B, H, W, 1) masks with 1 for a missing pixel. Returns the images with
    the known pixels as given and every hole filled. Every mask must keep at
    least one pixel.

    Parameters
    ----------
    steps_per_level : int
        Relaxation steps at each pyramid level: more is smoother and slower
        (on free-form strokes of a quarter of the side, 5 steps score 1.2 dB below
        the biharmonic fill, 20 steps 0.5 dB).
    refine_steps : int
        Conjugate-gradient steps on the full-size image after the cascade (0:
        none). On 200 validation faces of the CelebA sample, 10 steps raise the
        fill by 0.1 to 0.5 dB on every kind and size of hole of
        bench/time_to_quality.py (free-form strokes of a quarter of the side:
        24.26 to 24.68 dB, the biharmonic fill's 24.71).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((1, 8, 8, 1), np.float32); image[:, :, 4:] = 1.0
    >>> mask = np.zeros((1, 8, 8, 1), np.float32); mask[:, 2:6, 2:6] = 1.0
    >>> filled = np.asarray(SmoothFill()([image * (1 - mask), mask]))
    >>> bool((filled[0, :, :2] == 0).all() and (filled[0, :, 6:] == 1).all())
    True
    >>> bool(0.3 < filled[0, 4, 3, 0] < filled[0, 4, 4, 0] < 0.7)
    True
    """

    def __init__(self, steps_per_level: int = 20, refine_steps: int = 0, **kwargs):
        kwargs.setdefault("dtype", "float32")  # a few hundred additions: float16 would lose the surface
        super().__init__(**kwargs)
        for name, steps in (("steps_per_level", steps_per_level), ("refine_steps", refine_steps)):
            if not isinstance(steps, (int, np.integer)) or steps < 0:
                raise ConfigError(f"{name} must be a whole number of steps, 0 or more, not {steps!r}")
        self.steps_per_level, self.refine_steps = steps_per_level, refine_steps

    def call(self, inputs):
        images, masks = inputs
        images = ops.cast(images, self.compute_dtype)
        known = 1.0 - ops.cast(masks, self.compute_dtype)
        kernel = ops.tile(ops.convert_to_tensor(_BILAPLACIAN)[:, :, None, None], (1, 1, images.shape[-1], 1))
        levels = []
        values, weights = images * known, known
        while min(values.shape[1], values.shape[2]) > 1:  # pull: the pyramid of known averages
            levels.append((values, weights))
            summed, covered = ops.average_pool(values * weights, 2, 2), ops.average_pool(weights, 2, 2)
            values = ops.divide_no_nan(summed, covered)
            weights = ops.cast(covered > 0, self.compute_dtype)
        filled = values
        for values, weights in reversed(levels):  # push, then relax, level by level
            upsampled = ops.image.resize(filled, values.shape[1:3], interpolation="bilinear")
            filled = weights * values + (1.0 - weights) * upsampled

            def relax(_, filled, unknown=1.0 - weights):
                padded = ops.pad(filled, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="symmetric")
                return filled - _STEP * unknown * ops.depthwise_conv(padded, kernel)

            # A loop op, not an unrolled Python loop: a graph a few ops long traces in a blink.
            filled = ops.fori_loop(0, self.steps_per_level, relax, filled)
        return self._refine(filled, 1.0 - known) if self.refine_steps else filled

    def _refine(self, filled, unknown):
        """Conjugate gradients on ``min |laplacian(u)|^2`` over the unknown pixels, from ``filled``.

        Each image and channel is its own system, so the step sizes are per (image, channel).
        """
        kernel = ops.tile(ops.convert_to_tensor(_LAPLACIAN)[:, :, None, None], (1, 1, filled.shape[-1], 1))

        def laplacian(u):
            return ops.depthwise_conv(ops.pad(u, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="symmetric"), kernel)

        def operator(u):  # the biharmonic operator on the unknown pixels, as a symmetric matrix
            return unknown * laplacian(laplacian(unknown * u))

        def dot(a, b):
            return ops.sum(a * b, axis=(1, 2), keepdims=True)

        def step(_, state):
            u, residual, direction, squared = state
            applied = operator(direction)
            # A converged channel stops rather than step on its float32 rounding; so does a hole-free one.
            running = ops.cast(squared > _TOLERANCE * first, u.dtype)
            size = running * ops.divide_no_nan(squared, dot(direction, applied))
            u, residual = u + size * direction, residual - size * applied
            new_squared = dot(residual, residual)
            return u, residual, residual + ops.divide_no_nan(new_squared, squared) * direction, new_squared

        residual = -unknown * laplacian(laplacian(filled))
        first = dot(residual, residual)
        return ops.fori_loop(0, self.refine_steps, step, (filled, residual, residual, first))[0]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "steps_per_level": self.steps_per_level, "refine_steps": self.refine_steps}


def smooth_start(masked_image, mask, enabled: bool = True, refine_steps: int = 0):
    """The image a network starts from: ``masked_image`` with its hole filled by :class:`SmoothFill`
    (``refine_steps`` its refinement), or, not ``enabled``, the masked image as given (the original
    recipes' zero hole). The U-Net and the VAE-GAN's prior network both start this way."""
    if not enabled:
        return masked_image
    return SmoothFill(refine_steps=refine_steps, name="smooth_fill")([masked_image, mask])


def corrected_fill(features, start):
    """The head of a network that starts from a smooth fill: ``sigmoid(logit(start) + correction)``.

    ``correction`` is a 1x1 convolution of ``features`` with zero initial weights, so the untrained
    network outputs ``start`` itself (within the logit's clipping margin) and training learns what
    to change. The U-Net and the VAE-GAN's decoder both end this way. float32 even under mixed
    precision, so the loss and the images stay exact.
    """
    correction = layers.Conv2D(3, 1, kernel_initializer="zeros", dtype="float32", name="correction")(features)
    return layers.Activation("sigmoid", dtype="float32", name="image")(correction + _logit(start))


def _logit(images, margin: float = 1e-3):
    """The inverse of the sigmoid, of images clipped into (0, 1)."""
    images = ops.clip(images, margin, 1.0 - margin)
    return ops.log(images) - ops.log(1.0 - images)
