"""Metrics: how good a fill is, scored the same way for every method.

Each metric is computed per image, on float images in [0, 1], and
:func:`.evaluate` averages it over images:

- ``psnr`` and ``ssim`` of the whole composited image (known pixels from the
  real image, hole pixels from the fill); the SSIM is Wang et al.'s (2004),
  with its Gaussian window;
- ``psnr_hole``, ``ssim_hole`` and ``l1_hole``: the error, or the structural
  similarity, inside the hole only, where the method did all the work;
- ``sharpness``: mean gradient magnitude inside the hole, over the same in the
  real image; 1.0 is as sharp as real, a blurry fill is well below;
- ``diversity``: mean pairwise L1 between several fills of one masked image;
  0 for a deterministic method;
- on request (``face_images``), face scores from a face-recognition network
  (:mod:`inpaintlib.facemetrics`): ``identity``, how far the filled face's
  descriptor is from the real face's (0 for the real face), and ``ffd``, the
  Fréchet face distance of the fills to the real faces, beside ``ffd_floor``,
  the same distance between two halves of the real faces.

Sharpness and diversity show what PSNR hides: a blurry average of every
plausible face scores well on PSNR, and is neither sharp nor diverse; the face
scores, whether it still looks like the person.

Images are (N, H, W, 3), uint8 or float in [0, 1]; masks are (N, H, W, 1)
with 1 for a missing pixel and 0 for a known one.
"""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np

from inpaintlib.errors import DataError

#: The PSNR of an exact match, which would be infinite. A finite cap keeps
#: averages and JSON files usable; no real fill comes near it.
PSNR_CAP = 100.0
#: Luma weights of the grayscale image sharpness is measured on (ITU-R BT.709,
#: as :func:`skimage.color.rgb2gray` uses).
LUMA = (0.2125, 0.7154, 0.0721)
#: Gradient magnitudes below this (a quarter of one uint8 grey level per pixel)
#: count as flat, so that sharpness never divides by zero.
FLAT_GRADIENT = 1e-3
#: Keys of the dict :func:`.evaluate` returns, in order.
RESULT_KEYS = ("method", "n", "psnr", "psnr_hole", "ssim", "ssim_hole", "l1_hole", "sharpness", "diversity",
               "identity", "ffd", "ffd_floor", "seconds_per_image")
#: Keys of :data:`.RESULT_KEYS` that hold a face score: None when not computed.
FACE_KEYS = ("identity", "ffd", "ffd_floor")
# Float images may overshoot [0, 1] by float rounding (a sigmoid in float32);
# anything further out is a wrong scale, such as [-1, 1] or 0..255.
_RANGE_TOLERANCE = 1e-4
# SSIM as Wang et al. (2004) define it: local statistics under a Gaussian
# window of sigma 1.5. scikit-image truncates that Gaussian at 3.5 sigma, an
# 11-tap window, and refuses images smaller than the window.
_SSIM_SIGMA = 1.5
_SSIM_MIN_SIDE = 2 * int(3.5 * _SSIM_SIGMA + 0.5) + 1


# --- checking inputs -------------------------------------------------------


