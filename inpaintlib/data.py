"""Face images for inpainting: CelebA, synthetic stand-in faces, tf.data pipelines.

Images are uint8 arrays of shape (N, H, W, 3) until they enter a pipeline, and
float32 in [0, 1] inside it. A *data spec* string picks the source everywhere:
``synthetic``, ``celeba:PATH`` (a folder or a .zip) or ``auto`` (CelebA from
``$CELEBA_DIR`` when it is set, synthetic faces otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
import warnings
import weakref
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from inpaintlib.errors import DataError
from inpaintlib.files import atomic_write
from inpaintlib.provenance import source_digest

SPLITS = {"train": 0, "validation": 1, "test": 2}
#: Sizes of the synthetic splits; CelebA's come from its partition file.
SYNTHETIC_SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
IMAGE_DIR = "img_align_celeba"
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
CACHE_ENV = "INPAINTLIB_CACHE"
CELEBA_ENV = "CELEBA_DIR"
MEMORY_BUDGET_ENV = "INPAINTLIB_MEMORY_BUDGET"
#: How open_images holds a split: chosen by the memory budget, or forced.
DATA_MODES = ("auto", "memory", "stream")
# PIL signals a broken file with any of these, depending on the format.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class DataWarning(UserWarning):
    """Something in the data was skipped or replaced; the message says what."""


_format_warning = warnings.formatwarning


def _format_data_warning(message, category, filename, lineno, line=None):
    # A DataWarning speaks to the reader: its message alone, without the library line that raised it.
    if issubclass(category, DataWarning):
        return f"{category.__name__}: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = _format_data_warning


@dataclass(frozen=True)
class DataSource:
    """Where images come from: ``kind`` is ``"celeba"`` or ``"synthetic"``."""

    kind: str
    path: Path | None = None

    @property
    def is_synthetic(self) -> bool:
        return self.kind == "synthetic"

    @property
    def label(self) -> str:
        """How plots and tables name this source; synthetic faces say they are a stand-in."""
        if self.is_synthetic:
            return "synthetic faces (a stand-in for CelebA, not real photos)"
        return f"CelebA ({self.path})"


def parse_data_spec(spec: str) -> DataSource:
    """Turn a data spec string into a :class:`DataSource`.

    Parameters
    ----------
    spec : str
        ``"synthetic"``, ``"celeba:PATH"`` or ``"auto"``.

    Returns
    -------
    DataSource

    Examples
    --------
    >>> parse_data_spec("synthetic").label
    'synthetic faces (a stand-in for CelebA, not real photos)'
    """
    spec = str(spec).strip()
    if spec == "auto":
        celeba_dir = os.environ.get(CELEBA_ENV)
        if celeba_dir:
            return DataSource("celeba", Path(celeba_dir).expanduser())
        warnings.warn(
            f"${CELEBA_ENV} is not set, so this runs on synthetic faces, a stand-in for "
            f"CelebA. For real faces set {CELEBA_ENV} to the folder or .zip that holds "
            f"{IMAGE_DIR}/ and list_eval_partition.txt.",
            DataWarning,
            stacklevel=2,
        )
        return DataSource("synthetic")
    if spec == "synthetic":
        return DataSource("synthetic")
    if spec.startswith("celeba:") and spec[len("celeba:"):].strip():
        return DataSource("celeba", Path(spec[len("celeba:"):].strip()).expanduser())
    raise DataError(
        f"unknown data spec {spec!r}: use 'synthetic', 'celeba:PATH' (a folder or .zip "
        f"with {IMAGE_DIR}/ and list_eval_partition.txt) or 'auto'"
    )


def resolve_data_spec(spec: str) -> str:
    """The data spec with ``auto`` resolved and the path made absolute: what a cache key needs."""
    source = parse_data_spec(spec)
    return "synthetic" if source.is_synthetic else f"celeba:{source.path.resolve()}"


def check_source(spec: str | DataSource) -> DataSource:
    """Parse a data spec and, for CelebA, open its folder or zip and read its partition file:
    the checks a command runs first, so that a bad path fails in an instant (no image is decoded).

    Raises :class:`~inpaintlib.errors.DataError` naming the problem and the fix.
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    if not source.is_synthetic:
        _open_celeba(source.path).split_names()
    return source


