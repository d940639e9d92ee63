"""Holding a split for training: :func:`.open_images` keeps it in memory when it fits the memory
budget and otherwise returns an :class:`.ImageStream`, which decodes its files inside tf.data.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import weakref
from pathlib import Path

import numpy as np

from inpaintlib.data.cache import cache_name, cache_root
from inpaintlib.data.celeba import CelebaArchive, open_celeba, split_names
from inpaintlib.data.decoding import decode_file
from inpaintlib.data.loading import check_arguments, load_images
from inpaintlib.data.sources import DataSource, parse_data_spec, warn
from inpaintlib.errors import DataError
from inpaintlib.files import hold_lock

MEMORY_BUDGET_ENV = "INPAINTLIB_MEMORY_BUDGET"
#: How open_images holds a split, chosen by the memory budget or forced.
DATA_MODES = ("auto", "memory", "stream")


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
    decoded into an array (:func:`.load_images`); above it, an
    :class:`.ImageStream` decodes the files inside the tf.data pipeline. One
    line on stderr says which, and why (stdout stays free for ``--json``
    output and benchmarks).

    Parameters
    ----------
    spec, split, image_size, limit, cache_dir, seed
        As for :func:`.load_images`.
    mode : {"auto", "memory", "stream"}
        ``"auto"`` compares the decoded size with the memory budget. Synthetic
        faces are generated in memory whatever the mode.
    memory_budget : int, optional
        Bytes of decoded images to hold in memory at most; by default
        :func:`.default_memory_budget`.
    stream_cache : bool
        Whether a stream caches its decoded images on disk (under ``cache_dir``)
        during its first full pass, so that later passes and later runs read
        them instead of decoding again.

    Returns
    -------
    numpy.ndarray or ImageStream
        Either goes to :func:`.make_dataset`.

    Examples
    --------
    >>> faces = open_images("synthetic", "test", image_size=32, limit=4)
    >>> faces.shape
    (4, 32, 32, 3)
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    check_arguments(split, image_size, limit)
    if mode not in DATA_MODES:
        raise DataError(f"unknown data mode {mode!r}: use one of {', '.join(DATA_MODES)}")
    shape = f"{image_size}x{image_size}"
    if source.is_synthetic:
        images = load_images(source, split, image_size, limit, cache_dir, seed)
        print(f"Data: synthetic faces, {split}: {len(images):,} images of {shape} in memory "
              f"(generated, never streamed)", file=sys.stderr)
        return images
    archive = open_celeba(source.path)
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
    stream = ImageStream(archive, split, split_names(archive, split, limit), image_size, folder, limit)
    cached = f"decoded images cached on disk in {folder} during the first pass" if folder else "decoded every pass"
    print(f"Data: CelebA {split}, {len(stream):,} images of {shape}, streamed from the files ({why}; "
          f"${MEMORY_BUDGET_ENV} sets the budget); {cached}", file=sys.stderr)
    return stream


def default_memory_budget() -> int:
    """Bytes of decoded images :func:`.open_images` holds in memory: ``$INPAINTLIB_MEMORY_BUDGET``
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

    :func:`.open_images` makes one when the decoded split exceeds the memory
    budget; :func:`.make_dataset` takes it wherever it takes an array. Each
    image comes out exactly as :func:`.load_images` decodes it: the same
    decoder runs on the file, in a parallel ``map`` of the pipeline.

    A file that cannot be decoded is left out of the stream and named in
    ``skipped``; the first one also raises a :class:`.DataWarning` (the
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

    #: Files decoded per call of the Python decoder, enough to amortise the call and few enough to spread over cores.
    CHUNK = 16
    #: Bytes of decoded images a shuffle buffer may hold behind a disk cache.
    SHUFFLE_BYTES = 256 << 20

    def __init__(self, archive: CelebaArchive, split: str, names: list[str], image_size: int,
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
        each pass reshuffles it through a buffer of :attr:`.SHUFFLE_BYTES`.

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
            image = decode_file(self.archive, self.names[index], self.image_size)
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
            warn(
                f"skipped {name} of the {self.split} split: it could not be decoded (corrupt, truncated or not "
                f"an image). Streaming goes on without it, and without any other such file: "
                f"ImageStream.skipped lists them",
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
        folder = self.cache_folder / cache_name("celeba", key, self.split, self.image_size, self.limit)
        prefix = folder / "images"
        if prefix.with_name("images.index").is_file():
            return str(prefix), None  # complete: any number of pipelines may read it
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(folder).free < 1.1 * self.nbytes:
                raise OSError("not enough free disk space")
            # A kernel lock, which dies with its holder: a lock file alone would outlive a killed run.
            lock = hold_lock(folder / "writer.lock")
        except (ImportError, OSError) as error:  # ImportError: no flock (not POSIX), so streams decode every pass
            reason = "another pipeline is writing it now" if isinstance(error, BlockingIOError) else str(error)
            warn(f"decoded images are not cached on disk in {folder} ({reason}): every pass decodes "
                 f"the files again", stacklevel=3)
            return None
        # This pipeline is the only writer: what a killed one left (tf.data's lock file, partial data) goes.
        for leftover in folder.glob("images*"):
            leftover.unlink()
        return str(prefix), lock
