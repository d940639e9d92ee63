"""A corpus of bad inputs for the ``inpaint`` command line, each run as a user would run it.

Every case ends one of two ways:

- a mistake the user must fix: exit status 2, one line on stderr that names the
  problem and the fix, no traceback, and no output left behind;
- a bad image inside an otherwise good dataset: skipped, counted and named in
  one warning, while the command succeeds on the rest.

Odd but valid images (grayscale, RGBA, CMYK, a 10,000x10,000 JPEG) are no
mistake: they come out as RGB. A 10,000x10,000 PNG, which would be decoded
whole, is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, face_like, jpeg_bytes, write_celeba
from PIL import Image
from test_cli import assert_one_line_error, run_inpaint

from inpaintlib.data import decode_image

GOOD = jpeg_bytes(face_like(1))
#: Files no decoder can read.
BROKEN = {
    "truncated.jpg": GOOD[: len(GOOD) // 3],
    "zero-byte.jpg": b"",
    "text.jpg": b"this is a text file, not a JPEG\n",
}
#: Valid images in colour modes other than RGB.
ODD = {
    "grayscale.jpg": jpeg_bytes(face_like(2), mode="L"),
    "rgba.png": jpeg_bytes(face_like(3), mode="RGBA", fmt="PNG"),
    "cmyk.jpg": jpeg_bytes(face_like(4), mode="CMYK"),
}


def warning_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("inpaint: warning")]


def assert_rgb_png(path: Path, size: int = 64) -> None:
    with Image.open(path) as image:
        image.load()  # decodes the whole file: a cut-short PNG fails here
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (size, size))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Every bad input, written once: single files, model folders, and CelebA folders each wrong one way."""
    root = tmp_path_factory.mktemp("corpus")
    for name, data in {**BROKEN, **ODD}.items():
        (root / name).write_bytes(data)
    Image.new("RGB", (10_000, 10_000), (170, 120, 100)).save(root / "10000x10000.jpg")
    Image.new("1", (10_000, 10_000)).save(root / "10000x10000.png")  # 1 bit per pixel: quick to write
    Image.new("L", (32, 32)).save(root / "mask-32x32.png")
    (root / "empty-model").mkdir()
    (root / "damaged-model").mkdir()
    (root / "damaged-model" / "config.json").write_text("{'steps': 10")
    (root / "damaged-model" / "model.keras").write_bytes(b"")

    (root / "no-image-folder").mkdir()
    (root / "no-image-folder" / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    write_celeba(root / "malformed-line", [0, 1, 2], extra_lines=["000004.jpg validation"])
    write_celeba(root / "absent-files", [0, 1, 2], extra_lines=["999998.jpg 0", "999999.jpg 0"])
    write_celeba(root / "empty-split", [0, 0, 1])
    (root / "not-a-zip.zip").write_bytes(b"PK\x03\x04 but not really a zip archive")
    # A good dataset whose train split also holds every broken and every odd file.
    odd_ones = {**BROKEN, **ODD}
    write_celeba(root / "mixed", [0, 0, 1, 2], files=odd_ones, extra_lines=[f"{name} 0" for name in odd_ones])
    return root


# --- mistakes: one line, exit status 2, nothing left behind ------------------------------

def fill(*options, image="{corpus}/grayscale.jpg", model="mean", output="{tmp}/out.png") -> list[str]:
    return ["fill", image, "--model", model, "-o", output, *options]


TRAIN = ["train", "unet", "--data", "synthetic", "--limit", "8", "--out", "{tmp}/model"]

UNREADABLE = "give a JPEG or PNG file"
MISTAKES = {
    # The command line itself.
    "unknown-command": (["frobnicate"], ["invalid choice: 'frobnicate'", "--help"]),
    "image-size-not-a-number": (["data", "--image-size", "big"], ["invalid int value: 'big'", "--help"]),
    # Data sources, with `inpaint data`.
    "unknown-data-spec": (["data", "--data", "flickr"],
                          ["unknown data spec 'flickr'", "use 'synthetic', 'celeba:PATH'"]),
    "celeba-path-missing": (["data", "--data", "celeba:{tmp}/nowhere"], ["does not exist", "point celeba:PATH"]),
    "folder-without-img_align_celeba": (["data", "--data", "celeba:{corpus}/no-image-folder"],
                                        ["has no img_align_celeba/ folder", "point celeba:PATH"]),
    "partition-line-malformed": (["data", "--data", "celeba:{corpus}/malformed-line"],
                                 ["line 4 of", "is malformed: '000004.jpg validation'", "Fix the line or download"]),
    "split-empty": (["data", "--data", "celeba:{corpus}/empty-split"],
                    ["the test split of", "is empty", "Check that the partition file belongs to these images"]),
    "zip-that-is-not-a-zip": (["data", "--data", "celeba:{corpus}/not-a-zip.zip"],
                              ["is not a readable zip file", "point celeba:PATH"]),
    "image-size-negative": (["data", "--data", "synthetic", "--image-size", "-4"],
                            ["image_size must be an integer of at least 8 (64 or 128), not -4"]),
    "limit-zero": (["data", "--data", "synthetic", "--limit", "0"], ["limit must be a positive integer", "not 0"]),
    # fill: the input image.
    "fill-truncated-jpeg": (fill(image="{corpus}/truncated.jpg"),
                            ["truncated.jpg (image file is truncated", UNREADABLE]),
    "fill-zero-byte-file": (fill(image="{corpus}/zero-byte.jpg"), ["zero-byte.jpg (empty, or not an image)", UNREADABLE]),
    "fill-text-file-named-jpg": (fill(image="{corpus}/text.jpg"), ["text.jpg (empty, or not an image)", UNREADABLE]),
    "fill-missing-file": (fill(image="{tmp}/no-such.jpg"), ["no-such.jpg ([Errno 2] No such file", UNREADABLE]),
    "fill-10000x10000-png": (fill(image="{corpus}/10000x10000.png"),
                             ["10000x10000.png is too large (10000x10000 pixels", "shrink it to a few megapixels"]),
    "fill-image-size-negative": (fill("--image-size", "-4"), ["image_size must be an integer of at least 8"]),
    # fill: the mask, the model and the output.
    "fill-mask-wrong-size": (fill("--mask", "{corpus}/mask-32x32.png"),
                             ["is 32x32 but the images are 64x64", "draw the mask at 64x64"]),
    "fill-unknown-mask-kind": (fill("--mask", "blob"),
                               ["the mask blob (no such file)", "name a mask kind (center, random-box, free-form) or a PNG"]),
    "fill-damaged-model-folder": (fill(model="{corpus}/damaged-model"),
                                  ["holds a damaged model (config.json or history.json is not valid", "train it again"]),
    "fill-output-folder-missing": (fill(output="{tmp}/no/out.png"), ["does not exist", "create it"]),
    "fill-samples-from-a-baseline": (fill("--samples", "2"), ["mean fills a hole one way only", "needs a VAE-GAN"]),
    # evaluate.
    "evaluate-model-folder-without-model": (
        ["evaluate", "--model", "{corpus}/empty-model", "--data", "synthetic"],
        ["holds no trained model (model.keras and config.json)", "train one with `inpaint train`, or name a baseline"]),
    "evaluate-unknown-mask-kind": (["evaluate", "--model", "mean", "--data", "synthetic", "--mask", "round"],
                                   ["unknown mask kind 'round'", "use one of center, random-box, free-form"]),
    "evaluate-too-few-face-images": (["evaluate", "--model", "mean", "--data", "synthetic", "--face-images", "2"],
                                     ["--face-images must be 0 (no face scores) or at least 4", "not 2"]),
    # export.
    "export-folder-without-model": (["export", "{corpus}/empty-model", "-o", "{tmp}/onnx"],
                                    ["holds no trained model (model.keras and config.json)"]),
    "export-a-baseline": (["export", "telea", "-o", "{tmp}/onnx"],
                          ["telea is a classical method, with no network to export", "name a model folder"]),
    "export-unknown-format": (["export", "{corpus}/empty-model", "--format", "tflite", "-o", "{tmp}/onnx"],
                              ["invalid choice: 'tflite' (choose from 'onnx')"]),
    # train: what its config checks before --out is made, and a bad hole found after.
    "train-unknown-model": (["train", "gan", "--out", "{tmp}/model"], ["invalid choice: 'gan'"]),
    "train-steps-zero": ([*TRAIN, "--steps", "0"], ["steps must be a positive integer, not 0"]),
    "train-batch-size-negative": ([*TRAIN, "--batch-size", "-1"], ["batch-size must be a positive integer, not -1"]),
    "train-smooth-refine-negative": ([*TRAIN, "--smooth-refine-steps", "-1"],
                                     ["smooth-refine-steps must be 0 or a positive integer, not -1"]),
    "train-max-std-zero": (["train", "vaegan", "--data", "synthetic", "--max-std", "0", "--out", "{tmp}/model"],
                           ["max-std must be positive, or None for no bound, not 0.0"]),
    "train-hole-above-1": ([*TRAIN, "--hole", "1.5"],
                           ["hole must be a fraction of the image side between 0 and 1, not 1.5"]),
    # book, outside a book.
    "book-outside-a-book-folder": (["book", "--root", "{tmp}"], ["no book in", "or pass --root PATH"]),
}


@pytest.mark.parametrize("args, fragments", MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_one_line_and_leaves_nothing(corpus, tmp_path, args, fragments):
    result = run_inpaint(*(arg.format(corpus=corpus, tmp=tmp_path) for arg in args), cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not list(tmp_path.iterdir()), "output left behind"


#: Runs each mistake in one process; prints, for each, the exit status, the stderr lines and
#: whether TensorFlow was imported by then.
ALL_MISTAKES = """
import contextlib, io, json, sys
from inpaintlib.cli import main
for argv in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    print(json.dumps([status, stderr.getvalue().splitlines(), "tensorflow" in sys.modules]))
"""


#: Mistakes that only the filling itself finds, after TensorFlow has started (and said nothing).
FOUND_WITH_TENSORFLOW = {"fill-samples-from-a-baseline"}


def test_every_mistake_fails_before_tensorflow_is_imported(corpus, tmp_path):
    """Checked before TensorFlow starts, so a mistake costs a fraction of a second, not TensorFlow's start-up."""
    import json

    # One process runs them all, those that start TensorFlow last.
    names = sorted(MISTAKES, key=lambda name: name in FOUND_WITH_TENSORFLOW)
    for name in names:
        (tmp_path / name).mkdir()
    cases = [[arg.format(corpus=corpus, tmp=tmp_path / name) for arg in MISTAKES[name][0]] for name in names]
    result = subprocess.run([sys.executable, "-c", ALL_MISTAKES, json.dumps(cases)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    reports = [line for line in result.stdout.splitlines() if line.startswith("[")]
    for name, line in zip(names, reports, strict=True):
        fragments = MISTAKES[name][1]
        status, stderr, imported = json.loads(line)
        assert status == 2 and len(stderr) == 1 and all(f in stderr[0] for f in fragments), (name, stderr)
        assert imported == (name in FOUND_WITH_TENSORFLOW), f"{name}: TensorFlow imported: {imported}"


@pytest.fixture
def book_copy(tmp_path) -> Path:
    shutil.copytree(REPO / "book", tmp_path / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--profile", "huge"], ["unknown profile 'huge'", "use one of smoke, quick, published, full"]),
        (["-p", "nosuch", "1"], ["unknown parameter 'nosuch'", "the chapters' parameters are", "n_faces"]),
        (["--chapter", "09_nosuch"], ["unknown chapter(s) 09_nosuch: the chapters are 01_background, 02_unet"]),
    ],
    ids=["book-unknown-profile", "book-unknown-parameter", "book-unknown-chapter"],
)
def test_book_mistake_stops_before_any_chapter_runs(book_copy, args, fragments):
    result = run_inpaint("book", *args, "--root", book_copy)
    assert_one_line_error(result, *fragments)
    assert "Executing" not in result.stdout and not (book_copy / "_build").exists()


def test_read_only_output_folder_is_one_line_and_leaves_nothing(corpus, tmp_path):
    # root writes through permissions, but not into sysfs; anyone else gets a read-only folder.
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir()
        locked.chmod(0o500)
    result = run_inpaint("fill", corpus / "grayscale.jpg", "--model", "mean", "-o", locked / "out.png")
    assert_one_line_error(result, "cannot write", "choose a writable output folder")
    assert not [p for p in locked.iterdir() if p.name.startswith((".out.png", "out.png"))]


# --- bad images inside a good dataset: skipped, counted, named in one warning ------------


@pytest.fixture(scope="module")
def mixed_run(corpus, tmp_path_factory):
    """`inpaint data` once over the dataset that mixes broken and odd files into its train split."""
    cache = tmp_path_factory.mktemp("mixed-cache")
    result = run_inpaint("data", "--data", f"celeba:{corpus / 'mixed'}", "--image-size", "16",
                         env={**os.environ, "INPAINTLIB_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    warnings = warning_lines(result)
    assert len(warnings) == 1, result.stderr
    (train,) = (cache / "images").glob("celeba-train-16px-*.npy")
    return result, warnings[0], np.load(train)


@pytest.mark.parametrize("name", BROKEN)
def test_broken_image_in_a_dataset_is_skipped_counted_and_named(mixed_run, name):
    _, warning, _ = mixed_run
    assert f"skipped {len(BROKEN)} of {2 + len(BROKEN) + len(ODD)} train images that could not be decoded" in warning
    assert name in warning


@pytest.mark.parametrize("name", ODD)
def test_odd_image_in_a_dataset_loads_as_rgb(mixed_run, name):
    _, warning, train = mixed_run
    kept = ["000001.jpg", "000002.jpg", *ODD]  # the train split in file order, broken files skipped
    assert name not in warning
    np.testing.assert_array_equal(train[kept.index(name)], decode_image(ODD[name], 16))


def test_partition_naming_absent_files_is_counted_in_one_warning(corpus):
    result = run_inpaint("data", "--data", f"celeba:{corpus / 'absent-files'}", "--image-size", "16")
    assert result.returncode == 0, result.stderr
    assert warning_lines(result) == [
        "inpaint: warning: 2 of the 3 train files named in list_eval_partition.txt are missing from "
        f"{corpus / 'absent-files'} and were skipped: 999998.jpg, 999999.jpg"
    ]


# --- odd but valid images as `fill` input: they work, in RGB ------------------------------


@pytest.mark.parametrize("name", [*ODD, "10000x10000.jpg"])
def test_odd_image_fills_to_an_rgb_png(corpus, tmp_path, name):
    from inpaintlib.cli import main  # in this process: the output file is what is checked

    assert main(["fill", str(corpus / name), "--model", "telea", "-o", str(tmp_path / "out.png")]) == 0
    assert_rgb_png(tmp_path / "out.png")


def test_a_10000x10000_jpeg_decodes_in_a_second_and_little_memory(corpus):
    # 100 megapixels, past PIL's decompression-bomb warning, but a JPEG decodes at 1/8 of its size: about
    # 70 MB at the peak for the whole process, where a full decode takes 600 MB. VmHWM is the peak of
    # this process alone (the rusage of a child also counts what it inherited from pytest).
    probe = ("import sys; from inpaintlib.data import read_image; read_image(sys.argv[1], 64); "
             "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe, corpus / "10000x10000.jpg"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5 and int(result.stdout) < 200_000  # kilobytes