def load_images(
    spec: str | DataSource = "auto",
    split: str = "train",
    image_size: int = 64,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Load one split of faces as uint8 (N, image_size, image_size, 3).

    Parameters
    ----------
    spec : str or DataSource
        A data spec (see :func:`parse_data_spec`).
    split : {"train", "validation", "test"}
    image_size : int
        Side of the square images, 64 by default; 128 works too.
    limit : int, optional
        Take only the first ``limit`` images of the split, in file order.
    cache_dir : str or Path, optional
        Where decoded arrays are cached; see :func:`cache_root`.
    seed : int
        Seed of the synthetic faces; CelebA ignores it.

    Returns
    -------
    numpy.ndarray
        uint8 images; a CelebA file that cannot be decoded is skipped, counted
        and named in one :class:`DataWarning`.

    Examples
    --------
    >>> load_images("synthetic", "test", image_size=32, limit=4).shape
    (4, 32, 32, 3)
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    _check_arguments(split, image_size, limit)
    if source.is_synthetic:
        key = {"source": "synthetic", "seed": seed}
        label = "synthetic"
        build = lambda: _synthetic_split(split, image_size, limit, seed)  # noqa: E731
    else:
        archive = _open_celeba(source.path)
        key = {"source": "celeba", **archive.fingerprint()}
        label = "celeba"
        build = lambda: _decode_split(archive, split, image_size, limit)  # noqa: E731
    name = _cache_name(label, key, split, image_size, limit) + ".npy"
    return _cached(cache_root(cache_dir) / "images" / name, build, image_size)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$INPAINTLIB_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("inpaintlib"))


def _cache_name(label: str, key: dict, split: str, image_size: int, limit: int | None) -> str:
    """A cache entry's name: readable, plus a hash of everything that shaped its content."""
    # The code that decodes and generates the images: an edit to it never reuses stale arrays.
    code = source_digest([Path(__file__), Path(__file__).with_name("synthetic.py")])
    key = {**key, "split": split, "image_size": image_size, "limit": limit, "code": code}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{label}-{split}-{image_size}px-{limit or 'all'}-{digest}"


def _check_arguments(split: str, image_size: int, limit: int | None) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    check_image_size(image_size)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"limit must be a positive integer or None (the whole split), not {limit!r}")


def check_image_size(image_size: int) -> int:
    """Return ``image_size`` if it is a usable side of a square image, else raise DataError."""
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise DataError(f"image_size must be an integer of at least 8 (64 or 128), not {image_size!r}")
    return image_size


def _cached(path: Path, build, image_size: int) -> np.ndarray:
    """Return the array cached at ``path``, building and saving it when absent or broken."""
    if path.exists():
        try:
            images = np.load(path, allow_pickle=False)
            if images.dtype == np.uint8 and images.shape[1:] == (image_size, image_size, 3):
                return images
        except (OSError, ValueError, EOFError):
            pass
        warnings.warn(f"cache file {path} is unreadable; rebuilding it", DataWarning, stacklevel=3)
    images = build()
    try:
        save_atomically(path, images)
    except OSError as error:
        warnings.warn(
            f"could not write the cache file {path} ({error.strerror}); the images are "
            f"decoded again next time. Set ${CACHE_ENV} to a writable folder.",
            DataWarning,
            stacklevel=3,
        )
    return images


def save_atomically(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as .npy so that ``path`` is either absent or complete, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)


# --- synthetic faces -------------------------------------------------------


