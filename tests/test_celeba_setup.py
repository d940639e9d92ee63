"""setup_celeba on tiny fake CelebAs: a zip copied once to local disk, a folder checked in place,
and every mistake a clear error. Kaggle is faked; nothing here touches the network."""

from __future__ import annotations

import os
import shutil
import sys
import types
import zipfile

import pytest
from conftest import write_celeba, zip_folder

from inpaintlib.data import KAGGLE_DATASET, setup_celeba
from inpaintlib.cli import main
from inpaintlib.data import load_images
from inpaintlib.errors import DataError

PARTITIONS = [0, 0, 0, 1, 2, 2]


@pytest.fixture
def drive_zip(tmp_path):
    """A CelebA zip where Google Drive would mount it."""
    (tmp_path / "drive").mkdir()
    return zip_folder(write_celeba(tmp_path / "celeba", PARTITIONS), tmp_path / "drive" / "celeba.zip")


def test_a_zip_is_copied_once_to_local_disk_and_becomes_celeba_dir(drive_zip, tmp_path, capsys):
    local = tmp_path / "local"
    path = setup_celeba(drive_zip, local)
    assert path == local / "celeba.zip" and path.read_bytes() == drive_zip.read_bytes()
    assert os.environ["CELEBA_DIR"] == str(path) and list(local.iterdir()) == [path]  # no temporary file left
    out = capsys.readouterr().out
    assert "Copying" in out and "(6 images, every split opens)" in out
    assert len(load_images("auto", "train", image_size=16)) == 3  # what a chapter's data = "auto" does

    copied_at = path.stat().st_mtime_ns
    assert setup_celeba(drive_zip, local) == path and path.stat().st_mtime_ns == copied_at
    assert "Copying" not in capsys.readouterr().out


def test_an_interrupted_copy_leaves_nothing(drive_zip, tmp_path, monkeypatch):
    def unmounted(source, target, length):
        target.write(source.read(100))
        raise OSError("Transport endpoint is not connected")

    monkeypatch.setattr(shutil, "copyfileobj", unmounted)
    with pytest.raises(OSError, match="Transport endpoint"):
        setup_celeba(drive_zip, tmp_path / "local")
    assert list((tmp_path / "local").iterdir()) == []
    assert "CELEBA_DIR" not in os.environ


def test_a_folder_is_checked_in_place(tmp_path):
    folder = write_celeba(tmp_path / "kaggle", PARTITIONS, csv=True, kaggle=True)
    assert setup_celeba(str(folder), tmp_path / "local") == folder
    assert os.environ["CELEBA_DIR"] == str(folder) and not (tmp_path / "local").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "drive" / "nope.zip", "does not exist: give 'kaggle', a CelebA .zip"),
        (lambda tmp: zip_folder(write_celeba(tmp / "c", PARTITIONS) / "img_align_celeba", tmp / "photos.zip"),
         "photos.zip holds no img_align_celeba/ folder of images"),
        (lambda tmp: tmp / "notes.zip", "is not a readable zip file"),
        (lambda tmp: tmp / "celeba.tar", "is not a .zip"),
        (lambda tmp: write_celeba(tmp / "c", [0, 0, 2]), "the validation split of .* is empty"),
    ],
    ids=["missing-file", "zip-of-other-photos", "not-a-zip", "not-a-zip-name", "empty-split"],
)
def test_what_is_not_celeba_is_a_clear_error_and_copies_nothing(tmp_path, make, message):
    (tmp_path / "notes.zip").write_text("not a zip")
    (tmp_path / "celeba.tar").write_text("not a zip either")
    with pytest.raises(DataError, match=message):
        setup_celeba(make(tmp_path), tmp_path / "local")
    assert not (tmp_path / "local").exists() and "CELEBA_DIR" not in os.environ


def test_kaggle_without_kagglehub_says_how_to_install_and_sign_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import kagglehub raises ImportError
    with pytest.raises(DataError, match="pip install kagglehub.*KAGGLE_USERNAME and KAGGLE_KEY"):
        setup_celeba("kaggle")


def test_kaggle_uses_what_kagglehub_downloads(monkeypatch, tmp_path):
    folder = write_celeba(tmp_path / "versions" / "2", PARTITIONS, csv=True, kaggle=True)
    asked = []
    fake = types.SimpleNamespace(dataset_download=lambda handle: asked.append(handle) or str(folder))
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    assert setup_celeba("kaggle") == folder and asked == [KAGGLE_DATASET]

    def refused(handle):
        raise PermissionError("401 Unauthorized")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=refused))
    with pytest.raises(DataError, match=r"could not download .*401 Unauthorized.*Colab add the secrets"):
        setup_celeba("kaggle")


def test_the_command_line_sets_celeba_up_and_says_how_to_use_it(drive_zip, tmp_path, capsys):
    assert main(["data", "setup", str(drive_zip), "--target", str(tmp_path / "local")]) == 0
    out = capsys.readouterr().out
    assert f"export CELEBA_DIR={tmp_path / 'local' / 'celeba.zip'}" in out
    assert main(["data", "setup", str(tmp_path / "nope.zip")]) == 2
    assert capsys.readouterr().err.startswith("inpaint: error: ")
    assert zipfile.is_zipfile(tmp_path / "local" / "celeba.zip")
