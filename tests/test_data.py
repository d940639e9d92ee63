"""CelebA loading from folders and zips, synthetic specs, the cache, and bad input."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import warnings

import cv2
import numpy as np
import pytest
from conftest import face_like, jpeg_bytes, write_celeba, zip_folder
from PIL import Image, JpegImagePlugin

from inpaintlib import data as datalib
from inpaintlib import files
from inpaintlib.data import DataWarning, decode_image, decoding, load_images, loading, parse_data_spec
from inpaintlib.errors import DataError

PARTITIONS = [0, 0, 1, 0, 2, 0, 1, 2, 0, 2]  # 5 train, 2 validation, 3 test


@pytest.fixture
def celeba(tmp_path):
    return write_celeba(tmp_path / "celeba", PARTITIONS)


def test_a_celeba_label_names_the_source_and_its_size_never_its_path(celeba, monkeypatch):
    from inpaintlib.data import sources

    label = parse_data_spec(f"celeba:{celeba}").label
    assert label == f"CelebA sample ({len(PARTITIONS)} of its 202,599 images)" and str(celeba) not in label
    monkeypatch.setattr(sources, "CELEBA_IMAGES", len(PARTITIONS))
    assert parse_data_spec(f"celeba:{celeba}").label == "CelebA", "the whole of CelebA is CelebA"


def test_data_specs(tmp_path, monkeypatch):
    assert parse_data_spec("synthetic").is_synthetic
    source = parse_data_spec(f"celeba:{tmp_path}")
    assert source.kind == "celeba" and source.path == tmp_path
    assert "stand-in" in parse_data_spec("synthetic").label
    monkeypatch.setenv("CELEBA_DIR", str(tmp_path))
    assert parse_data_spec("auto") == source


def test_auto_without_celeba_dir_says_it_uses_synthetic_faces():
    with pytest.warns(DataWarning, match="synthetic faces, a stand-in for CelebA.*CELEBA_DIR"):
        assert parse_data_spec("auto").is_synthetic


@pytest.mark.parametrize("spec", ["celeb", "celeba:", "", "imagenet:/data", "CELEBA:/x"])
def test_unknown_data_spec_names_the_valid_ones(spec):
    with pytest.raises(DataError, match="unknown data spec.*'synthetic', 'celeba:PATH'.*'auto'"):
        parse_data_spec(spec)


def test_folder_splits_follow_the_partition_file_in_order(celeba):
    train = load_images(f"celeba:{celeba}", "train", image_size=32)
    validation = load_images(f"celeba:{celeba}", "validation", image_size=32)
    test = load_images(f"celeba:{celeba}", "test", image_size=32)
    assert (len(train), len(validation), len(test)) == (5, 2, 3)
    assert train.dtype == np.uint8 and train.shape[1:] == (32, 32, 3)
    # File order within the split: test is files 5, 8, 10.
    expected = [decode_image(jpeg_bytes(face_like(i)), 32) for i in (4, 7, 9)]
    np.testing.assert_array_equal(test, np.stack(expected))


def test_limit_takes_the_first_images_of_the_split(celeba):
    first_two = load_images(f"celeba:{celeba}", "train", image_size=16, limit=2)
    everything = load_images(f"celeba:{celeba}", "train", image_size=16)
    np.testing.assert_array_equal(first_two, everything[:2])


@pytest.mark.parametrize("layout", ["csv", "kaggle", "zip", "zip-in-folder", "kaggle-zip"])
def test_other_layouts_load_the_same_images(tmp_path, celeba, layout):
    reference = load_images(f"celeba:{celeba}", "test", image_size=24)
    if layout == "csv":
        path = write_celeba(tmp_path / "csv", PARTITIONS, csv=True)
    elif layout == "kaggle":
        path = write_celeba(tmp_path / "kaggle", PARTITIONS, csv=True, kaggle=True)
    elif layout == "zip":
        path = zip_folder(celeba, tmp_path / "celeba.zip")
    elif layout == "zip-in-folder":
        path = zip_folder(celeba, tmp_path / "celeba.zip", prefix="celeba/")
    else:
        path = zip_folder(write_celeba(tmp_path / "k", PARTITIONS, csv=True, kaggle=True), tmp_path / "archive.zip")
    np.testing.assert_array_equal(load_images(f"celeba:{path}", "test", image_size=24), reference)


def reference_square(data: bytes, image_size: int) -> np.ndarray:
    """What decoding should give, computed independently: PIL's full-size decode (no draft),
    the centre square, and an area resize of that full-size square.

    ``cv2.INTER_AREA`` is a true area average when it shrinks (each output pixel the mean of
    the input area it covers, edge pixels weighted by the part covered: it matched an exact
    NumPy one pixel for pixel on noise pictures). PIL's ``BOX`` is not: it weighs whole input
    pixels in or out, and came out 0.4-2.4 grey levels away on the same pictures.
    """
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(pixels[top:top + side, left:left + side], (image_size, image_size), interpolation=cv2.INTER_AREA)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize(
    "width, height, image_size, scale",
    [
        (178, 218, 64, 1),  # CelebA's aligned faces: full size, not 1/2 as before
        (218, 178, 64, 1),
        (1000, 1200, 64, 1),
        (1000, 1200, 128, 1),
        (1537, 2001, 64, 2),  # odd sizes: the centre square's edges fall inside reduced pixels
        (2100, 2600, 64, 4),
        (2100, 2600, 32, 8),
    ],
)
@pytest.mark.parametrize("mode", ["RGB", "CMYK"])  # OpenCV decodes the first, PIL (with draft) the second
def test_decoding_matches_a_full_size_decode_crop_and_area_resize(monkeypatch, width, height, image_size, scale, mode):
    # Stripes across and down, of a different period in each picture, and pixel noise: the
    # detail that a decode at reduced size softens (1.9 grey levels off at 178x218 at 1/2).
    pictures = []
    for i in range(2):
        stripes = face_like(i, width, height) // 2 + face_like(i + 3, height, width).transpose(1, 0, 2) // 2
        noise = 20 * np.random.default_rng(i).standard_normal(stripes.shape, dtype=np.float32)
        pictures.append(np.clip(stripes + noise, 0, 255).astype(np.uint8))
    scales = []  # the scale each decode ran at, seen by spies on OpenCV and on PIL's draft
    imdecode, draft = cv2.imdecode, JpegImagePlugin.JpegImageFile.draft

    def imdecode_spy(buffer, flags):
        scales.append(next(s for s, f in decoding._REDUCED_JPEG.items() if f == flags & ~cv2.IMREAD_IGNORE_ORIENTATION))
        return imdecode(buffer, flags)

    def draft_spy(image, *args):
        full_width = image.size[0]
        result = draft(image, *args)
        scales.append(-(-full_width // image.size[0]))  # the reduced size rounds up
        return result

    monkeypatch.setattr(decoding.cv2, "imdecode", imdecode_spy)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft_spy)
    for picture in pictures:
        data = jpeg_bytes(picture, mode=mode)
        image = decode_image(data, image_size)
        assert image.shape == (image_size, image_size, 3) and image.dtype == np.uint8
        # Measured: 0.0 at full size (OpenCV's and PIL's libjpeg agree exactly), 0.09-0.31 reduced.
        assert mean_abs_difference(image, reference_square(data, image_size)) <= 0.5
    assert scales == [scale] * len(pictures)


def test_decode_crops_the_centre_square_and_resizes():
    # Top third red, middle green, bottom blue: the centre square is the green band (the
    # antialiasing filter may reach one pixel past its edges, so look inside them).
    picture = np.zeros((300, 100, 3), np.uint8)
    picture[:100] = (255, 0, 0)
    picture[100:200] = (0, 255, 0)
    picture[200:] = (0, 0, 255)
    square = decode_image(jpeg_bytes(picture, fmt="PNG"), 10)
    assert square.shape == (10, 10, 3)
    inner = square[1:-1]
    assert (inner[..., 1] > 245).all() and (inner[..., [0, 2]] < 10).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_odd_colour_modes_come_out_rgb(mode):
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    image = decode_image(jpeg_bytes(face_like(3), mode=mode, fmt=fmt), 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    rgb = decode_image(jpeg_bytes(face_like(3)), 32).astype(int)
    if mode != "L":  # same colours, up to compression
        assert np.abs(image.astype(int) - rgb).mean() < 12


def test_corrupt_files_are_skipped_counted_and_named_once(tmp_path):
    good = jpeg_bytes(face_like(1))
    files = {
        "000002.jpg": good[: len(good) // 3],  # truncated
        "000003.jpg": b"",  # zero bytes
        "000004.jpg": b"this is not an image\n",  # text named .jpg
        "000005.jpg": jpeg_bytes(face_like(5), fmt="PNG"),  # a PNG named .jpg: fine
    }
    root = write_celeba(tmp_path / "c", [0] * 6, files=files)
    with pytest.warns(DataWarning) as caught:
        images = load_images(f"celeba:{root}", "train", image_size=16)
    assert len(images) == 3
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "skipped 3 of 6 train images" in messages[0]
    assert all(name in messages[0] for name in ("000002.jpg", "000003.jpg", "000004.jpg"))


def test_partition_lines_naming_missing_files_are_counted(tmp_path):
    root = write_celeba(tmp_path / "c", [0, 0, 2], extra_lines=["999998.jpg 0", "999999.jpg 0"])
    with pytest.warns(DataWarning, match="2 of the 4 train files .* are missing .*999998.jpg, 999999.jpg"):
        assert len(load_images(f"celeba:{root}", "train", image_size=16)) == 2


def test_many_corrupt_files_are_summarised(tmp_path):
    root = write_celeba(tmp_path / "c", [0] * 9, files={f"{i:06d}.jpg": b"" for i in range(2, 10)})
    with pytest.warns(DataWarning, match=r"skipped 8 of 9 train images.*000006.jpg \.\.\."):
        assert len(load_images(f"celeba:{root}", "train", image_size=16)) == 1


def test_parallel_decoding_matches_serial(tmp_path, monkeypatch):
    root = write_celeba(tmp_path / "c", [0] * 40, files={"000007.jpg": b"broken"})
    monkeypatch.setattr(loading.os, "cpu_count", lambda: 1)
    with pytest.warns(DataWarning):
        serial = load_images(f"celeba:{root}", "train", image_size=16, cache_dir=tmp_path / "a")
    monkeypatch.setattr(loading.os, "cpu_count", lambda: 8)
    with pytest.warns(DataWarning, match="000007.jpg"):
        parallel = load_images(f"celeba:{root}", "train", image_size=16, cache_dir=tmp_path / "b")
    np.testing.assert_array_equal(serial, parallel)
    assert len(parallel) == 39


# --- bad sources: one DataError that names the problem and the fix ---------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist: point celeba:PATH .*img_align_celeba"):
        load_images(f"celeba:{tmp_path / 'nowhere'}")


def test_folder_without_images(tmp_path):
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(DataError, match="has no img_align_celeba/ folder"):
        load_images(f"celeba:{tmp_path}")


def test_missing_partition_file(celeba):
    (celeba / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="no list_eval_partition.txt.*official partition file"):
        load_images(f"celeba:{celeba}")


@pytest.mark.parametrize("line", ["000001.jpg", "000001.jpg 7", "000001.jpg 0 extra", "000001.jpg,train"])
def test_malformed_partition_line(celeba, line):
    with open(celeba / "list_eval_partition.txt", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=r"line 11 of .*list_eval_partition.txt is malformed.*'<file> <0\|1\|2>'"):
        load_images(f"celeba:{celeba}")


def test_empty_split(tmp_path):
    root = write_celeba(tmp_path / "c", [0, 0, 1])
    with pytest.raises(DataError, match="the test split of .* is empty.*partition 2"):
        load_images(f"celeba:{root}", "test")


def test_split_of_only_undecodable_files(tmp_path):
    root = write_celeba(tmp_path / "c", [2, 0], files={"000001.jpg": b"nope"})
    with pytest.warns(DataWarning), pytest.raises(DataError, match="none of the test images .* could be decoded"):
        load_images(f"celeba:{root}", "test")


def test_not_a_zip(tmp_path):
    fake = tmp_path / "celeba.zip"
    fake.write_bytes(b"PK but not really a zip archive")
    with pytest.raises(DataError, match="is not a readable zip file.*unzip it again"):
        load_images(f"celeba:{fake}")


def test_zip_without_images_or_partition(tmp_path, celeba):
    (celeba / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="holds no list_eval_partition.txt"):
        load_images(f"celeba:{zip_folder(celeba, tmp_path / 'a.zip')}")
    with pytest.raises(DataError, match="holds no img_align_celeba/ folder"):
        load_images(f"celeba:{zip_folder(celeba / 'img_align_celeba', tmp_path / 'b.zip')}")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "val"}, "unknown split 'val': use one of train, validation, test"),
        ({"image_size": 4}, "image_size must be an integer of at least 8"),
        ({"image_size": 64.0}, "image_size must be an integer"),
        ({"limit": 0}, "limit must be a positive integer"),
        ({"limit": -5}, "limit must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_images("synthetic", **kwargs)


# --- the cache ---------------------------------------------------------------------------


def test_second_load_comes_from_the_cache(celeba, monkeypatch, private_cache):
    first = load_images(f"celeba:{celeba}", "train", image_size=16)
    monkeypatch.setattr(loading, "_decode_split", lambda *a: pytest.fail("decoded again instead of using the cache"))
    np.testing.assert_array_equal(load_images(f"celeba:{celeba}", "train", image_size=16), first)
    assert len(list((private_cache / "images").glob("celeba-train-16px-all-*.npy"))) == 1


def test_cache_is_keyed_by_split_size_limit_and_content(celeba, private_cache):
    spec = f"celeba:{celeba}"
    load_images(spec, "train", image_size=16)
    load_images(spec, "train", image_size=24)
    load_images(spec, "train", image_size=16, limit=2)
    load_images(spec, "test", image_size=16)
    assert len(list((private_cache / "images").glob("*.npy"))) == 4
    # A changed partition file is a different source: the cache is not reused.
    text = (celeba / "list_eval_partition.txt").read_text().replace("000002.jpg 0", "000002.jpg 2")
    (celeba / "list_eval_partition.txt").write_text(text)
    os.utime(celeba / "list_eval_partition.txt", ns=(1, 1))
    assert len(load_images(spec, "train", image_size=16)) == 4


def test_broken_cache_file_is_rebuilt(celeba, private_cache):
    spec = f"celeba:{celeba}"
    expected = load_images(spec, "train", image_size=16)
    (cached,) = (private_cache / "images").glob("*.npy")
    cached.write_bytes(cached.read_bytes()[:100])  # as if cut short
    with pytest.warns(DataWarning, match="is unreadable; rebuilding it"):
        np.testing.assert_array_equal(load_images(spec, "train", image_size=16), expected)
    np.testing.assert_array_equal(np.load(cached), expected)


def test_cache_write_leaves_no_partial_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "x.npy"

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", explode)
    with pytest.raises(KeyboardInterrupt):
        datalib.save_atomically(target, np.zeros((2, 8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


#: A process that loads the train split of a CelebA folder into a cache and stops, for good, halfway
#: through writing the .npy: ``np.save`` writes half its bytes, touches a "ready" file, then waits to be killed.
HALF_WRITTEN_CACHE = """
import io, sys, time
from pathlib import Path
import numpy as np
from inpaintlib import data

