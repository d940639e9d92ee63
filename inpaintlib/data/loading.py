"""Loading a whole split into memory: :func:`.load_images`, which generates the synthetic split or
decodes a CelebA split on every core, and caches the array.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.concurrent import thread_map

from inpaintlib.data.cache import cache_name, cache_root, cached_array
from inpaintlib.data.celeba import CelebaArchive, first_names, open_celeba, split_names
from inpaintlib.data.decoding import check_image_size, decode_file
from inpaintlib.data.sources import SPLITS, SYNTHETIC_SPLIT_SIZES, DataSource, parse_data_spec, warn
from inpaintlib.data.synthetic import synthetic_faces
from inpaintlib.errors import DataError


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
        A data spec (see :func:`.parse_data_spec`).
    split : {"train", "validation", "test"}
    image_size : int
        Side of the square images, 64 by default; 128 works too.
    limit : int, optional
        Take only the first ``limit`` images of the split, in file order.
    cache_dir : str or Path, optional
        Where decoded arrays are cached; see :func:`.cache_root`.
    seed : int
        Seed of the synthetic faces; CelebA ignores it.

    Returns
    -------
    numpy.ndarray
        uint8 images; a CelebA file that cannot be decoded is skipped, counted
        and named in one :class:`.DataWarning`.

    Examples
    --------
    >>> load_images("synthetic", "test", image_size=32, limit=4).shape
    (4, 32, 32, 3)
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    check_arguments(split, image_size, limit)
    if source.is_synthetic:
        key = {"source": "synthetic", "seed": seed}
        label = "synthetic"
        build = lambda: _synthetic_split(split, image_size, limit, seed)  # noqa: E731
    else:
        archive = open_celeba(source.path)
        key = {"source": "celeba", **archive.fingerprint()}
        label = "celeba"
        build = lambda: _decode_split(archive, split, image_size, limit)  # noqa: E731
    name = cache_name(label, key, split, image_size, limit) + ".npy"
    return cached_array(cache_root(cache_dir) / "images" / name, build, image_size)


def check_arguments(split: str, image_size: int, limit: int | None) -> None:
    """Raise DataError unless ``split``, ``image_size`` and ``limit`` name a split that can be loaded."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    check_image_size(image_size)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"limit must be a positive integer or None (the whole split), not {limit!r}")


# --- synthetic faces -------------------------------------------------------


def _synthetic_split(split: str, image_size: int, limit: int | None, seed: int) -> np.ndarray:
    # The splits are consecutive, disjoint runs of one seeded stream of faces.
    start = sum(SYNTHETIC_SPLIT_SIZES[s] for s in SPLITS if SPLITS[s] < SPLITS[split])
    n = SYNTHETIC_SPLIT_SIZES[split] if limit is None else min(limit, SYNTHETIC_SPLIT_SIZES[split])
    return synthetic_faces(n, image_size=image_size, seed=seed, start=start)


# --- CelebA ----------------------------------------------------------------


def _decode_split(archive: CelebaArchive, split: str, image_size: int, limit: int | None) -> np.ndarray:
    present = split_names(archive, split, limit)
    images, ok = _decode_all(archive, present, image_size, f"Decoding CelebA {split}")
    if not ok.all():
        bad = [name for name, good in zip(present, ok) if not good]
        warn(
            f"skipped {len(bad)} of {len(present)} {split} images that could not be decoded "
            f"(corrupt, truncated or not images): {first_names(bad)}",
            stacklevel=4,
        )
        if not ok.any():
            raise DataError(f"none of the {split} images of {archive.path} could be decoded: check that they are JPEG or PNG files")
    return images[ok]


def _decode_all(archive: CelebaArchive, names: list[str], image_size: int, description: str):
    """Decode ``names`` on every core; returns (images, ok) with ok False where decoding failed."""
    images = np.zeros((len(names), image_size, image_size, 3), np.uint8)
    ok = np.zeros(len(names), bool)

    def decode(i: int) -> None:
        image = decode_file(archive, names[i], image_size)
        if image is not None:
            images[i], ok[i] = image, True

    # Threads suffice: OpenCV's JPEG decoder and file reads release the GIL. (A thread pool takes
    # no chunksize: thread_map's applies to process pools only.) tqdm_class: a plain text bar in a
    # notebook too, not tqdm.auto's widget.
    thread_map(decode, range(len(names)), max_workers=os.cpu_count() or 1, tqdm_class=tqdm, desc=description,
               unit="img", disable=len(names) < 2000, mininterval=1.0)
    return images, ok
