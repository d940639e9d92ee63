"""The cache of decoded images: its folder, its entries' names (keyed by the code that shaped them),
and arrays written atomically and rebuilt when absent or broken.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from inpaintlib.data.sources import warn
from inpaintlib.files import atomic_write
from inpaintlib.provenance import source_digest

CACHE_ENV = "INPAINTLIB_CACHE"
#: The modules whose code shapes the cached arrays: what a source holds, how it is read, decoded,
#: generated, loaded and cached. Streaming and the tf.data pipeline only pass the images on.
_SHAPING_MODULES = ("sources.py", "celeba.py", "decoding.py", "synthetic.py", "loading.py", "cache.py")


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$INPAINTLIB_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("inpaintlib"))


def cache_name(label: str, key: dict, split: str, image_size: int, limit: int | None) -> str:
    """A cache entry's name: readable, plus a hash of everything that shaped its content."""
    # The code that decodes and generates the images: an edit to it never reuses stale arrays.
    code = source_digest([Path(__file__).with_name(module) for module in _SHAPING_MODULES])
    key = {**key, "split": split, "image_size": image_size, "limit": limit, "code": code}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{label}-{split}-{image_size}px-{limit or 'all'}-{digest}"


def cached_array(path: Path, build, image_size: int) -> np.ndarray:
    """Return the array cached at ``path``, building and saving it when absent or broken."""
    if path.exists():
        try:
            images = np.load(path, allow_pickle=False)
            if images.dtype == np.uint8 and images.shape[1:] == (image_size, image_size, 3):
                return images
        except (OSError, ValueError, EOFError):
            pass
        warn(f"cache file {path} is unreadable; rebuilding it", stacklevel=3)
    images = build()
    try:
        save_atomically(path, images)
    except OSError as error:
        warn(
            f"could not write the cache file {path} ({error.strerror}); the images are "
            f"decoded again next time. Set ${CACHE_ENV} to a writable folder.",
            stacklevel=3,
        )
    return images


def save_atomically(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as .npy so that ``path`` is either absent or complete, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)
