"""The Try it page's assets: the models exported for the browser, the faces, the pinned runtime.

The page itself runs in tests/test_browser.py, on the smoke book.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

pytest.importorskip("onnxruntime", reason="the export extra (pip install 'inpaintlib[export]') is not installed")

from inpaintlib import tryit  # noqa: E402
from inpaintlib.config import DEFAULT_TEMPERATURE  # noqa: E402
from inpaintlib.data import load_images  # noqa: E402
from inpaintlib.errors import ConfigError  # noqa: E402


def test_package_json_pins_the_runtime_the_page_names():
    package = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert package["dependencies"] == {"onnxruntime-web": tryit.RUNTIME_VERSION}
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == tryit.RUNTIME_VERSION


def test_a_runtime_that_is_not_the_pinned_file_is_refused(tmp_path):
    dist = tmp_path / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    (dist.parent / "package.json").write_text(json.dumps({"version": tryit.RUNTIME_VERSION}))
    for name in tryit.RUNTIME_FILES:
        (dist / name).write_text("not onnxruntime-web")
    with pytest.raises(ConfigError, match="is not the script whose hash inpaintlib.tryit pins"):
        tryit._runtime(tmp_path, tmp_path / "try")
    assert not (tmp_path / "try" / "ort").exists()


def test_assets_hold_both_models_the_faces_and_a_runtime(tiny_unet, tiny_vaegan, tmp_path, monkeypatch):
    monkeypatch.setattr(tryit.shutil, "which", lambda name: None)  # no npm: the CDN's runtime, said so
    root = tmp_path / "book"
    root.mkdir()
    config = tryit.write_assets({"unet": tiny_unet, "vaegan": tiny_vaegan}, "synthetic", tmp_path / "try", root,
                                faces=3)
    assert config == json.loads((tmp_path / "try" / "config.json").read_text())
    assert config["runtime"]["integrity"] == tryit.RUNTIME_INTEGRITY and "cdn" in config["runtime"]["script"]
    assert config["models"]["vaegan"]["latent_dim"] == 8 and "latent_dim" not in config["models"]["unet"]
    assert config["models"]["vaegan"]["temperature"] == DEFAULT_TEMPERATURE
    assert "temperature" not in config["models"]["unet"]
    for model in config["models"].values():
        assert (tmp_path / "try" / model["file"]).is_file()
    faces = json.loads((tmp_path / "try" / "faces.json").read_text())
    assert "synthetic" in faces["label"] and len(faces["faces"]) == 3
    np.testing.assert_array_equal(tryit.decode_face(faces, 2), load_images("synthetic", "test", 32, limit=3)[2])
    # A second page from the same models exports nothing again.
    kept = {path: path.stat().st_mtime_ns for path in (root / "_build" / "try").rglob("*.onnx")}
    tryit.write_assets({"unet": tiny_unet, "vaegan": tiny_vaegan}, "synthetic", tmp_path / "again", root, faces=3)
    assert len(kept) == 2 and kept == {path: path.stat().st_mtime_ns for path in kept}