def check_images(images, name: str = "images") -> np.ndarray:
    """Return ``images`` as float64 in [0, 1], or raise :class:`.DataError`.

    Parameters
    ----------
    images : array_like
        (N, H, W, 3) RGB images, uint8 (0..255) or float (0..1).
    name : str
        What the error message calls them.

    Returns
    -------
    numpy.ndarray
        float64 (N, H, W, 3) in [0, 1]; uint8 input is divided by 255 and
        float input within rounding of [0, 1] is clipped into it.

    Examples
    --------
    >>> float(check_images(np.full((1, 2, 2, 3), 255, np.uint8)).max())
    1.0
    """
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise DataError(f"{name} must be a non-empty array of RGB images (N, H, W, 3), not shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{name} must be uint8 (0..255) or float (0..1), not {array.dtype}")
    if not np.isfinite(array).all():
        raise DataError(f"{name} hold NaN or infinite values: give finite floats in [0, 1]")
    low, high = float(array.min()), float(array.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise DataError(
            f"{name} must lie in [0, 1] but span [{low:.4g}, {high:.4g}]: divide 0..255 values "
            f"by 255, map [-1, 1] values with (x + 1) / 2"
        )
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def check_masks(masks, shape, name: str = "masks") -> np.ndarray:
    """Return ``masks`` as float64 (N, H, W, 1) of 0 and 1, or raise :class:`.DataError`.

    Parameters
    ----------
    masks : array_like
        (N, H, W, 1) or (N, H, W), bool or numbers; 1 (True) marks a missing pixel.
    shape : tuple
        Shape of the images the masks belong to, (N, H, W, 3).
    name : str
        What the error message calls them.

    Returns
    -------
    numpy.ndarray
        float64 (N, H, W, 1) holding only 0.0 and 1.0.

    Examples
    --------
    >>> check_masks(np.ones((2, 4, 4), bool), (2, 4, 4, 3)).shape
    (2, 4, 4, 1)
    """
    array = np.asarray(masks)
    if array.ndim == 3:
        array = array[..., None]
    expected = tuple(shape[:3]) + (1,)
    if array.shape != expected:
        raise DataError(f"{name} must have shape {expected} to match the images (1 = missing pixel), not {np.shape(masks)}")
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.number)):
        raise DataError(f"{name} must be numbers or booleans (1 = missing pixel), not {array.dtype}")
    array = array.astype(np.float64)
    if not ((array == 0) | (array == 1)).all():
        raise DataError(
            f"{name} must hold only 0 (known pixel) and 1 (missing pixel), but hold values in "
            f"[{np.nanmin(array):.4g}, {np.nanmax(array):.4g}]: threshold them, or divide a 0/255 mask by 255"
        )
    return array


def _check_pair(outputs, targets, names=("outputs", "targets")) -> tuple[np.ndarray, np.ndarray]:
    outputs, targets = check_images(outputs, names[0]), check_images(targets, names[1])
    if outputs.shape != targets.shape:
        raise DataError(f"{names[0]} and {names[1]} must have the same shape, not {outputs.shape} and {targets.shape}")
    return outputs, targets


def _check_holes(masks: np.ndarray) -> np.ndarray:
    """Number of missing pixels of each mask; a hole metric needs at least one."""
    sizes = masks.sum(axis=(1, 2, 3))
    empty = np.flatnonzero(sizes == 0)
    if len(empty):
        raise DataError(
            f"{len(empty)} masks hide no pixel (the first is number {empty[0]}), so a hole "
            f"metric is undefined there: give every image a mask with at least one 1"
        )
    return sizes


# --- per-image metrics -----------------------------------------------------


def composite(predictions, images, masks) -> np.ndarray:
    """Known pixels from ``images``, hole pixels from ``predictions``.

    What a method is scored on: outside the hole the real pixels are known, so
    nothing a method writes there counts.

    Parameters
    ----------
    predictions, images : array_like
        (N, H, W, 3), uint8 or float in [0, 1].
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel.

    Returns
    -------
    numpy.ndarray
        float32 (N, H, W, 3) in [0, 1].

    Examples
    --------
    >>> images, fills = np.zeros((1, 2, 2, 3)), np.ones((1, 2, 2, 3))
    >>> masks = np.array([[[1], [0]], [[0], [0]]], np.float32)[None]
    >>> composite(fills, images, masks)[0, :, :, 0]
    array([[1., 0.],
           [0., 0.]], dtype=float32)
    """
    predictions, images = _check_pair(predictions, images, ("predictions", "images"))
    masks = check_masks(masks, images.shape)
    return composite_unchecked(predictions, images, masks).astype(np.float32)


