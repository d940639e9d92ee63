"""The book's smoke build: papermill executes the chapters, Jupyter Book renders them (-W)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import build, copy_book, execute_chapter, glued

pytestmark = pytest.mark.slow


def chapter_html(root, name="01_background"):
    return (root / "_build" / "html" / "book" / f"{name}.html").read_text()


def assert_images_render(root, html):
    images = re.findall(r'<img [^>]*src="([^"]+\.png)"', html)
    assert len(images) >= 3, "the face grid, the mask kinds and a batch"
    for src in images:
        assert (root / "_build" / "html" / "book" / src).stat().st_size > 2000, src


def test_smoke_build_on_synthetic_faces_labels_them(smoke_book):
    root = smoke_book  # built once per session (conftest.py), with CELEBA_DIR set empty
    assert (root / "_build" / "html" / "index.html").is_file()
    html = chapter_html(root)
    assert "synthetic faces (a stand-in for CelebA, not real photos)" in html
    assert "CELEBA_DIR is not set" in html, "auto data says it fell back to synthetic faces"
    assert "Traceback" not in html
    assert_images_render(root, html)
    # The source shown is the library's own, not a copy.
    text = re.sub(r"<[^>]+>", "", html)
    assert "def make_dataset(" in text and "def draw_masks(" in text
    # The executed notebook is in the staging folder; the committed one has no outputs.
    assert (root / "_build" / "executed" / "book" / "01_background.ipynb").is_file()
    # Four chapter kernels started and ran TensorFlow, and none of its C++ log lines reached the log.
    from inpaintlib.startup import is_tensorflow_log_line

    log = (root / "build-stderr.log").read_text().splitlines()
    assert not [line for line in log if is_tensorflow_log_line(line)], "\n".join(log[:20])

    unet = chapter_html(root, "02_unet")
    assert "Traceback" not in unet
    unet_text = re.sub(r"<[^>]+>", "", unet)
    assert "def build_unet(" in unet_text, "the model's code, from the library"
    for method in ("telea", "navier-stokes", "biharmonic", "mean", "psnr_hole", "sharpness"):
        assert method in unet_text, f"the metrics table has {method}"
    assert "synthetic faces (a stand-in" in unet_text
    assert_images_render(root, unet)  # training curve and the fills for each mask kind

    vaegan = chapter_html(root, "03_vaegan")
    assert "Traceback" not in vaegan
    vaegan_text = re.sub(r"<[^>]+>", "", vaegan)
    assert "def train_step(" in vaegan_text and "def _loss_terms(" in vaegan_text, "the model's code, from the library"
    for column in ("VAE-GAN", "U-Net", "biharmonic", "diversity", "sharpness", "identity", "ffd_floor"):
        assert column in vaegan_text
    assert re.search(r"Its diversity is \d\.\d+", vaegan_text), "the verdict is computed"
    assert re.search(r"gives draws \S+ times as diverse as the first design.s", vaegan_text), "both designs, measured"
    assert re.search(r"the VAE-GAN.s Fréchet face distance is \d\.\d{3}", vaegan_text), "face scores, computed"
    assert_images_render(root, vaegan)  # loss curves, fills, draws

    comparison = chapter_html(root, "04_comparison")
    comparison_text = re.sub(r"<[^>]+>", "", comparison)
    assert "Traceback" not in comparison
    models = Path((root / "build-cache.txt").read_text()) / "models"
    trained = sorted(folder.name.split("-")[0] for folder in models.iterdir() if folder.is_dir())
    assert trained == ["unet", "unet", "vaegan", "vaegan"], \
        "chapters 2 and 3's models (the VAE-GAN's two designs), and chapter 4's specialist: no other"
    assert "A network knows the holes it saw" in comparison_text, "the specialist against the generalist"
    assert re.search(r"center 0\.5: .+? fills best \(\d+\.\d dB\)", comparison_text), "the verdicts are computed"
    assert re.search(r"The draws have [\d.]+ times the squared error of the mean", comparison_text), "the toy"
    assert re.search(r"One VAE-GAN draw scores \d+\.\d\d dB", comparison_text), "the perception-distortion plane"
    assert_images_render(root, comparison)  # interval bars and the side-by-side fills


def test_smoke_build_shows_real_faces_when_celeba_dir_is_set(tmp_path, celeba_sample):
    # Chapter 1 alone: the other chapters on real faces are chapter 4's test below.
    root = copy_book(tmp_path)
    built = build(root, {"CELEBA_DIR": str(celeba_sample)}, "--chapter", "01_background").stdout
    assert "Executing book/01_background.ipynb" in built and "Executing book/02_unet" not in built
    assert not (root / "_build" / "html" / "book" / "02_unet.html").exists()
    html = chapter_html(root)
    assert "CelebA sample (8,000 of its 202,599 images)" in html
    assert str(celeba_sample) not in html, "a published page never names the builder's folders"
    assert "synthetic faces (a stand-in" not in html
    assert_images_render(root, html)


def test_a_chapter_run_with_changed_parameters_changes_its_results_and_keeps_them_valid(smoke_book, tmp_path,
                                                                                      private_cache):
    # An assignment: chapter 2 without the mask channel, trained on random boxes, scored as before.
    changed = execute_chapter("02_unet", tmp_path, profile="smoke", mask_channel=False, mask="random-box")
    before = {row["method"]: row for row in glued(smoke_book / "_build" / "executed" / "book" / "02_unet.ipynb",
                                                  "unet_scores")}
    after = {row["method"]: row for row in glued(changed, "unet_scores")}
    assert set(after) == set(before) == {"U-Net before training", "U-Net", "telea", "navier-stokes", "biharmonic",
                                         "mean"}
    # The chapter trained the model the parameters describe (its cache is this test's): the
    # network sees the masked image alone, 3 input channels where the default has 4.
    from inpaintlib.training import load_trained

    (folder,) = (private_cache / "models").glob("unet-*")
    trained = load_trained(folder)
    assert trained.config.mask == "random-box" and trained.config.model_options["mask_channel"] is False
    assert trained.model.get_layer("down0_conv0").kernel.shape[2] == 3
    for method in ("telea", "navier-stokes", "biharmonic", "mean"):  # same faces and holes: same scores
        for metric in ("psnr_hole", "ssim", "l1_hole", "sharpness"):
            assert after[method][metric] == pytest.approx(before[method][metric], abs=1e-9), (method, metric)
    for row in after.values():
        assert row["n"] == before["U-Net"]["n"]
        assert 0 < row["psnr_hole"] < 100 and -1 <= row["ssim"] <= 1 and 0 <= row["l1_hole"] <= 1
        assert math.isfinite(row["sharpness"]) and row["sharpness"] >= 0
    # The chapter said which parameters it ran with.
    text = changed.read_text()
    assert "Profile: smoke" in text and "mask_channel = False" in text


@pytest.mark.parametrize("method", ["U-Net", "VAE-GAN", "biharmonic"])
def test_comparison_table_matches_inpaint_evaluate_on_real_faces(method, comparison_on_sample):
    executed, sample = comparison_on_sample
    table = glued(executed, "comparison")
    row = next(r for r in table["means"] if r["condition"] == "center 0.5" and r["method"] == method)
    model = table["models"].get(method, method)  # a network's folder, or a baseline's name
    command = [sys.executable, "-m", "inpaintlib.cli", "evaluate", "--model", model, "--data", f"celeba:{sample}",
               "--split", "test", "--mask", "center", "--limit", "16", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout)
    assert scores["n"] == 16
    for metric in ("psnr_hole", "ssim", "l1_hole", "sharpness", "diversity"):
        assert scores[metric] == pytest.approx(row[metric], rel=1e-5, abs=1e-6), metric


@pytest.fixture(scope="module")
def comparison_on_sample(tmp_path_factory):
    """Chapter 4 at the smoke profile's size on 16 real test faces, centre holes: its executed copy."""
    from conftest import SAMPLE

    if not (SAMPLE / "list_eval_partition.txt").is_file():
        pytest.skip(f"the real CelebA sample is not at {SAMPLE} (set CELEBA_SAMPLE to use another)")
    folder = tmp_path_factory.mktemp("comparison")
    with pytest.MonkeyPatch.context() as patch:  # one cache for the chapter and the evaluate commands after it
        patch.setenv("INPAINTLIB_CACHE", str(folder / "cache"))
        executed = execute_chapter("04_comparison", folder, profile="smoke", data=f"celeba:{SAMPLE}",
                                   mask_kinds="center", holes="0.5")
    return executed, SAMPLE


