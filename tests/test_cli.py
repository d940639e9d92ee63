"""The inpaint command line: user mistakes are one line on stderr and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import face_like, write_celeba
from PIL import Image

from inpaintlib.cli import main


def run_inpaint(*args, env=None):
    return subprocess.run([sys.executable, "-m", "inpaintlib.cli", *args], capture_output=True, text=True, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("inpaint")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_data_command_reports_split_sizes(tmp_path, capsys):
    root = write_celeba(tmp_path / "c", [0, 0, 0, 1, 2, 2])
    assert main(["data", "--data", f"celeba:{root}", "--image-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "CelebA" in out and "train            3" in out and "validation       1" in out and "test             2" in out


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["data", "--data", "celeba:/no/such/folder"], ["does not exist", "celeba:PATH"]),
        (["data", "--data", "flickr"], ["unknown data spec 'flickr'"]),
        (["data", "--image-size", "4", "--data", "synthetic"], ["image_size must be an integer of at least 8"]),
        (["data", "--image-size", "big"], ["invalid int value: 'big'", "--help"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["book", "--profile", "enormous", "--no-html"], ["unknown profile 'enormous'", "smoke, quick, full"]),
        (["book", "--profile", "smoke", "-p", "n_faeces", "3", "--no-html"], ["unknown parameter 'n_faeces'", "n_faces"]),
    ],
)
def test_mistakes_are_one_line_and_exit_2(args, fragments):
    assert_one_line_error(run_inpaint(*args), *fragments)


def test_book_outside_a_book_folder_says_where_to_run(tmp_path):
    assert_one_line_error(run_inpaint("book", "--root", str(tmp_path)), "no book in", "--root")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "unet", "--data", "synthetic", "--steps", "0", "--out", "x"], ["steps must be a positive integer, not 0"]),
        (["train", "unet", "--data", "synthetic", "--batch-size", "-4", "--out", "x"], ["batch-size must be a positive integer"]),
        (["train", "unet", "--data", "synthetic", "--mask", "blob", "--out", "x"], ["unknown mask kind 'blob'"]),
        (["train", "gan", "--out", "x"], ["invalid choice: 'gan'"]),
        (["evaluate", "--model", "/no/model/here", "--data", "synthetic"], ["holds no trained model"]),
        (["evaluate", "--model", "telea", "--data", "synthetic", "--mask", "round"], ["unknown mask kind 'round'"]),
        (["fill", "/no/such.jpg", "--model", "telea", "-o", "out.png"], ["cannot read the image /no/such.jpg"]),
    ],
)
def test_training_and_evaluation_mistakes_are_one_line(args, fragments, tmp_path):
    assert_one_line_error(run_inpaint(*args), *fragments)
    assert not (tmp_path / "x").exists()


def test_evaluate_json_for_a_baseline(capsys):
    assert main(["evaluate", "--model", "mean", "--data", "synthetic", "--limit", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"method", "data", "split", "mask", "n", "psnr", "psnr_hole", "ssim", "l1_hole", "sharpness", "diversity",
            "seconds_per_image"} <= set(result)
    assert result["n"] == 8 and result["data"] == "synthetic" and result["split"] == "test" and result["diversity"] == 0


@pytest.mark.slow
def test_train_evaluate_and_fill_a_model(tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train", "unet", "--data", "synthetic", "--image-size", "32", "--steps", "6", "--batch-size", "4",
                 "--limit", "32", "--base-filters", "4", "--depth", "2", "--checkpoint-every", "3", "--out", str(out)]) == 0
    assert (out / "model.keras").exists()
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", "synthetic", "--limit", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "U-Net" and result["n"] == 4

    # fill: any input size is centre-cropped and resized to the model's 32x32; a mask PNG must match it.
    face = tmp_path / "face.png"
    Image.fromarray(face_like(1, width=90, height=120)).save(face)
    assert main(["fill", str(face), "--model", str(out), "-o", str(tmp_path / "filled.png")]) == 0
    filled = np.asarray(Image.open(tmp_path / "filled.png"))
    assert filled.shape == (32, 32, 3)
    wrong = tmp_path / "wrong.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(wrong)
    result = run_inpaint("fill", str(face), "--model", str(out), "--mask", str(wrong), "-o", str(tmp_path / "x.png"))
    assert_one_line_error(result, "is 64x64 but the images are 32x32")
    assert not (tmp_path / "x.png").exists()


def test_fill_into_a_missing_or_read_only_folder_leaves_nothing(tmp_path):
    face = tmp_path / "face.png"
    Image.fromarray(face_like(1)).save(face)
    assert_one_line_error(run_inpaint("fill", str(face), "--model", "mean", "-o", str(tmp_path / "no" / "o.png")),
                          "does not exist")
    # root writes through permissions, but not into sysfs; anyone else gets a read-only folder.
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir()
        locked.chmod(0o500)
    result = run_inpaint("fill", str(face), "--model", "mean", "-o", str(locked / "o.png"))
    assert_one_line_error(result, "choose a writable output folder")
    assert not [p for p in locked.iterdir() if p.name.startswith((".o.png", "o.png"))]
