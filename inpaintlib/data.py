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
import tempfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from inpaintlib.errors import DataError

SPLITS = {"train": 0, "validation": 1, "test": 2}
#: Sizes of the synthetic splits; CelebA's come from its partition file.
SYNTHETIC_SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
IMAGE_DIR = "img_align_celeba"
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
CACHE_ENV = "INPAINTLIB_CACHE"
CELEBA_ENV = "CELEBA_DIR"
# Bump when decoding or generation changes, so stale caches are not reused.
_CACHE_VERSION = 1
# PIL signals a broken file with any of these, depending on the format.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class DataWarning(UserWarning):
    """Something in the data was skipped or replaced; the message says what."""


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
    key.update(split=split, image_size=image_size, limit=limit, version=_CACHE_VERSION)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{label}-{split}-{image_size}px-{limit or 'all'}-{digest}.npy"
    return _cached(cache_root(cache_dir) / "images" / name, build, image_size)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$INPAINTLIB_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("inpaintlib"))


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
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
        try:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(f.name, 0o644)  # temporary files are private; a cache need not be
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.replace(f.name, path)


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

    def read_partition(self) -> str:
        raw = _zip_reader(str(self.path)).read(self.partition_name) if self.is_zip else (self.path / self.partition_name).read_bytes()
        return raw.decode("utf-8", errors="replace")


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


def _decode_split(archive: _CelebaArchive, split: str, image_size: int, limit: int | None) -> np.ndarray:
    source = f"{archive.path}:{archive.partition_name}" if archive.is_zip else f"{archive.path}/{archive.partition_name}"
    listed = _parse_partition(archive.read_partition(), source)[split]
    present = [name for name in listed if name in archive.images]
    missing = [name for name in listed if name not in archive.images]
    if missing:
        warnings.warn(
            f"{len(missing)} of the {len(listed)} {split} files named in {archive.partition_name} "
            f"are missing from {archive.path} and were skipped: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else ""),
            DataWarning,
            stacklevel=4,
        )
    if limit is not None:
        present = present[:limit]
    if not present:
        raise DataError(
            f"the {split} split of {archive.path} is empty: {archive.partition_name} lists no "
            f"{split} image (partition {SPLITS[split]}) that exists in {IMAGE_DIR}/. Check that "
            f"the partition file belongs to these images"
        )

    images, ok = _decode_all(archive, present, image_size, f"Decoding CelebA {split}")
    if not ok.all():
        bad = [name for name, good in zip(present, ok) if not good]
        warnings.warn(
            f"skipped {len(bad)} of {len(present)} {split} images that could not be decoded "
            f"(corrupt, truncated or not images): {', '.join(bad[:5])}" + (" ..." if len(bad) > 5 else ""),
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
        location = archive.images[names[i]]
        try:
            data = _zip_reader(str(archive.path)).read(location) if archive.is_zip else Path(location).read_bytes()
            images[i] = decode_image(data, image_size)
            ok[i] = True
        except _DECODE_ERRORS:
            pass

    # Threads suffice: OpenCV's JPEG decoder and file reads release the GIL.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = pool.map(decode, range(len(names)))
        for _ in tqdm(done, total=len(names), desc=description, unit="img", disable=len(names) < 2000, mininterval=1.0):
            pass
    return images, ok


@functools.lru_cache(maxsize=2)
def _zip_reader(path: str) -> zipfile.ZipFile:
    # Opening a large zip reads its whole directory: do it once. Reading members from
    # several threads is safe: ZipFile serialises access to the shared file.
    return zipfile.ZipFile(path)


# libjpeg's scaled decoding: 1/2, 1/4 or 1/8 of the size, computed inside the DCT.
_REDUCED_JPEG = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, image_size: int) -> np.ndarray:
    """Decode image bytes to a uint8 RGB square: centre-cropped, antialiased resize.

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
        # The common case, CelebA's JPEGs: decode at the smallest scale still larger
        # than image_size (3x faster than full size), then an area resize antialiases.
        scale = 1
        while scale < 8 and min(width, height) // (2 * scale) >= image_size:
            scale *= 2
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_JPEG[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
        if pixels is not None:
            return _square(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), image_size)
    # Everything else (PNG, CMYK, palette, alpha, odd JPEGs) goes through PIL.
    image.draft("RGB", (image_size, image_size))
    return _square(np.asarray(image.convert("RGB")), image_size)


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


def save_png_atomically(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 image as PNG so that ``path`` is complete or absent, never partial."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"the output folder {path.parent} does not exist: create it or choose another output")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}", suffix=".tmp", delete=False) as f:
            Image.fromarray(image).save(f, format="PNG")
        os.chmod(f.name, 0o644)
        os.replace(f.name, path)
    except OSError as error:
        raise DataError(f"cannot write {path} ({error.strerror}): choose a writable output folder") from None


def _square(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """Centre-crop to a square and resize to image_size with an antialiasing (area) filter."""
    height, width = pixels.shape[:2]
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side >= image_size else cv2.INTER_CUBIC
    return cv2.resize(square, (image_size, image_size), interpolation=interpolation)


# --- tf.data pipelines -----------------------------------------------------


def make_dataset(
    images: np.ndarray,
    mask="center",
    batch_size: int = 32,
    shuffle: bool = True,
    repeat: bool | None = None,
    seed: int = 0,
    hole: float = 0.5,
):
    """A tf.data pipeline of ``((masked_image, mask), image)`` batches.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, H, W, 3) images.
    mask : str or numpy.ndarray
        A mask kind (``"center"``, ``"random-box"``, ``"free-form"``), drawn
        afresh for every batch inside the pipeline, or fixed float32 masks
        (N, H, W, 1) that go with ``images`` (evaluation).
    batch_size : int
    shuffle : bool
        Shuffle the images each epoch.
    repeat : bool, optional
        Repeat forever (training); defaults to ``shuffle``.
    seed : int
        Seed of the shuffle and of the masks: the same seed gives the same batches.
    hole : float
        Hole size as a fraction of the image side (see :mod:`inpaintlib.masks`).

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

    from inpaintlib.masks import draw_masks

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise DataError(f"images must be a non-empty uint8 array (N, H, W, 3), not {images.dtype} {images.shape}")
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, not {batch_size}")
    repeat = shuffle if repeat is None else repeat
    image_size = images.shape[1]
    fixed_masks = None
    if not isinstance(mask, str):
        fixed_masks = np.asarray(mask, np.float32)
        if fixed_masks.shape != images.shape[:3] + (1,):
            raise DataError(f"fixed masks must have shape {images.shape[:3] + (1,)}, not {fixed_masks.shape}")
        fixed_masks = tf.constant(fixed_masks)
    else:
        draw_masks(mask, 1, image_size, seed=(0, 0), hole=hole)  # fail early on an unknown kind
    pixels = tf.constant(images)

    # Shuffle indices, not images: cheap at any size, and a batch is one gather.
    indices = tf.data.Dataset.range(len(images))
    if shuffle:
        indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        indices = indices.repeat()
    batches = indices.batch(batch_size)
    batch_seeds = tf.data.Dataset.random(seed=seed)  # one fresh mask seed per batch

    def to_example(index, batch_seed):
        image = tf.cast(tf.gather(pixels, index), tf.float32) / 255.0
        if fixed_masks is None:
            holes = draw_masks(mask, tf.shape(index)[0], image_size, seed=tf.stack([batch_seed, seed]), hole=hole)
        else:
            holes = tf.gather(fixed_masks, index)
        return (image * (1.0 - holes), holes), image

    dataset = tf.data.Dataset.zip(batches, batch_seeds)
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