def _synthetic_split(split: str, image_size: int, limit: int | None, seed: int) -> np.ndarray:
    from inpaintlib.synthetic import synthetic_faces

    # The splits are consecutive, disjoint runs of one seeded stream of faces.
    start = sum(SYNTHETIC_SPLIT_SIZES[s] for s in SPLITS if SPLITS[s] < SPLITS[split])
    n = SYNTHETIC_SPLIT_SIZES[split] if limit is None else min(limit, SYNTHETIC_SPLIT_SIZES[split])
    return synthetic_faces(n, image_size=image_size, seed=seed, start=start)


# --- CelebA ----------------------------------------------------------------


class _CelebaArchive:
    """The files of a CelebA folder or zip: the partition text and JPEG bytes by name."""

    def __init__(self, path: Path, partition: str, images: dict[str, str], is_zip: bool = False):
        self.path = path
        self.partition_name = partition
        self.images = images  # file name in the partition list -> file path, or zip member
        self.is_zip = is_zip

    def fingerprint(self) -> dict:
        """What identifies this source's content for the cache: path, sizes and times."""
        watched = [self.path] if self.is_zip else [self.path / self.partition_name, self.image_dir]
        stats = [(os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in watched]
        return {"path": str(self.path.resolve()), "stats": stats}

    @property
    def image_dir(self) -> Path:
        return Path(next(iter(self.images.values()))).parent if self.images else self.path

    def read(self, name: str) -> bytes:
        """The bytes of one image, by its name in the partition file."""
        location = self.images[name]
        return _zip_reader(str(self.path)).read(location) if self.is_zip else Path(location).read_bytes()

    def split_names(self) -> dict[str, list[str]]:
        """The file names of each split, in the partition file's order."""
        raw = _zip_reader(str(self.path)).read(self.partition_name) if self.is_zip else (self.path / self.partition_name).read_bytes()
        where = f"{self.path}:{self.partition_name}" if self.is_zip else f"{self.path}/{self.partition_name}"
        return _parse_partition(raw.decode("utf-8", errors="replace"), where)


def _open_celeba(path: Path) -> _CelebaArchive:
    """Find the images and the partition file in a CelebA folder or zip, or raise DataError."""
    fix = f"point celeba:PATH (or ${CELEBA_ENV}) at the folder or .zip that holds {IMAGE_DIR}/ and list_eval_partition.txt"
    if not path.exists():
        raise DataError(f"CelebA path {path} does not exist: {fix}")
    if path.is_file():
        return _open_celeba_zip(path, fix)
    image_dir = path / IMAGE_DIR
    if (image_dir / IMAGE_DIR).is_dir():  # Kaggle's archive nests the folder twice
        image_dir = image_dir / IMAGE_DIR
    if not image_dir.is_dir():
        raise DataError(f"{path} has no {IMAGE_DIR}/ folder of images: {fix}")
    partition = next((name for name in PARTITION_FILES if (path / name).is_file()), None)
    if partition is None:
        raise DataError(
            f"{path} has no list_eval_partition.txt (or Kaggle's .csv): put CelebA's official "
            f"partition file (Eval/list_eval_partition.txt) next to {IMAGE_DIR}/"
        )
    with os.scandir(image_dir) as entries:
        images = {e.name: e.path for e in entries if e.is_file()}
    return _CelebaArchive(path, partition, images)


def _open_celeba_zip(path: Path, fix: str) -> _CelebaArchive:
    try:
        archive = _zip_reader(str(path))
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{path} is not a readable zip file ({error}): unzip it again, or {fix}") from None
    partitions, images = [], {}
    for member in archive.namelist():
        parts = PurePosixPath(member)
        if parts.name in PARTITION_FILES:
            partitions.append(member)
        elif parts.parent.name == IMAGE_DIR and not member.endswith("/"):
            images[parts.name] = member
    if not images:
        raise DataError(f"{path} holds no {IMAGE_DIR}/ folder of images: {fix}")
    if not partitions:
        raise DataError(f"{path} holds no list_eval_partition.txt (or Kaggle's .csv): add CelebA's official partition file to the zip")
    partition = min(partitions, key=lambda m: m.count("/"))  # the shallowest one
    return _CelebaArchive(path, partition, images, is_zip=True)


def _parse_partition(text: str, source: str) -> dict[str, list[str]]:
    """Return the file names of each split, in file order."""
    names = {split: [] for split in SPLITS}
    number_to_split = {str(v): k for k, v in SPLITS.items()}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or (number == 1 and line.lower().startswith("image_id")):
            continue  # blank lines, and the header of Kaggle's csv
        fields = line.replace(",", " ").split()
        if len(fields) != 2 or fields[1] not in number_to_split:
            raise DataError(
                f"line {number} of {source} is malformed: {line[:80]!r}; each line must be "
                f"'<file> <0|1|2>' (0 train, 1 validation, 2 test). Fix the line or "
                f"download the official partition file again"
            )
        names[number_to_split[fields[1]]].append(fields[0])
    return names


def _split_names(archive: _CelebaArchive, split: str, limit: int | None) -> list[str]:
    """The files of a split that exist, in order, ``limit`` applied; missing ones counted in a warning."""
    listed = archive.split_names()[split]
    present = [name for name in listed if name in archive.images]
    missing = [name for name in listed if name not in archive.images]
    if missing:
        warnings.warn(
            f"{len(missing)} of the {len(listed)} {split} files named in {archive.partition_name} "
            f"are missing from {archive.path} and were skipped: {_first_names(missing)}",
            DataWarning,
            stacklevel=5,
        )
    if limit is not None:
        present = present[:limit]
    if not present:
        raise DataError(
            f"the {split} split of {archive.path} is empty: {archive.partition_name} lists no "
            f"{split} image (partition {SPLITS[split]}) that exists in {IMAGE_DIR}/. Check that "
            f"the partition file belongs to these images"
        )
    return present


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def _decode_split(archive: _CelebaArchive, split: str, image_size: int, limit: int | None) -> np.ndarray:
    present = _split_names(archive, split, limit)
    images, ok = _decode_all(archive, present, image_size, f"Decoding CelebA {split}")
    if not ok.all():
        bad = [name for name, good in zip(present, ok) if not good]
        warnings.warn(
            f"skipped {len(bad)} of {len(present)} {split} images that could not be decoded "
            f"(corrupt, truncated or not images): {_first_names(bad)}",
            DataWarning,
            stacklevel=4,
        )
        if not ok.any():
            raise DataError(f"none of the {split} images of {archive.path} could be decoded: check that they are JPEG or PNG files")
    return images[ok]


def _decode_all(archive: _CelebaArchive, names: list[str], image_size: int, description: str):
    """Decode ``names`` on every core; returns (images, ok) with ok False where decoding failed."""
    images = np.zeros((len(names), image_size, image_size, 3), np.uint8)
    ok = np.zeros(len(names), bool)

    def decode(i: int) -> None:
        image = _decode_file(archive, names[i], image_size)
        if image is not None:
            images[i], ok[i] = image, True

    # Threads suffice: OpenCV's JPEG decoder and file reads release the GIL.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = pool.map(decode, range(len(names)))
        for _ in tqdm(done, total=len(names), desc=description, unit="img", disable=len(names) < 2000, mininterval=1.0):
            pass
    return images, ok


def _decode_file(archive: _CelebaArchive, name: str, image_size: int) -> np.ndarray | None:
    """One image decoded, or None where its file cannot be read or decoded (the caller skips it)."""
    try:
        return decode_image(archive.read(name), image_size)
    except _DECODE_ERRORS:
        return None


@functools.lru_cache(maxsize=2)
def _zip_reader(path: str) -> zipfile.ZipFile:
    # Opening a large zip reads its whole directory: do it once. Reading members from
    # several threads is safe: ZipFile serialises access to the shared file.
    return zipfile.ZipFile(path)


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
        it at 1/2, 1/4 or 1/8 (see :data:`_REDUCED_JPEG`). The crop is then the
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


# --- a split too large for memory: streamed -----------------------------------


def open_images(
    spec: str | DataSource = "auto",
    split: str = "train",
    image_size: int = 64,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    mode: str = "auto",
    memory_budget: int | None = None,
    stream_cache: bool = True,
):
    """One split of faces for training: in memory when it fits, streamed from its files when not.

    The decoded split takes ``n * image_size**2 * 3`` bytes: full CelebA is
    2.5 GB at 64x64 but 10 GB at 128x128. Below the memory budget the split is
    decoded into an array (:func:`load_images`); above it, an
    :class:`ImageStream` decodes the files inside the tf.data pipeline. One
    line on stderr says which, and why (stdout stays free for ``--json``
    output and benchmarks).

    Parameters
    ----------
    spec, split, image_size, limit, cache_dir, seed
        As for :func:`load_images`.
    mode : {"auto", "memory", "stream"}
        ``"auto"`` compares the decoded size with the memory budget. Synthetic
        faces are generated in memory whatever the mode.
    memory_budget : int, optional
        Bytes of decoded images to hold in memory at most; by default
        :func:`default_memory_budget`.
    stream_cache : bool
        Whether a stream caches its decoded images on disk (under ``cache_dir``)
        during its first full pass, so that later passes and later runs read
        them instead of decoding again.

    Returns
    -------
    numpy.ndarray or ImageStream
        Either goes to :func:`make_dataset`.

    Examples
    --------
    >>> faces = open_images("synthetic", "test", image_size=32, limit=4)
    >>> faces.shape
    (4, 32, 32, 3)
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    _check_arguments(split, image_size, limit)
    if mode not in DATA_MODES:
        raise DataError(f"unknown data mode {mode!r}: use one of {', '.join(DATA_MODES)}")
    shape = f"{image_size}x{image_size}"
    if source.is_synthetic:
        images = load_images(source, split, image_size, limit, cache_dir, seed)
        print(f"Data: synthetic faces, {split}: {len(images):,} images of {shape} in memory "
              f"(generated, never streamed)", file=sys.stderr)
        return images
    archive = _open_celeba(source.path)
    listed = len(archive.split_names()[split])
    size = min(listed, limit or listed) * image_size * image_size * 3
    budget = default_memory_budget() if memory_budget is None else memory_budget
    streamed = mode == "stream" or (mode == "auto" and size > budget)
    why = f"mode {mode!r}" if mode != "auto" else f"{_human(size)} decoded, memory budget {_human(budget)}"
    if not streamed:
        print(f"Data: CelebA {split}, {min(listed, limit or listed):,} images of {shape}, in memory ({why})",
              file=sys.stderr)
        return load_images(source, split, image_size, limit, cache_dir)
    folder = cache_root(cache_dir) / "stream" if stream_cache else None
    stream = ImageStream(archive, split, _split_names(archive, split, limit), image_size, folder, limit)
    cached = f"decoded images cached on disk in {folder} during the first pass" if folder else "decoded every pass"
    print(f"Data: CelebA {split}, {len(stream):,} images of {shape}, streamed from the files ({why}; "
          f"${MEMORY_BUDGET_ENV} sets the budget); {cached}", file=sys.stderr)
    return stream


def default_memory_budget() -> int:
    """Bytes of decoded images :func:`open_images` holds in memory: ``$INPAINTLIB_MEMORY_BUDGET``
    (bytes, or a size such as ``4G`` or ``500M``; ``0`` streams every CelebA split), else a
    quarter of the memory available now.

    A quarter, because the array may exist twice (NumPy's and the pipeline's copy) and
    the model, TensorFlow and the rest of the machine need the remainder.
    """
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if not text:
        return _available_memory() // 4
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?", text.lower())
    if not match:
        raise DataError(f"${MEMORY_BUDGET_ENV}={text!r} is not a size: give bytes or a size such as 4G or 500M "
                        f"(0 streams every CelebA split)")
    return int(float(match[1]) * 1024 ** " kmgt".index(match[2] or " "))


def _available_memory() -> int:
    """Bytes of memory available now: Linux's MemAvailable, capped by a container's limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
        # /proc/meminfo shows the host's memory; a container's own limit (cgroup v2) may be lower.
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError, StopIteration):
        pass
    if available is None:  # not Linux: half the physical memory, or 8 GiB where even that is unknown
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
        except (ValueError, OSError, AttributeError):
            available = 8 << 30
    return available


