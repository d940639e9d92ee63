"""The book on real faces (the CelebA sample in ../shared): chapter 1's labels, and chapter 4's
table against inpaint evaluate. Apart from tests/test_book.py, so that an xdist worker other than
the smoke book's runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import build, copy_book, execute_chapter, glued
from test_book import assert_images_render, chapter_html

pytestmark = pytest.mark.slow


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
