"""Reading CelebA from a folder or a zip: its partition file, its splits' file names and the bytes
of its images, and :func:`.check_source`, which opens a source without decoding anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from pathlib import Path, PurePosixPath

from inpaintlib.data.sources import CELEBA_ENV, IMAGE_DIR, SPLITS, DataSource, parse_data_spec, warn
from inpaintlib.errors import DataError

PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")


def check_source(spec: str | DataSource) -> DataSource:
    """Parse a data spec and, for CelebA, open its folder or zip and read its partition file:
    the checks a command runs first, so that a bad path fails in an instant (no image is decoded).

    Raises :class:`~inpaintlib.errors.DataError` naming the problem and the fix.
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    if not source.is_synthetic:
        open_celeba(source.path).split_names()
    return source


class CelebaArchive:
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
        return zip_reader(str(self.path)).read(location) if self.is_zip else Path(location).read_bytes()

    def split_names(self) -> dict[str, list[str]]:
        """The file names of each split, in the partition file's order."""
        raw = zip_reader(str(self.path)).read(self.partition_name) if self.is_zip else (self.path / self.partition_name).read_bytes()
        where = f"{self.path}:{self.partition_name}" if self.is_zip else f"{self.path}/{self.partition_name}"
        return _parse_partition(raw.decode("utf-8", errors="replace"), where)


def open_celeba(path: Path) -> CelebaArchive:
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
    return CelebaArchive(path, partition, images)


def _open_celeba_zip(path: Path, fix: str) -> CelebaArchive:
    try:
        archive = zip_reader(str(path))
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
    return CelebaArchive(path, partition, images, is_zip=True)


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


@functools.cache
def listed_images(path: Path) -> int:
    """How many images the partition file of the CelebA folder or zip at ``path`` lists (0 where
    it cannot be read: a label must not fail where loading would have failed first)."""
    try:
        return sum(map(len, open_celeba(path).split_names().values()))
    except DataError:
        return 0


def split_names(archive: CelebaArchive, split: str, limit: int | None) -> list[str]:
    """The files of a split that exist, in order, ``limit`` applied; missing ones counted in a warning."""
    listed = archive.split_names()[split]
    present = [name for name in listed if name in archive.images]
    missing = [name for name in listed if name not in archive.images]
    if missing:
        warn(
            f"{len(missing)} of the {len(listed)} {split} files named in {archive.partition_name} "
            f"are missing from {archive.path} and were skipped: {first_names(missing)}",
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


def data_identity(spec: str | DataSource) -> str:
    """What a data source holds, independent of where it lies: ``"synthetic"``, or ``"celeba:"``
    and a hash of the image names each split holds (those present, in the partition's order).

    The caches of trained models and executed chapters key on it, so the same CelebA in another
    folder, in a zip, or on another machine (a model bundle trained on Colab) names the same models.
    """
    source = spec if isinstance(spec, DataSource) else parse_data_spec(spec)
    if source.is_synthetic:
        return "synthetic"
    archive = open_celeba(source.path.resolve())
    # Kept while the folder's or zip's sizes and times hold: a chapter's build asks several times.
    seen = (archive.path, json.dumps(archive.fingerprint()["stats"]))
    if seen not in _content_digests:
        digest = hashlib.sha256()
        for split, names in archive.split_names().items():
            present = [name for name in names if name in archive.images]
            digest.update(f"{split}\0{len(present)}\0".encode() + "\n".join(present).encode())
        _content_digests[seen] = digest.hexdigest()[:16]
        if len(_content_digests) > 8:  # a process sees a few sources; forget the oldest
            _content_digests.pop(next(iter(_content_digests)))
    return f"celeba:{_content_digests[seen]}"


_content_digests: dict[tuple, str] = {}


def first_names(names: list[str]) -> str:
    """The first five of ``names``, for a message; `` ...`` where there are more."""
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


@functools.lru_cache(maxsize=2)
def zip_reader(path: str) -> zipfile.ZipFile:
    """The open zip file at ``path``, opened once per process (``zip_reader.cache_clear()`` forgets it)."""
    # Opening a large zip reads its whole directory: do it once. Reading members from
    # several threads is safe: ZipFile serialises access to the shared file.
    return zipfile.ZipFile(path)
