"""Data specs and what they name: the splits, :class:`.DataSource`, and the :class:`.DataWarning`
that the data layer raises when it skips or replaces something.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from inpaintlib.errors import DataError

SPLITS = {"train": 0, "validation": 1, "test": 2}
#: Sizes of the synthetic splits; CelebA's come from its partition file.
SYNTHETIC_SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
#: The folder of images that a CelebA folder or zip holds.
IMAGE_DIR = "img_align_celeba"
CELEBA_ENV = "CELEBA_DIR"
#: Images in CelebA's official partition (162,770 train, 19,867 validation, 19,962 test).
CELEBA_IMAGES = 202_599


class DataWarning(UserWarning):
    """Something in the data was skipped or replaced; the message says what."""


# warn swaps warnings.formatwarning: one swap at a time, or two overlapping ones could leave it swapped.
_FORMAT_LOCK = threading.RLock()


def warn(message: str, stacklevel: int) -> None:
    """Emit a :class:`.DataWarning` that shows as ``DataWarning: <message>``, on one line.

    Parameters
    ----------
    message : str
    stacklevel : int
        As for :func:`warnings.warn` called where this is: 2 points the
        warning at the caller's caller.

    Notes
    -----
    The one-line format is in place only during this call, so every other
    warning of the process prints as Python prints it.
    """
    with _FORMAT_LOCK:
        format_warning = warnings.formatwarning

        def format_data_warning(message, category, filename, lineno, line=None):
            # A DataWarning speaks to the reader: its message alone, without the library line that raised it.
            if issubclass(category, DataWarning):
                return f"{category.__name__}: {message}\n"
            return format_warning(message, category, filename, lineno, line)

        warnings.formatwarning = format_data_warning
        try:
            warnings.warn(message, DataWarning, stacklevel=stacklevel + 1)  # + 1: this function's frame
        finally:
            warnings.formatwarning = format_warning


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
        """How plots and tables name this source. Synthetic faces say they are a stand-in, and a
        CelebA folder that lists fewer images than CelebA's says it is a sample. Never a path, as
        a published page must not print the folder of the machine that built it."""
        if self.is_synthetic:
            return "synthetic faces (a stand-in for CelebA, not real photos)"
        from inpaintlib.data.celeba import listed_images

        listed = listed_images(self.path)
        return "CelebA" if listed >= CELEBA_IMAGES else f"CelebA sample ({listed:,} of its {CELEBA_IMAGES:,} images)"


def parse_data_spec(spec: str) -> DataSource:
    """Turn a data spec string into a :class:`.DataSource`.

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
        warn(
            f"${CELEBA_ENV} is not set, so this runs on synthetic faces, a stand-in for "
            f"CelebA. For real faces set {CELEBA_ENV} to the folder or .zip that holds "
            f"{IMAGE_DIR}/ and list_eval_partition.txt.",
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
