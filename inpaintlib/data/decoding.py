"""Decoding image bytes into the library's uint8 RGB squares (centre crop, antialiased resize), and
reading and writing single image files: what every image of the library goes through.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from inpaintlib.errors import DataError
from inpaintlib.files import atomic_write

if TYPE_CHECKING:
    from inpaintlib.data.celeba import CelebaArchive

# PIL signals a broken file with any of these, depending on the format.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def check_image_size(image_size: int) -> int:
    """Return ``image_size`` if it is a usable side of a square image, else raise DataError."""
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise DataError(f"image_size must be an integer of at least 8 (64 or 128), not {image_size!r}")
    return image_size


def decode_file(archive: CelebaArchive, name: str, image_size: int) -> np.ndarray | None:
    """One image decoded, or None where its file cannot be read or decoded (the caller skips it)."""
    try:
        return decode_image(archive.read(name), image_size)
    except _DECODE_ERRORS:
        return None


# libjpeg's scaled decoding: 1/2, 1/4 or 1/8 of the size, computed inside the DCT. Each reduced
# pixel stands for the scale x scale block at its place (the sizes round up: the last row and
# column stand for what is left), but is not quite the block's mean: see decode_image.
_REDUCED_JPEG = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, image_size: int) -> np.ndarray:
    """Decode image bytes to a uint8 RGB square: centre-cropped, antialiased resize.

    The result is that of a full-size decode, centre crop and area resize,
    within half a grey level (mean absolute difference). A JPEG whose shorter
    side is at least 16 times ``image_size`` (1024 pixels for 64) decodes at
    1/2, 1/4 or 1/8 of its size, keeping that reduced side at least 8 times
    ``image_size``; smaller ones, CelebA's 178x218 faces among them, decode
    at full size.

    Grayscale, RGBA, CMYK and PNG inputs all come out as RGB. Raises PIL's
    errors for data that is not an image or is truncated, and
    ``Image.DecompressionBombError`` for an image too large to decode: a JPEG
    decodes at reduced size, so only PIL's hard limit applies to it, but any
    other format is decoded whole, and is refused above PIL's warning limit.
    """
    image = Image.open(io.BytesIO(data))  # reads only the header
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS
    if image.format != "JPEG" and limit and width * height > limit:
        raise Image.DecompressionBombError(
            f"{width}x{height} pixels; a {image.format} is decoded whole, up to {limit / 1e6:.0f} megapixels"
        )
    if image.format == "JPEG" and image.mode in ("RGB", "L") and data.rstrip(b"\0").endswith(b"\xff\xd9"):
        # The common case, CelebA's JPEGs. A large one decodes at reduced size (a 10000x10000
        # JPEG at 1/8: a fraction of the time and memory), but only while the reduced side is
        # still 8 times image_size, not 2: libjpeg's reduced pixels come from a DCT-domain
        # filter, not box means, and the area resize takes each as flat over its block; both
        # errors fade only as the resize averages many of them. Worst mean absolute difference
        # from a full decode at 64 px, measured on synthetic JPEGs of 300 to 4000 px (1/f
        # noise, upscaled CelebA faces, stripes): 0.45 grey levels at 8x, 1.0 at 4x, 3.5 at 2x
        # (a 1000x1200 one at 1/8, 125 px: 1.3). CelebA's faces at 1/2 (89x109) were 2.2 off.
        scale = 1
        while scale < 8 and min(width, height) // (2 * scale) >= 8 * image_size:
            scale *= 2
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_JPEG[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
        if pixels is not None:
            return _square(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), image_size, (width, height))
    # Everything else (PNG, CMYK, palette, alpha, odd JPEGs) goes through PIL, whose
    # draft picks the same JPEG scale as above.
    image.draft("RGB", (8 * image_size, 8 * image_size))
    return _square(np.asarray(image.convert("RGB")), image_size, (width, height))


def read_image(path: str | Path, image_size: int) -> np.ndarray:
    """Read one image file as a uint8 RGB square of ``image_size`` (centre-cropped, resized)."""
    check_image_size(image_size)
    try:
        return decode_image(Path(path).read_bytes(), image_size)
    except Image.DecompressionBombError as error:
        raise DataError(
            f"the image {path} is too large ({error}): shrink it to a few megapixels (the output "
            f"is {image_size}x{image_size} anyway)"
        ) from None
    except _DECODE_ERRORS as error:
        if isinstance(error, Image.UnidentifiedImageError):  # its message names a buffer, not the file
            error = "empty, or not an image"
        raise DataError(f"cannot read the image {path} ({error}): give a JPEG or PNG file") from None


def check_output_path(path: str | Path) -> Path:
    """``path`` if its folder exists, else a DataError that names it: checked before the work is done."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"the output folder {path.parent} does not exist: create it or choose another output")
    return path


def save_png_atomically(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 image as PNG so that ``path`` is complete or absent, never partial."""
    path = check_output_path(path)
    try:
        with atomic_write(path) as f:
            Image.fromarray(image).save(f, format="PNG")
    except OSError as error:
        raise DataError(f"cannot write {path} ({error.strerror}): choose a writable output folder") from None


def _square(pixels: np.ndarray, image_size: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Centre-crop to a square and resize to image_size with an antialiasing (area) filter.

    Parameters
    ----------
    pixels : numpy.ndarray
        uint8 (H, W, 3).
    image_size : int
    size : (int, int), optional
        (width, height) of the full image when ``pixels`` is libjpeg's decode of
        it at 1/2, 1/4 or 1/8 (see :data:`._REDUCED_JPEG`). The crop is then the
        full image's centre square, whose edges may fall inside reduced pixels:
        those count by the part of them it covers.
    """
    height, width = pixels.shape[:2]
    full_width, full_height = size or (width, height)
    scale = -(-full_width // width)  # libjpeg rounds the reduced size up
    side = min(full_width, full_height)
    top, left = (full_height - side) // 2, (full_width - side) // 2
    if top % scale == left % scale == side % scale == 0:
        top, left, side = top // scale, left // scale, side // scale
        square = pixels[top:top + side, left:left + side]
        interpolation = cv2.INTER_AREA if side >= image_size else cv2.INTER_CUBIC
        return cv2.resize(square, (image_size, image_size), interpolation=interpolation)
    # Rounding the crop to whole reduced pixels would shift and scale it by up to half a
    # reduced pixel (measured: up to 2 grey levels, even at 8x). Instead, sum each output
    # pixel's fractional rectangle from the integral image, which is bilinear within a
    # pixel, so that interpolating it linearly is exact.

    def interpolate(values, at):  # along the first axis, at fractional positions
        low = np.minimum(at.astype(int), len(values) - 2)
        weight = (at - low)[:, None, None]
        return values[low] * (1.0 - weight) + values[low + 1] * weight

    step = side / scale / image_size
    edges = np.arange(image_size + 1) * step
    sums = interpolate(cv2.integral(pixels, sdepth=cv2.CV_64F), top / scale + edges)
    sums = interpolate(sums.transpose(1, 0, 2), left / scale + edges).transpose(1, 0, 2)
    means = np.diff(np.diff(sums, axis=0), axis=1) / step**2
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)