def psnr(outputs, targets) -> np.ndarray:
    """Peak signal-to-noise ratio of each whole image, in dB, with data range 1.

    ``10 log10(1 / MSE)``; an exact match, whose PSNR is infinite, scores
    :data:`.PSNR_CAP` (100 dB).

    Parameters
    ----------
    outputs, targets : array_like
        (N, H, W, 3), uint8 or float in [0, 1].

    Returns
    -------
    numpy.ndarray
        float64 (N,).

    Examples
    --------
    >>> targets = np.zeros((2, 4, 4, 3))
    >>> psnr(targets + 0.1, targets).round(6)
    array([20., 20.])
    >>> psnr(targets, targets)
    array([100., 100.])
    """
    return _psnr(*_check_pair(outputs, targets))


def psnr_hole(outputs, targets, masks) -> np.ndarray:
    """PSNR of the hole pixels only (all three channels), in dB, with data range 1.

    Parameters
    ----------
    outputs, targets : array_like
        (N, H, W, 3), uint8 or float in [0, 1].
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.

    Returns
    -------
    numpy.ndarray
        float64 (N,), capped at :data:`.PSNR_CAP` like :func:`.psnr`.

    Examples
    --------
    >>> targets, masks = np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 1))
    >>> masks[:, :2] = 1
    >>> outputs = targets.copy()
    >>> outputs[:, :2] = 0.1  # the hole is off by 0.1
    >>> outputs[:, 2:] = 0.9  # outside the hole does not count
    >>> psnr_hole(outputs, targets, masks).round(6)
    array([20.])
    """
    outputs, targets = _check_pair(outputs, targets)
    masks = check_masks(masks, targets.shape)
    return _psnr_hole(outputs, targets, masks, _check_holes(masks))


def ssim(outputs, targets) -> np.ndarray:
    """Structural similarity (SSIM) of each whole image, as Wang et al. (2004) define it.

    The SSIM map, computed per colour channel, compares the local means,
    variances and covariance of the two images; this is its mean over the
    image (less a 5-pixel border, which the window would see past) and the
    three channels.

    Parameters
    ----------
    outputs, targets : array_like
        (N, H, W, 3), uint8 or float in [0, 1]; H and W at least 11.

    Returns
    -------
    numpy.ndarray
        float64 (N,); 1.0 for identical images.

    Notes
    -----
    :func:`skimage.metrics.structural_similarity` with the settings that
    match the paper, as scikit-image's documentation gives them: a Gaussian
    window (``gaussian_weights=True``) of ``sigma=1.5``, the population
    covariance (``use_sample_covariance=False``), ``K1=0.01`` and ``K2=0.03``
    (its defaults), and ``data_range=1.0`` for images in [0, 1]; colour images
    channel by channel (``channel_axis=-1``), averaged. The window is 11x11,
    hence the smallest image size.

    Examples
    --------
    >>> images = np.random.default_rng(0).random((2, 16, 16, 3))
    >>> ssim(images, images)
    array([1., 1.])
    """
    outputs, targets = _check_pair(outputs, targets)
    _check_ssim_size(targets.shape)
    return _ssim_maps(outputs, targets)[0]


def ssim_hole(outputs, targets, masks) -> np.ndarray:
    """SSIM of the hole only: the mean of each image's SSIM map over its hole pixels.

    The outputs are composited onto ``targets`` first, so the windows of the
    hole's outer pixels see the real pixels around it, whatever the method
    wrote there: a fill that does not match its surroundings scores lower.
    The map is that of :func:`.ssim` (Wang et al.'s settings), averaged over
    the three channels; at the image border it is computed with reflected
    pixels, so a hole that touches the border still counts in full.

    Parameters
    ----------
    outputs : array_like
        (N, H, W, 3) filled images, uint8 or float in [0, 1]; H and W at least 11.
    targets : array_like
        (N, H, W, 3) real images.
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.

    Returns
    -------
    numpy.ndarray
        float64 (N,); 1.0 for a fill identical to the real hole.

    Examples
    --------
    >>> targets = np.random.default_rng(0).random((1, 32, 32, 3))
    >>> masks = np.zeros((1, 32, 32, 1))
    >>> masks[:, 8:24, 8:24] = 1
    >>> ssim_hole(targets, targets, masks)
    array([1.])
    >>> grey = np.full_like(targets, 0.5)  # a fill with no structure
    >>> filled = composite(grey, targets, masks)  # the whole image's SSIM counts the known pixels too
    >>> ssim_hole(grey, targets, masks).round(2), ssim(filled, targets).round(2)
    (array([0.23]), array([0.55]))
    """
    outputs, targets = _check_pair(outputs, targets)
    masks = check_masks(masks, targets.shape)
    hole_sizes = _check_holes(masks)
    _check_ssim_size(targets.shape)
    maps = _ssim_maps(composite_unchecked(outputs, targets, masks), targets)[1]
    return _hole_mean(maps, masks, hole_sizes)


