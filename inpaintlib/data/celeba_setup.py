"""Putting CelebA where the chapters find it: from Kaggle, from a .zip (on Google Drive, say), or a folder.

The loader reads a CelebA zip directly, so nothing is unpacked; but Google Drive
serves a file slowly, so a zip is first copied to local disk. The result is
checked with the loader's own checks and named in ``$CELEBA_DIR``, which the
chapters' ``data = "auto"`` reads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from inpaintlib.data.cache import cache_root
from inpaintlib.data.celeba import open_celeba, zip_reader
from inpaintlib.data.loading import load_images
from inpaintlib.data.sources import CELEBA_ENV, SPLITS, DataSource
from inpaintlib.errors import DataError
from inpaintlib.files import atomic_write

#: The Kaggle copy of CelebA, with ``img_align_celeba/img_align_celeba/*.jpg`` and ``list_eval_partition.csv``.
KAGGLE_DATASET = "jessicali9530/celeba-dataset"
_KAGGLE_SIGN_IN = (
    "kagglehub signs in with your Kaggle API token (kaggle.com > Settings > API > Create New Token): on "
    "Colab add the secrets KAGGLE_USERNAME and KAGGLE_KEY (the key icon on the left) and grant this "
    "notebook access; elsewhere put kaggle.json in ~/.kaggle/"
)


def setup_celeba(source: str | Path, target: str | Path | None = None) -> Path:
    """Make CelebA ready for the chapters and set ``$CELEBA_DIR`` to it.

    Parameters
    ----------
    source : str or Path
        ``"kaggle"``: download :data:`.KAGGLE_DATASET` with ``kagglehub`` (about
        1.4 GB, once: it stays in kagglehub's cache). A ``.zip`` path, such as
        ``/content/drive/MyDrive/celeba.zip``: copied into ``target`` unless an
        equally large copy is already there. A folder: used where it is.
        Each holds ``img_align_celeba/`` and ``list_eval_partition.txt`` (or
        Kaggle's ``.csv``).
    target : str or Path, optional
        The folder a zip is copied into: local disk, since Drive reads slowly.
        By default ``celeba/`` in the cache folder (see
        :func:`inpaintlib.data.cache.cache_root`). A zip already in it is used in place.

    Returns
    -------
    Path
        The CelebA folder or zip, now also in ``os.environ["CELEBA_DIR"]``.
        Anything that is not CelebA raises :class:`.DataError` saying why.
    """
    if str(source) == "kaggle":
        path = _download_from_kaggle()
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path} does not exist: give 'kaggle', a CelebA .zip or a CelebA folder "
                            f"(on Colab, mount Google Drive first: drive.mount('/content/drive'))")
        if path.is_file():
            if path.suffix.lower() != ".zip":
                raise DataError(f"{path} is not a .zip: give 'kaggle', a CelebA .zip or a CelebA folder")
            check_celeba(path)  # before a copy that takes minutes
            path = _copy_once(path, Path(target).expanduser() if target else cache_root() / "celeba")
    count = check_celeba(path)
    os.environ[CELEBA_ENV] = str(path)
    print(f'CelebA ready at {path} ({count:,} images, every split opens). {CELEBA_ENV} is set to it, so data = "auto" reads it.')
    return path


def check_celeba(path: Path) -> int:
    """Check a CelebA folder or zip with the loader: every split opens and its first image decodes.

    Parameters
    ----------
    path : Path
        A folder or .zip holding ``img_align_celeba/`` and the partition file.

    Returns
    -------
    int
        The number of image files it holds. A missing images folder or
        partition file, a malformed line or an empty split raises
        :class:`.DataError`, as the chapters would.
    """
    with tempfile.TemporaryDirectory() as scratch:  # these one-image loads are not worth caching
        for split in SPLITS:
            load_images(DataSource("celeba", path), split, limit=1, cache_dir=scratch)
    return len(open_celeba(path).images)


def _download_from_kaggle() -> Path:
    try:
        import kagglehub
    except ImportError:
        raise DataError(f"setup_celeba('kaggle') needs kagglehub: pip install kagglehub. {_KAGGLE_SIGN_IN}") from None
    print(f"Downloading {KAGGLE_DATASET} with kagglehub (about 1.4 GB, once) ...", flush=True)
    try:
        return Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as error:  # kagglehub's own types: no credentials, HTTP errors, a full disk
        raise DataError(f"kagglehub could not download {KAGGLE_DATASET} ({error}). {_KAGGLE_SIGN_IN}") from None


def _copy_once(source: Path, folder: Path) -> Path:
    """Copy a file into ``folder`` unless it or an equally large copy is there; never leave a partial copy."""
    copy = folder / source.name
    size = source.stat().st_size
    if copy.is_file() and (copy.samefile(source) or copy.stat().st_size == size):
        print(f"Using {copy} ({size / 1e9:.2f} GB), already on this disk")
        return copy
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Copying {source} ({size / 1e9:.2f} GB) to {copy} ...", flush=True)
    started = time.perf_counter()
    # An interrupted copy (Drive unmounted, Ctrl-C) leaves nothing behind.
    with atomic_write(copy) as out, source.open("rb") as data:
        shutil.copyfileobj(data, out, 16 << 20)
    zip_reader.cache_clear()  # it may hold an earlier file of the same name open
    print(f"  copied in {time.perf_counter() - started:.0f} s")
    return copy
