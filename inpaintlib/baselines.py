"""Baselines: classical inpainting, behind the same ``inpaint(images, masks)`` call as the models.

Four methods that learn nothing, to tell what the networks add:

- ``telea``: OpenCV's fast marching method (Telea, 2004): the hole is filled
  from its border inwards, each pixel a weighted average of known pixels near it;
- ``navier-stokes``: OpenCV's fluid-dynamics method (Bertalmio et al., 2001),
  which carries the image's edges (isophotes) into the hole;
- ``biharmonic``: scikit-image's smoothest fill, the solution of the
  biharmonic equation with the known pixels as boundary condition;
- ``mean``: each hole filled with the mean colour of that image's known pixels,
  the floor every method should beat.

Each is a small class with a ``name`` and an ``inpaint`` method, so
:func:`inpaintlib.metrics.evaluate` scores them exactly as it scores a model.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaintlib.errors import ConfigError, DataError
from inpaintlib.metrics import check_images, check_masks, composite_unchecked

#: Radius in pixels of the neighbourhood OpenCV's methods fill each pixel from.
#: 3, OpenCV's own example value, is a middle ground: on 64x64 CelebA faces
#: with a 32x32 centre hole, going from radius 1 to 10 gains Telea only 0.35 dB
#: of hole PSNR while its fill grows blurrier (sharpness 0.65 to 0.40) and
#: slower (1 to 7 ms per image); a wider average is a smoother guess.
INPAINT_RADIUS = 3


class Baseline:
    """A classical inpainting method: checks the input, fills, keeps the known pixels.

    Subclasses set ``name`` and implement ``_fill(images, masks)`` on checked
    float64 arrays.
    """

    name = "baseline"

    def inpaint(self, images, masks) -> np.ndarray:
        """Fill the holes of ``images``.

        Parameters
        ----------
        images : array_like
            (N, H, W, 3), uint8 or float in [0, 1]. The pixels under the hole are ignored.
        masks : array_like
            (N, H, W, 1) or (N, H, W); 1 marks a missing pixel. Every mask must
            keep at least one pixel to fill from.

        Returns
        -------
        numpy.ndarray
            float32 (N, H, W, 3) in [0, 1]: the known pixels exactly as given,
            the holes filled.
        """
        images = check_images(images)
        masks = check_masks(masks, images.shape)
        full = np.flatnonzero(masks.all(axis=(1, 2, 3)))
        if len(full):
            raise DataError(
                f"{len(full)} masks hide the whole image (the first is number {full[0]}), leaving "
                f"nothing to fill from: keep at least one known pixel (0) in every mask"
            )
        filled = self._fill(images, masks)
        # Known pixels come back exactly: only the fill is the method's.
        return composite_unchecked(np.clip(filled, 0.0, 1.0), images, masks).astype(np.float32)

    def _fill(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _OpenCV(Baseline):
    """OpenCV's inpainting, which works on 8-bit images: the fill is quantised to 1/255."""

    flag = cv2.INPAINT_TELEA

    def _fill(self, images, masks):
        pixels = np.round(images * 255.0).astype(np.uint8)
        holes = masks[..., 0].astype(np.uint8)
        filled = [cv2.inpaint(image, hole, INPAINT_RADIUS, self.flag) for image, hole in zip(pixels, holes)]
        return np.stack(filled).astype(np.float64) / 255.0


class Telea(_OpenCV):
    """OpenCV's fast marching method, ``cv2.INPAINT_TELEA``, radius :data:`.INPAINT_RADIUS`.

    Examples
    --------
    >>> images = np.full((1, 16, 16, 3), 0.5, np.float32)
    >>> masks = np.zeros((1, 16, 16, 1), np.float32)
    >>> masks[:, 4:12, 4:12] = 1
    >>> float(np.abs(Telea().inpaint(images * (1 - masks), masks) - images).max()) < 0.01
    True
    """

    name = "telea"
    flag = cv2.INPAINT_TELEA


class NavierStokes(_OpenCV):
    """OpenCV's Navier-Stokes method, ``cv2.INPAINT_NS``, radius :data:`.INPAINT_RADIUS`."""

    name = "navier-stokes"
    flag = cv2.INPAINT_NS


class Biharmonic(Baseline):
    """scikit-image's biharmonic fill, :func:`skimage.restoration.inpaint_biharmonic`.

    One image at a time: about 4 ms each at 64x64 with a 32x32 hole. A thread
    pool does not help (measured on 2 cores: 4.1 ms per image serial, 4.3-4.5 ms
    with 2 or 4 threads), as much of the work holds the GIL.
    """

    name = "biharmonic"

    def _fill(self, images, masks):
        from skimage.restoration import inpaint_biharmonic

        holes = masks[..., 0].astype(bool)
        return np.stack([inpaint_biharmonic(image, hole, channel_axis=-1) for image, hole in zip(images, holes)])


class MeanFill(Baseline):
    """Each hole filled with the mean colour of that image's known pixels.

    Examples
    --------
    >>> images = np.zeros((1, 2, 2, 3))
    >>> images[0, 0, 1], images[0, 1, 0] = (0.2, 0.4, 0.6), (0.4, 0.6, 0.8)
    >>> masks = np.array([[1, 0], [0, 1]], np.float32)[None, ..., None]  # keep two pixels
    >>> MeanFill().inpaint(images, masks)[0, 0, 0]
    array([0.3, 0.5, 0.7], dtype=float32)
    """

    name = "mean"

    def _fill(self, images, masks):
        known = 1.0 - masks
        colours = (images * known).sum(axis=(1, 2)) / known.sum(axis=(1, 2))  # (N, 3)
        return np.broadcast_to(colours[:, None, None, :], images.shape)


#: The baselines by name.
BASELINES = {cls.name: cls for cls in (Telea, NavierStokes, Biharmonic, MeanFill)}


def get_baseline(name: str) -> Baseline:
    """A new baseline by name, ready to ``inpaint``.

    Parameters
    ----------
    name : {"telea", "navier-stokes", "biharmonic", "mean"}

    Returns
    -------
    Baseline

    Examples
    --------
    >>> get_baseline("telea").name
    'telea'
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}: use one of {', '.join(BASELINES)}")
    return BASELINES[name]()