def l1_hole(outputs, targets, masks) -> np.ndarray:
    """Mean absolute error over the hole pixels (all three channels).

    Parameters
    ----------
    outputs, targets : array_like
        (N, H, W, 3), uint8 or float in [0, 1].
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.

    Returns
    -------
    numpy.ndarray
        float64 (N,) in [0, 1].

    Examples
    --------
    >>> targets, masks = np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 1))
    >>> masks[:, :2] = 1
    >>> outputs = np.where(masks == 1, 0.25, 1.0).repeat(3, axis=-1)  # 0.25 off inside, 1.0 outside
    >>> l1_hole(outputs, targets, masks)
    array([0.25])
    """
    outputs, targets = _check_pair(outputs, targets)
    masks = check_masks(masks, targets.shape)
    return _l1_hole(outputs, targets, masks, _check_holes(masks))


def sharpness(outputs, targets, masks) -> np.ndarray:
    """How sharp the fill is: mean gradient magnitude in the hole, over the real one's.

    The gradient is taken of the grayscale image (weights :data:`.LUMA`) by
    central differences, ``(I[x+1] - I[x-1]) / 2`` along each axis (one-sided
    at the image border), and its magnitude averaged over the hole pixels. The
    hole's outermost pixels see their known neighbours, so a seam between the
    fill and its surroundings counts as an edge, as the eye sees it. The
    outputs are composited onto ``targets`` first, so those neighbours are the
    real pixels whatever the method wrote outside the hole.

    Both means are floored at :data:`.FLAT_GRADIENT` before dividing: a real
    hole that is flat cannot make the ratio infinite, a flat fill of a flat
    hole scores 1.0, and an image against itself always scores exactly 1.0.

    Parameters
    ----------
    outputs : array_like
        (N, H, W, 3) filled images, uint8 or float in [0, 1].
    targets : array_like
        (N, H, W, 3) real images.
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.

    Returns
    -------
    numpy.ndarray
        float64 (N,): 1.0 is as sharp as real, a blurry fill is well below,
        a flat fill close to 0; above 1 is sharper (or noisier) than real.

    Examples
    --------
    >>> targets = np.random.default_rng(0).random((1, 16, 16, 3))
    >>> masks = np.zeros((1, 16, 16, 1))
    >>> masks[:, 4:12, 4:12] = 1
    >>> sharpness(targets, targets, masks)
    array([1.])
    """
    outputs, targets = _check_pair(outputs, targets)
    masks = check_masks(masks, targets.shape)
    return _sharpness(outputs, targets, masks, _check_holes(masks))


def diversity(samples, masks) -> np.ndarray:
    """Mean pairwise L1 distance between several fills of each masked image, over its hole.

    Parameters
    ----------
    samples : array_like
        (K, N, H, W, 3), K >= 2 fills of each of N masked images, uint8 or
        float in [0, 1].
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.

    Returns
    -------
    numpy.ndarray
        float64 (N,): for each image the mean over the K (K - 1) / 2 pairs of
        fills of their mean absolute difference over the hole pixels (all
        channels); 0 when every fill is the same.

    Examples
    --------
    >>> masks = np.ones((1, 2, 2, 1))
    >>> samples = np.stack([np.full((1, 2, 2, 3), v) for v in (0.0, 0.2, 0.6)])
    >>> diversity(samples, masks).round(6)  # pairs differ by 0.2, 0.6 and 0.4
    array([0.4])
    """
    samples = _check_samples(samples)
    masks = check_masks(masks, samples.shape[1:])
    return _diversity(samples, masks, _check_holes(masks))


