"""ONNX export: each graph runs in onnxruntime as the Keras model does, and a failed export leaves nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inpaintlib.cli import main

pytest.importorskip("onnxruntime", reason="the export extra (pip install 'inpaintlib[export]') is not installed")
pytest.importorskip("tf2onnx", reason="the export extra (pip install 'inpaintlib[export]') is not installed")

import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

from inpaintlib import export  # noqa: E402
from inpaintlib.config import DEFAULT_TEMPERATURE  # noqa: E402
from inpaintlib.data import load_images  # noqa: E402
from inpaintlib.masks import eval_masks  # noqa: E402
from inpaintlib.training import load_trained  # noqa: E402


def faces_and_holes(n=5, size=32, kind="free-form"):
    faces = load_images("synthetic", "test", image_size=size, limit=n).astype(np.float32) / 255.0
    return faces, eval_masks(kind, n, size)


def run_graph(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def one_line_error(capsys, *fragments):
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inpaint: error: "), lines
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


def test_unet_graph_fills_as_keras_does(tiny_unet, tmp_path, capsys):
    assert main(["export", str(tiny_unet), "-o", str(tmp_path / "onnx"), "--data", "synthetic"]) == 0
    assert "unet.onnx" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "onnx" / "unet.json").read_text())
    assert manifest["model"] == "unet" and manifest["image_size"] == 32 and manifest["checked_on"] == 8
    assert [i["name"] for i in manifest["inputs"]] == ["masked_image", "mask"]
    assert manifest["inputs"][0]["shape"] == [None, 32, 32, 3]
    assert 0 <= manifest["max_difference"] <= export.ONNX_TOLERANCE
    # Faces and holes it was not checked on: the same fill as Keras's.
    faces, holes = faces_and_holes()
    got = run_graph(tmp_path / "onnx" / "unet.onnx", {"masked_image": faces * (1 - holes), "mask": holes})
    np.testing.assert_allclose(got, load_trained(tiny_unet).predict(faces, holes), atol=export.ONNX_TOLERANCE)
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["unet.json", "unet.onnx"]


def test_a_refined_smooth_fill_exports_within_its_rounding(tmp_path):
    """Conjugate gradients in float32 settle to a few 1e-4 on any runtime: checked at that tolerance."""
    from inpaintlib.training import TrainConfig, train

    config = TrainConfig(model="unet", data="synthetic", image_size=32, steps=2, batch_size=4, limit=8,
                         validation_images=4, model_options={"base_filters": 4, "depth": 2, "smooth_refine_steps": 5})
    train(config, tmp_path / "unet", verbose=0)
    manifest = export.to_onnx(tmp_path / "unet", tmp_path / "onnx")
    assert manifest["max_difference"] <= export.REFINED_TOLERANCE
    faces, holes = faces_and_holes()
    got = run_graph(tmp_path / "onnx" / "unet.onnx", {"masked_image": faces * (1 - holes), "mask": holes})
    np.testing.assert_allclose(got, load_trained(tmp_path / "unet").predict(faces, holes),
                               atol=export.REFINED_TOLERANCE)


def test_vaegan_graph_draws_with_its_noise_input(tiny_vaegan, tmp_path):
    manifest = export.to_onnx(tiny_vaegan, tmp_path)
    assert [i["name"] for i in manifest["inputs"]] == ["masked_image", "mask", "noise"]
    assert manifest["latent_dim"] == 8 and manifest["inputs"][2]["shape"] == [None, 8]
    assert manifest["temperature"] == DEFAULT_TEMPERATURE  # what a page scales its noise by
    trained = load_trained(tiny_vaegan)
    faces, holes = faces_and_holes(kind="center")
    feeds = {"masked_image": faces * (1 - holes), "mask": holes}
    path = tmp_path / "vaegan.onnx"
    # Zero noise: the prior's mean code, the fill the model returns when called.
    zero = run_graph(path, {**feeds, "noise": np.zeros((len(faces), 8), np.float32)})
    np.testing.assert_allclose(zero, trained.predict(faces, holes), atol=export.ONNX_TOLERANCE)
    # Noise: a draw, the one Keras's networks decode from the same code.
    noise = np.random.default_rng(3).standard_normal((len(faces), 8)).astype(np.float32)
    mean, log_var, *maps = trained.model.encoder([feeds["masked_image"], holes])
    code = mean.numpy() + np.exp(0.5 * log_var.numpy()) * noise
    expected = trained.model._decode(tf.constant(code), maps, False).numpy()
    drawn = run_graph(path, {**feeds, "noise": noise})
    np.testing.assert_allclose(drawn, expected, atol=export.ONNX_TOLERANCE)
    other = run_graph(path, {**feeds, "noise": -noise})
    assert np.abs((drawn - other) * holes).max() > 1e-3, "two noises gave the same fill"


def test_export_checked_against_real_faces(tiny_unet, celeba_sample, tmp_path):
    faces = load_images(f"celeba:{celeba_sample}", "validation", image_size=32, limit=8)
    manifest = export.to_onnx(tiny_unet, tmp_path, faces)
    assert manifest["checked_on"] == 8 and manifest["max_difference"] <= export.ONNX_TOLERANCE


def test_a_graph_that_fails_its_check_is_not_written(tiny_unet, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "ONNX_TOLERANCE", -1.0)  # no difference passes
    assert main(["export", str(tiny_unet), "-o", str(tmp_path / "onnx"), "--data", "synthetic"]) == 2
    one_line_error(capsys, "differs from the Keras model by", "it was not written")
    assert list((tmp_path / "onnx").iterdir()) == []


def test_output_that_is_a_file_is_refused(tiny_unet, tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["export", str(tiny_unet), "-o", str(tmp_path / "taken"), "--data", "synthetic"]) == 2
    one_line_error(capsys, "is a file", "name a folder")
