"""The real CelebA sample in ../shared (8,000 faces): splits, cache, zip. Skipped where absent."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

from inpaintlib import data as datalib
from inpaintlib.data import load_images


def test_official_layout_splits_7000_500_500(celeba_sample, private_cache):
    spec = f"celeba:{celeba_sample}"
    sizes = {split: len(load_images(spec, split)) for split in ("train", "validation", "test")}
    assert sizes == {"train": 7000, "validation": 500, "test": 500}


def test_cached_reload_is_identical_and_decodes_nothing(celeba_sample, monkeypatch):
    spec = f"celeba:{celeba_sample}"
    first = load_images(spec, "test")
    monkeypatch.setattr(datalib, "_decode_split", lambda *a: pytest.fail("decoded again instead of using the cache"))
    started = time.perf_counter()
    again = load_images(spec, "test")
    assert time.perf_counter() - started < 5  # generous: the benchmark holds the real target
    np.testing.assert_array_equal(again, first)


def test_real_faces_look_like_aligned_faces(celeba_sample):
    faces = load_images(f"celeba:{celeba_sample}", "test", limit=200).astype(np.float32)
    assert faces.shape == (200, 64, 64, 3)
    assert 60 < faces.mean() < 200 and faces.std(axis=(1, 2, 3)).min() > 10
    # Aligned faces: the centre (skin) is redder than it is blue, on average.
    centre = faces[:, 24:40, 24:40]
    assert centre[..., 0].mean() > centre[..., 2].mean() + 10


def test_a_zip_of_the_sample_loads_like_the_folder(celeba_sample, tmp_path):
    lines = (celeba_sample / "list_eval_partition.txt").read_text().splitlines()
    test_lines = [line for line in lines if line.split()[1] == "2"][:120]
    archive = tmp_path / "celeba.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("list_eval_partition.txt", "\n".join(test_lines) + "\n")
        for line in test_lines:
            name = line.split()[0]
            zf.write(celeba_sample / "img_align_celeba" / name, f"img_align_celeba/{name}")
    from_zip = load_images(f"celeba:{archive}", "test", image_size=32)
    from_folder = load_images(f"celeba:{celeba_sample}", "test", image_size=32, limit=120)
    np.testing.assert_array_equal(from_zip, from_folder)