def _check_samples(samples, name: str = "samples") -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim != 5 or array.shape[0] < 2:
        raise DataError(f"{name} must be an array (K, N, H, W, 3) of K >= 2 fills of each image, not shape {array.shape}")
    return check_images(array.reshape((-1,) + array.shape[2:]), name).reshape(array.shape)


# The versions below take checked float64 arrays, so that evaluate checks once.


def composite_unchecked(predictions: np.ndarray, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """:func:`.composite` of arrays already checked (by :func:`.check_images` and :func:`.check_masks`),
    for a caller that checked them itself: nothing is checked again, and the dtype is the inputs'."""
    return masks * predictions + (1.0 - masks) * images


def _psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    # An MSE below 10**(-PSNR_CAP / 10) would exceed the cap; flooring it also avoids log(0).
    return 10.0 * np.log10(1.0 / np.maximum(mse, 10.0 ** (-PSNR_CAP / 10.0)))


def _psnr(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return _psnr_from_mse(np.mean(np.square(outputs - targets), axis=(1, 2, 3)))


def _hole_mean(values: np.ndarray, masks: np.ndarray, hole_sizes: np.ndarray) -> np.ndarray:
    """Mean of (N, H, W, C) ``values`` over each image's hole pixels and channels."""
    return (values * masks).sum(axis=(1, 2, 3)) / (hole_sizes * values.shape[-1])


def _psnr_hole(outputs, targets, masks, hole_sizes) -> np.ndarray:
    return _psnr_from_mse(_hole_mean(np.square(outputs - targets), masks, hole_sizes))


def _l1_hole(outputs, targets, masks, hole_sizes) -> np.ndarray:
    return _hole_mean(np.abs(outputs - targets), masks, hole_sizes)


def _check_ssim_size(shape: tuple) -> None:
    if min(shape[1:3]) < _SSIM_MIN_SIDE:
        raise DataError(
            f"SSIM needs images of at least {_SSIM_MIN_SIDE}x{_SSIM_MIN_SIDE} pixels (its Gaussian window "
            f"of sigma {_SSIM_SIGMA}), not {shape[2]}x{shape[1]}: score larger images, such as the 64x64 faces"
        )


def _ssim_maps(outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's mean SSIM, (N,), and its SSIM map, (N, H, W, 3): one scikit-image call per image."""
    from skimage.metrics import structural_similarity

    means, maps = np.empty(len(targets)), np.empty(targets.shape)
    for i, (output, target) in enumerate(zip(outputs, targets)):
        means[i], maps[i] = structural_similarity(
            output, target, gaussian_weights=True, sigma=_SSIM_SIGMA, use_sample_covariance=False,
            data_range=1.0, channel_axis=-1, full=True,
        )
    return means, maps


def _gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1) gradient magnitude of the grayscale images, by central differences."""
    gray = images @ np.asarray(LUMA)
    rows, cols = np.gradient(gray, axis=(1, 2))
    return np.hypot(rows, cols)[..., None]


def _sharpness(outputs, targets, masks, hole_sizes) -> np.ndarray:
    # Composited, so that the seam is measured against the real surroundings and
    # nothing a method wrote outside the hole counts.
    fill = _hole_mean(_gradient_magnitude(composite_unchecked(outputs, targets, masks)), masks, hole_sizes)
    real = _hole_mean(_gradient_magnitude(targets), masks, hole_sizes)
    return np.maximum(fill, FLAT_GRADIENT) / np.maximum(real, FLAT_GRADIENT)


def _diversity(samples, masks, hole_sizes) -> np.ndarray:
    pairs = combinations(range(len(samples)), 2)
    return np.mean([_hole_mean(np.abs(samples[i] - samples[j]), masks, hole_sizes) for i, j in pairs], axis=0)


# --- evaluating a method ---------------------------------------------------


def evaluate(method, images, masks, batch_size: int = 64, diversity_samples: int = 4, diversity_images: int = 16,
             face_images: int = 0) -> dict:
    """Score an inpainting method on fixed images and masks: the per-image means of :func:`.score_images`.

    The method sees each image with its hole set to 0 (as the models do in
    training), so the missing pixels cannot leak into its fill. Its output is
    composited onto the real image before scoring, so nothing it writes
    outside the hole counts.

    Parameters
    ----------
    method : object
        Anything with a ``name`` (str) and an ``inpaint(images, masks)``
        method that takes float32 (B, H, W, 3) images in [0, 1] and float32
        (B, H, W, 1) masks and returns the filled (B, H, W, 3) images, uint8
        or float in [0, 1]. A method that can draw several fills of one
        image may also have ``sample(images, masks, k)`` returning
        (k, B, H, W, 3).
    images : array_like
        (N, H, W, 3) real images, uint8 or float in [0, 1]; H and W at least 11.
    masks : array_like
        (N, H, W, 1); 1 marks a missing pixel. Every mask must hide at least one pixel.
    batch_size : int
        Images per ``inpaint`` call.
    diversity_samples : int
        Fills drawn per image by ``sample`` for the diversity (at least 2).
    diversity_images : int
        Diversity is measured on the first this many images (or all, if fewer).
        With ``sample`` it is the diversity of ``diversity_samples`` fills;
        without, of two ``inpaint`` calls on the same input, so a
        deterministic method measures 0.0 rather than being assumed to.
    face_images : int
        The face scores (see :mod:`inpaintlib.facemetrics`) are computed on
        the first this many composited images (or all, if fewer), then at
        least :data:`~inpaintlib.facemetrics.MIN_FACE_IMAGES` (4). They cost
        about 0.1 s of CPU per image for the fill, and as much for the real
        face the first time the process sees it. 0 (the default) computes none.

    Returns
    -------
    dict
        Plain Python values (JSON-serialisable), keys :data:`.RESULT_KEYS`:
        ``method`` (its name), ``n`` (images scored), the per-image means of
        ``psnr``, ``psnr_hole`` (dB), ``ssim``, ``ssim_hole`` (see
        :func:`.ssim_hole`), ``l1_hole``, ``sharpness`` (see :func:`.sharpness`)
        and ``diversity`` (see :func:`.diversity`); the face scores
        ``identity`` (the mean :func:`~inpaintlib.facemetrics.identity_distance`),
        ``ffd`` (:func:`~inpaintlib.facemetrics.frechet_face_distance`) and
        ``ffd_floor`` (:func:`~inpaintlib.facemetrics.frechet_face_floor`),
        each None when ``face_images`` is 0 or dlib is not installed (then a
        notice says how to install it); and ``seconds_per_image``: wall time
        of the ``inpaint`` calls over all N images, divided by N. It includes
        any one-off start-up of the method (such as graph tracing): call it
        once beforehand to leave that out.

    Examples
    --------
    >>> class Grey:
    ...     name = "grey"
    ...     def inpaint(self, images, masks):
    ...         return np.full_like(images, 0.5)
    >>> images = np.random.default_rng(0).random((4, 16, 16, 3))
    >>> masks = np.zeros((4, 16, 16, 1))
    >>> masks[:, 4:12, 4:12] = 1
    >>> result = evaluate(Grey(), images, masks)
    >>> result["n"], result["diversity"], result["identity"]
    (4, 0.0, None)
    """
    return average_scores(score_images(method, images, masks, batch_size, diversity_samples, diversity_images,
                                       face_images))


def average_scores(scores: dict) -> dict:
    """The table row of a :func:`.score_images` result: each per-image score's mean, as :func:`.evaluate` returns.

    For a chapter that needs both the row and the per-image scores (for a
    paired interval), without filling the images twice.

    Examples
    --------
    >>> average_scores({"method": "m", "n": 2, "psnr": np.array([10.0, 20.0]), "identity": None})["psnr"]
    15.0
    """
    per_set = ("method", "n", "ffd", "ffd_floor", "seconds_per_image")
    return {key: scores.get(key) if key in per_set or scores.get(key) is None else float(np.mean(scores[key]))
            for key in RESULT_KEYS}


def score_images(method, images, masks, batch_size: int = 64, diversity_samples: int = 4,
                 diversity_images: int = 16, face_images: int = 0) -> dict:
    """Score a method image by image: what :func:`.evaluate` averages, for intervals and plots.

    Takes the arguments of :func:`.evaluate`. Returns a dict with ``method``,
    ``n``, ``seconds_per_image`` (float), a float64 array per metric (length
    N; ``diversity`` has one value for each of the first ``diversity_images``
    images, ``identity`` for each of the first ``face_images``, or None when
    not computed), ``ffd`` and ``ffd_floor`` (float, or None), and
    ``outputs``: the composited fills, float64 (N, H, W, 3).
    """
    name = getattr(method, "name", None)
    if not isinstance(name, str) or not callable(getattr(method, "inpaint", None)):
        raise TypeError(f"method must have a name (str) and an inpaint(images, masks) method, not {method!r}")
    images = check_images(images)
    masks = check_masks(masks, images.shape)
    hole_sizes = _check_holes(masks)
    _check_ssim_size(images.shape)
    for label, value, least in (("batch_size", batch_size, 1), ("diversity_samples", diversity_samples, 2),
                                ("diversity_images", diversity_images, 1), ("face_images", face_images, 0)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise DataError(f"{label} must be an integer of at least {least}, not {value!r}")
    n = len(images)
    faces = min(face_images, n)
    if faces:
        from inpaintlib import facemetrics  # here, not at the top: facemetrics imports this module

        if faces < facemetrics.MIN_FACE_IMAGES:
            raise DataError(f"face scores need at least {facemetrics.MIN_FACE_IMAGES} images (their floor splits "
                            f"them in two halves), but would be computed on {faces}: set face_images to 0 to skip "
                            f"them, or score at least {facemetrics.MIN_FACE_IMAGES} images")

    # What a method gets: the real pixels around a hole of zeros, in float32.
    masked = (images * (1.0 - masks)).astype(np.float32)
    hole_masks = masks.astype(np.float32)
    batches = []
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        batches.append(np.asarray(method.inpaint(masked[i:i + batch_size], hole_masks[i:i + batch_size])))
    seconds = time.perf_counter() - start
    label = f"the output of {name!r}.inpaint"
    for i, batch in enumerate(batches):
        _check_shape(batch, images[i * batch_size:(i + 1) * batch_size].shape, label)
    fills = _check_output(np.concatenate(batches), images.shape, label)
    outputs = composite_unchecked(fills, images, masks)

    m = min(diversity_images, n)
    if callable(getattr(method, "sample", None)):
        samples = np.asarray(method.sample(masked[:m], hole_masks[:m], diversity_samples))
        expected = (diversity_samples,) + images[:m].shape
        if samples.shape != expected:
            raise DataError(f"{name!r}.sample must return {diversity_samples} fills of each image, shape {expected}, not {samples.shape}")
        samples = _check_samples(samples, f"the output of {name!r}.sample")
    else:
        again = _check_output(method.inpaint(masked[:m], hole_masks[:m]), images[:m].shape, f"the output of {name!r}.inpaint")
        samples = np.stack([fills[:m], again])

    # One SSIM map per image gives both the whole-image and the hole SSIM.
    ssim_means, ssim_maps = _ssim_maps(outputs, images)
    face = facemetrics.face_scores(outputs[:faces], images[:faces]) if faces else dict.fromkeys(FACE_KEYS)
    return {
        "method": name,
        "n": int(n),
        "psnr": _psnr(outputs, images),
        "psnr_hole": _psnr_hole(outputs, images, masks, hole_sizes),
        "ssim": ssim_means,
        "ssim_hole": _hole_mean(ssim_maps, masks, hole_sizes),
        "l1_hole": _l1_hole(outputs, images, masks, hole_sizes),
        "sharpness": _sharpness(outputs, images, masks, hole_sizes),
        "diversity": np.asarray(_diversity(samples, masks[:m], hole_sizes[:m]), np.float64),
        **face,
        "seconds_per_image": seconds / n,
        "outputs": outputs,
    }


def bootstrap_interval(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Resamples the images with replacement ``resamples`` times; the interval
    holds the central ``confidence`` of the resampled means. It tells how much
    a table's mean would move on another draw of test faces. To tell whether
    one method beats another on the same faces, use
    :func:`.paired_bootstrap_interval`, not whether two such intervals overlap.

    Examples
    --------
    >>> low, high = bootstrap_interval(np.arange(100.0))
    >>> bool(low < 49.5 < high), round(high - low)
    (True, 11)
    """
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise DataError(f"bootstrap_interval needs finite values, not {values.size} values with non-finite ones")
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be between 0 and 1, not {confidence}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap_interval(a, b, confidence: float = 0.95, resamples: int = 2000,
                              seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a - b)``, resampling images: two methods on the same faces.

    ``a[i]`` and ``b[i]`` are two methods' scores of the same image ``i``, so
    each resample draws images, the same indices for both arrays. How hard a
    face is moves both scores alike and cancels in the difference, so this
    interval is far narrower than the two unpaired intervals of
    :func:`.bootstrap_interval`, whose overlap says little: a method can be
    ahead on nearly every face while its interval overlaps the other's. An
    interval that excludes 0 says which method is ahead on faces like these;
    one that contains 0, that the two are within the noise.

    Parameters
    ----------
    a, b : array_like
        One finite score per image for each of the two methods, on the same
        images in the same order.
    confidence : float
        The central share of the resampled mean differences the interval holds.
    resamples : int
        Bootstrap resamples of the images.
    seed : int
        Seed of the resampling.

    Returns
    -------
    tuple of float
        (low, high); above 0 when ``a`` is clearly ahead of ``b``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> faces = rng.normal(20, 3, 200)  # how hard each face is: hole PSNRs spread over dB
    >>> a, b = faces + 0.2 + rng.normal(0, 0.3, 200), faces  # a is about 0.2 dB ahead
    >>> low, high = paired_bootstrap_interval(a, b)
    >>> bool(0 < low < high < 0.3)
    True
    >>> bootstrap_interval(a)[0] < bootstrap_interval(b)[1]  # yet the unpaired intervals overlap
    True
    """
    a, b = (np.asarray(x, np.float64).ravel() for x in (a, b))
    if a.size != b.size:
        raise DataError(
            f"paired_bootstrap_interval needs one score per image for the same images from both methods, "
            f"but got {a.size} and {b.size} scores: score both methods on the same images"
        )
    for name, scores in (("a", a), ("b", b)):
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):
            raise DataError(f"{name} holds {len(bad)} non-finite scores (the first at image {bad[0]}): "
                            f"give finite per-image scores")
    # Resampling images with the same indices for both is resampling their differences.
    return bootstrap_interval(a - b, confidence, resamples, seed)


def _check_shape(fills: np.ndarray, shape: tuple, name: str) -> None:
    if fills.shape != shape:
        raise DataError(f"{name} must have the shape of its input images, {shape}, not {fills.shape}")


def _check_output(fills, shape: tuple, name: str) -> np.ndarray:
    fills = np.asarray(fills)
    _check_shape(fills, shape, name)
    return check_images(fills, name)