def _human(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


class ImageStream:
    """A CelebA split read and decoded inside tf.data, for splits too large to hold in memory.

    :func:`open_images` makes one when the decoded split exceeds the memory
    budget; :func:`make_dataset` takes it wherever it takes an array. Each
    image comes out exactly as :func:`load_images` decodes it: the same
    decoder runs on the file, in a parallel ``map`` of the pipeline.

    A file that cannot be decoded is left out of the stream and named in
    ``skipped``; the first one also raises a :class:`DataWarning` (the
    in-memory path warns once, before training, naming them all). A pass
    that reads a disk cache written by an earlier run decodes nothing, so
    finds none.

    The disk cache is tf.data's own, read sequentially (kind to a disk the
    split does not fit beside in memory), one per split and size, kept in
    ``cache_dir/stream/``. One pipeline at a time writes it, under a kernel
    lock that dies with its holder, so that a killed run leaves nothing that
    blocks the next.

    Attributes
    ----------
    names : list of str
        The split's files, in the partition file's order, ``limit`` applied.
    image_size : int
    skipped : list of str
        Files found undecodable so far.
    """

    #: Files decoded per call of the Python decoder: enough to amortise the call, small enough to spread over cores.
    CHUNK = 16
    #: Bytes of decoded images a shuffle buffer may hold behind a disk cache.
    SHUFFLE_BYTES = 256 << 20

    def __init__(self, archive: _CelebaArchive, split: str, names: list[str], image_size: int,
                 cache_folder: Path | None = None, limit: int | None = None):
        self.archive, self.split, self.names, self.image_size = archive, split, names, image_size
        self.cache_folder, self.limit = cache_folder, limit
        self.skipped: list[str] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.names)

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded split, were it held in memory."""
        return len(self.names) * self.image_size * self.image_size * 3

    def dataset(self, shuffle: bool = False, seed: int = 0, repeat: bool = False, skip: int = 0):
        """A tf.data.Dataset of uint8 (S, S, 3) images: one pass over the split, or passes
        without end with ``repeat``, less the first ``skip`` images.

        In file order without ``shuffle``. With it and no disk cache, each pass
        reads the files in a fresh order drawn from ``seed``. With a disk cache,
        the first pass writes it and later passes (and later runs) read it; it
        holds the split in one fixed random order, which serves every seed, and
        each pass reshuffles it through a buffer of :attr:`SHUFFLE_BYTES`.

        Without a disk cache the skipped images are never decoded: the file
        indices are skipped. With one they are read from it (decoded only on
        its first pass, which the cache needs whole).
        """
        import tensorflow as tf

        cache = self._disk_cache() if shuffle else None
        order = tf.data.Dataset.range(len(self.names))
        if shuffle:
            fresh = cache is None
            order = order.shuffle(len(self.names), seed=seed if fresh else 0, reshuffle_each_iteration=fresh)
        size = self.image_size

        def decode(indices):
            images, ok = tf.numpy_function(self._decode, [indices], (tf.uint8, tf.bool), stateful=False)
            images.set_shape([None, size, size, 3])
            return tf.boolean_mask(images, tf.ensure_shape(ok, [None]))

        # Deterministic: the same seed gives the same order however many cores decode.
        if cache is None:  # repeat and skip on the file indices, before decoding
            order = (order.repeat() if repeat else order).skip(skip)
        images = order.batch(self.CHUNK).map(decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        if cache is not None:
            prefix, writer_lock = cache
            images = images.cache(prefix)
            if writer_lock is not None:  # held while the pipeline lives: its cache is being written
                weakref.finalize(images, writer_lock.close)
            if shuffle:
                buffer = max(1, min(len(self.names), self.SHUFFLE_BYTES // (size * size * 3)))
                images = images.shuffle(buffer, seed=seed)
            images = (images.repeat() if repeat else images).skip(skip)
        return images

    def _decode(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode files by index: (images, ok), ok False where a file could not be decoded."""
        images = np.zeros((len(indices), self.image_size, self.image_size, 3), np.uint8)
        ok = np.zeros(len(indices), bool)
        for row, index in enumerate(indices):
            image = _decode_file(self.archive, self.names[index], self.image_size)
            if image is None:
                self._skip(self.names[index])
            else:
                images[row], ok[row] = image, True
        return images, ok

    def _skip(self, name: str) -> None:
        with self._lock:
            if name in self.skipped:
                return
            self.skipped.append(name)
            first, all_bad = len(self.skipped) == 1, len(self.skipped) == len(self.names)
        if first:
            warnings.warn(
                f"skipped {name} of the {self.split} split: it could not be decoded (corrupt, truncated or not "
                f"an image). Streaming goes on without it, and without any other such file: "
                f"ImageStream.skipped lists them",
                DataWarning,
                stacklevel=2,
            )
        if all_bad:
            raise DataError(f"none of the {self.split} images of {self.archive.path} could be decoded: "
                            f"check that they are JPEG or PNG files")

    def _disk_cache(self) -> tuple[str, object] | None:
        """tf.data's cache file prefix and the writer's lock (None when reading a complete cache),
        or None where no disk cache can be used now."""
        if self.cache_folder is None:
            return None
        key = {"source": "celeba", **self.archive.fingerprint()}
        folder = self.cache_folder / _cache_name("celeba", key, self.split, self.image_size, self.limit)
        prefix = folder / "images"
        if prefix.with_name("images.index").is_file():
            return str(prefix), None  # complete: any number of pipelines may read it
        lock = None
        try:
            import fcntl  # POSIX only: elsewhere streams decode every pass

            folder.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(folder).free < 1.1 * self.nbytes:
                raise OSError("not enough free disk space")
            lock = open(folder / "writer.lock", "w")
            # The kernel drops this lock when its holder dies: a lock file alone would outlive a killed run.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (ImportError, OSError) as error:
            if lock is not None:
                lock.close()
            reason = "another pipeline is writing it now" if isinstance(error, BlockingIOError) else str(error)
            warnings.warn(f"decoded images are not cached on disk in {folder} ({reason}): every pass decodes "
                          f"the files again", DataWarning, stacklevel=3)
            return None
        # This pipeline is the only writer: what a killed one left (tf.data's lock file, partial data) goes.
        for leftover in folder.glob("images*"):
            leftover.unlink()
        return str(prefix), lock