def test_a_rebuild_runs_only_the_chapters_whose_inputs_changed(smoke_book, tmp_path):
    root = copy_book(tmp_path)
    shutil.copytree(smoke_book / "_build" / "chapters", root / "_build" / "chapters")
    env = {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(tmp_path / "cache")}
    again = build(root, env).stdout
    assert again.count("unchanged since its last run, not executed again") == 4, again
    assert "Executing" not in again
    assert "synthetic faces (a stand-in" in chapter_html(root), "the kept run is rendered"
    changed = build(root, env, "-p", "n_faces", "4").stdout  # a parameter of chapter 1 only
    assert "Executing book/01_background.ipynb" in changed and changed.count("not executed again") == 3, changed


def printed(notebook: Path) -> str:
    """Everything an executed chapter printed (its stream outputs), in order."""
    cells = json.loads(notebook.read_text())["cells"]
    return "".join("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream")


def test_a_book_rebuilt_from_an_imported_bundle_trains_nothing(smoke_book, tmp_path):
    """The bundle of a smoke build's models, imported into an empty model cache through
    $INPAINTLIB_PRETRAINED: the chapters load every model, say so, and train none."""
    cache = Path((smoke_book / "build-cache.txt").read_text())
    env = {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(cache)}
    cli = [sys.executable, "-m", "inpaintlib.cli", "models"]
    listed = subprocess.run([*cli, "list", "--json"], capture_output=True, text=True, env={**os.environ, **env})
    keys = [row["key"] for row in json.loads(listed.stdout)]
    assert len(keys) >= 4, "chapter 2's U-Net, chapter 3's two VAE-GANs, chapter 4's specialist"
    bundle = tmp_path / "smoke-models.zip"
    subprocess.run([*cli, "export", *keys, "-o", str(bundle)], check=True, env={**os.environ, **env})
    # The decoded faces and face descriptors are kept: an empty *model* cache is what is tested.
    fresh = shutil.copytree(cache, tmp_path / "cache", ignore=shutil.ignore_patterns("models"))
    root = copy_book(tmp_path / "book")
    chapters = ["02_unet", "03_vaegan", "04_comparison"]
    build(root, {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(fresh), "INPAINTLIB_PRETRAINED": str(bundle)},
          "--no-html", *(f"--chapter={name}" for name in chapters))
    for name in chapters:
        text = printed(root / "_build" / "executed" / "book" / f"{name}.ipynb")
        assert f"Pretrained models: {len(keys)} in {bundle}" in text, name
        assert "Epoch 1/" not in text and "trained in this run" not in text, f"{name} trained a model"
        assert f"imported from the bundle {bundle.name} (trained 20" in text, name
    assert sorted(path.name.split("-", 1)[1] for path in (fresh / "models").iterdir() if not path.name.startswith(".")) \
        == sorted(keys)
