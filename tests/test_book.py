"""The book's smoke build: papermill executes the chapters, Jupyter Book renders them (-W)."""

from __future__ import annotations

import re

import pytest
from conftest import build, copy_book

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
    for column in ("VAE-GAN", "U-Net", "biharmonic", "diversity", "sharpness"):
        assert column in vaegan_text
    assert re.search(r"Its diversity is \d\.\d+", vaegan_text), "the verdict is computed"
    assert_images_render(root, vaegan)  # loss curves, fills, draws

    comparison = chapter_html(root, "04_comparison")
    comparison_text = re.sub(r"<[^>]+>", "", comparison)
    assert "Traceback" not in comparison
    assert "Epoch 1/" not in comparison_text, "chapter 4 loads chapters 2 and 3's models from the cache"
    assert re.search(r"center 0\.5: \S+ fills best \(\d+\.\d dB\)", comparison_text), "the verdicts are computed"
    assert_images_render(root, comparison)  # interval bars and the side-by-side fills


def test_smoke_build_shows_real_faces_when_celeba_dir_is_set(tmp_path, celeba_sample):
    root = copy_book(tmp_path)
    build(root, {"CELEBA_DIR": str(celeba_sample)})
    html = chapter_html(root)
    assert f"CelebA ({celeba_sample})" in html
    assert "synthetic faces (a stand-in" not in html
    assert_images_render(root, html)