real_save = np.save

def save_half_then_hang(file, array, allow_pickle=False):
    buffer = io.BytesIO()
    real_save(buffer, array, allow_pickle=allow_pickle)
    file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    file.flush()
    Path(sys.argv[3]).touch()
    time.sleep(120)

np.save = save_half_then_hang  # what inpaintlib.data.cache.save_atomically calls
data.load_images(f"celeba:{sys.argv[1]}", "train", image_size=16, cache_dir=sys.argv[2])
"""


def test_cache_write_killed_midway_leaves_no_broken_cache_file(celeba, tmp_path):
    cache, ready = tmp_path / "cache", tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", HALF_WRITTEN_CACHE, str(celeba), str(cache), str(ready)])
    deadline = time.time() + 60
    while not ready.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ready.exists(), "the writer never reached the middle of its cache write"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    left = list((cache / "images").iterdir())
    assert left and all(path.name.endswith(".tmp") for path in left), "only the temporary file, never a final one"
    assert not list((cache / "images").glob("*.npy"))
    assert 0 < left[0].stat().st_size, "killed while writing, not before"

    # The next load decodes again (no warning about a broken cache: there is none) and caches a whole file.
    expected = np.stack([decode_image(jpeg_bytes(face_like(i)), 16) for i in (0, 1, 3, 5, 8)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = load_images(f"celeba:{celeba}", "train", image_size=16, cache_dir=cache)
    np.testing.assert_array_equal(images, expected)
    (cached,) = (cache / "images").glob("*.npy")
    np.testing.assert_array_equal(np.load(cached), expected)


def test_unwritable_cache_still_returns_the_images(celeba, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with pytest.warns(DataWarning, match="could not write the cache file"):
        images = load_images(f"celeba:{celeba}", "train", image_size=16, cache_dir=blocked)
    assert len(images) == 5


def test_synthetic_splits_are_disjoint_and_deterministic():
    splits = {split: load_images("synthetic", split, image_size=16, limit=40)
              for split in ("train", "validation", "test")}
    assert splits["train"].shape == (40, 16, 16, 3)
    # Every pair compared, by a hash of the image's bytes: equal images have equal hashes.
    hashes = {split: {hashlib.sha256(image.tobytes()).hexdigest() for image in images}
              for split, images in splits.items()}
    assert all(len(found) == 40 for found in hashes.values()), "an image repeats within a split"
    assert not hashes["train"] & hashes["test"]
    assert not hashes["validation"] & hashes["test"]
    assert not hashes["train"] & hashes["validation"]
    test = splits["test"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_images("synthetic", "test", image_size=16, limit=40, cache_dir=None), test)
    assert not np.array_equal(load_images("synthetic", "test", image_size=16, limit=40, seed=1), test)