# --- tf.data pipelines -----------------------------------------------------


def make_dataset(
    images,
    mask="center",
    batch_size: int = 32,
    shuffle: bool = True,
    repeat: bool | None = None,
    seed: int = 0,
    hole: float = 0.5,
    skip: int = 0,
):
    """A tf.data pipeline of ``((masked_image, mask), image)`` batches.

    Parameters
    ----------
    images : numpy.ndarray or ImageStream
        uint8 (N, H, W, 3) images, or a split streamed from its files (see
        :func:`open_images`), which is decoded inside the pipeline.
    mask : str or numpy.ndarray
        A mask kind (``"center"``, ``"random-box"``, ``"free-form"``), drawn
        afresh for every batch inside the pipeline, or fixed float32 masks
        (N, H, W, 1) that go with an array of ``images`` (evaluation).
    batch_size : int
    shuffle : bool
        Shuffle the images each epoch.
    repeat : bool, optional
        Repeat forever (training); defaults to ``shuffle``.
    seed : int
        Seed of the shuffle and of the masks: the same seed gives the same batches.
    hole : float
        Hole size as a fraction of the image side (see :mod:`inpaintlib.masks`).
    skip : int
        Batches to leave out at the start: the pipeline then yields batch
        ``skip`` onwards of the same stream, so a resumed training run sees what
        the uninterrupted run saw. The skipped images and holes are never
        drawn: an array skips shuffled indices and mask seeds, and a stream
        without a disk cache skips file indices, before any decoding.

    Returns
    -------
    tf.data.Dataset
        float32 in [0, 1]: masked images (B, H, W, 3) with holes set to 0, masks
        (B, H, W, 1) with 1 for a missing pixel, and the original images (B, H, W, 3).

    Examples
    --------
    >>> faces = load_images("synthetic", "test", image_size=32, limit=8)
    >>> (masked, masks), targets = next(iter(make_dataset(faces, batch_size=4)))
    >>> tuple(masked.shape), tuple(masks.shape)
    ((4, 32, 32, 3), (4, 32, 32, 1))
    """
    # Imported here so that loading images and the command line start without TensorFlow.
    import tensorflow as tf

    from inpaintlib.masks import check_hole, check_mask_kind, draw_masks

    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, not {batch_size}")
    if not isinstance(skip, (int, np.integer)) or skip < 0:
        raise DataError(f"skip must be a number of batches, 0 or more, not {skip!r}")
    repeat = shuffle if repeat is None else repeat
    fixed_masks = None
    if isinstance(mask, str):
        check_mask_kind(mask)
        check_hole(hole)
    elif isinstance(images, ImageStream):
        raise DataError("fixed masks go with an array of images: load the split with load_images")
    if isinstance(images, ImageStream):
        # A split too large for memory: its files are decoded inside the pipeline.
        image_size = images.image_size
        examples = images.dataset(shuffle=shuffle, seed=seed, repeat=repeat, skip=skip * batch_size)
        batches = examples.batch(batch_size)
        skip_batches = 0  # the stream skipped its examples itself
        pick = tf.identity
    else:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
            raise DataError(f"images must be a non-empty uint8 array (N, H, W, 3), not {images.dtype} {images.shape}")
        image_size = images.shape[1]
        if not isinstance(mask, str):
            fixed_masks = np.asarray(mask, np.float32)
            if fixed_masks.shape != images.shape[:3] + (1,):
                raise DataError(f"fixed masks must have shape {images.shape[:3] + (1,)}, not {fixed_masks.shape}")
            fixed_masks = tf.constant(fixed_masks)
        pixels = tf.constant(images)
        # Shuffle indices, not images: cheap at any size, and a batch is one gather.
        indices = tf.data.Dataset.range(len(images))
        if shuffle:
            indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            indices = indices.repeat()
        batches = indices.batch(batch_size)
        skip_batches = skip
        pick = lambda index: tf.gather(pixels, index)  # noqa: E731
    batch_seeds = tf.data.Dataset.random(seed=seed).skip(skip)  # one fresh mask seed per batch

    def to_example(batch, batch_seed):
        image = tf.cast(pick(batch), tf.float32) / 255.0
        if fixed_masks is None:
            holes = draw_masks(mask, tf.shape(image)[0], image_size, seed=tf.stack([batch_seed, seed]), hole=hole)
        else:
            holes = tf.gather(fixed_masks, batch)
        return (image * (1.0 - holes), holes), image

    dataset = tf.data.Dataset.zip(batches.skip(skip_batches), batch_seeds)
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
