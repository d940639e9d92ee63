"""The VAE-GAN: its networks, stable smoke training over seeds, sampling, saving, resume, the command line."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import face_like
from PIL import Image

from inpaintlib import training
from inpaintlib.cli import main
from inpaintlib.data import synthetic_faces
from inpaintlib.errors import ConfigError
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import evaluate
from inpaintlib.training import TrainConfig, load_trained, train
from inpaintlib.vaegan import VAEGAN, build_vaegan

SMALL = {"latent_dim": 8, "base_filters": 8, "depth": 3}
SMOKE = dict(model="vaegan", data="synthetic", image_size=32, batch_size=8, limit=64, validation_images=8,
             model_options=SMALL, learning_rate=1e-3)


def faces_and_holes(n=6, size=32):
    images = synthetic_faces(n, size, seed=3).astype(np.float32) / 255.0
    return images, eval_masks("center", n, size)


@pytest.mark.parametrize("image_skips", [True, False])
def test_networks_have_the_documented_shapes(image_skips):
    model = build_vaegan(image_size=32, image_skips=image_skips, **SMALL)
    images, masks = faces_and_holes(2)
    mean, log_var, *maps = model.encoder([images, masks])
    assert mean.shape == log_var.shape == (2, 8)
    assert [m.shape[1] for m in maps] == [32, 16, 8, 4], "feature maps from full size to the bottom"
    assert model([images, masks]).shape == (2, 32, 32, 3)
    logit, features = model.discriminator(images)
    assert logit.shape == (2, 1) and features.shape[1:3] == (8, 8)
    skip_inputs = [i.name for i in model.decoder.inputs[1:]]
    assert (len(skip_inputs) == 4) == image_skips


@pytest.mark.parametrize(
    "options, message",
    [({"depth": 6}, "divisible by 2\\*\\*depth"), ({"depth": 1}, "depth must be at least 2"),
     ({"real_label": 0.3}, "real_label must be in")],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ConfigError, match=message):
        build_vaegan(image_size=32, **{**SMALL, **options})


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smoke_training_is_finite_and_not_collapsed_for_three_seeds(tmp_path, seed):
    trained = train(TrainConfig(steps=24, checkpoint_every=8, seed=seed, **SMOKE), tmp_path / "run", verbose=0)
    assert [row["step"] for row in trained.history] == [8, 16, 24]
    for row in trained.history:
        for name in VAEGAN.LOSSES:
            assert np.isfinite(row[name]) and np.isfinite(row[f"val_{name}"]), (name, row)
    images, masks = faces_and_holes()
    fills = trained.predict(images, masks)
    hole = masks[..., 0] == 1
    # Not collapsed: the fills vary across the hole and from face to face.
    assert fills[hole].std() > 0.02
    assert np.abs(fills[0] - fills[1])[hole[0]].mean() > 0.005
    samples = trained.sample(images, masks, 3)
    assert samples.shape == (3, *images.shape)
    np.testing.assert_array_equal(samples[:, ~hole], np.broadcast_to(images[~hole], samples[:, ~hole].shape))
    assert np.abs(samples[0] - samples[1])[hole].mean() > 0, "different codes, different fills"


@pytest.mark.slow
def test_saved_model_loads_samples_and_scores_diversity(tmp_path, monkeypatch):
    last_step, averages = {}, {}
    average_weights = VAEGAN.average_weights

    def swap_and_record(self):  # what the weights were after the last step, and the averages then
        last_step.update({v.path: v.numpy() for v in self._generator_variables()})
        averages.update({v.path: a.numpy() for v, a in zip(self._generator_variables(), self.averages)})
        average_weights(self)

    monkeypatch.setattr(VAEGAN, "average_weights", swap_and_record)
    trained = train(TrainConfig(steps=4, checkpoint_every=2, **SMOKE), tmp_path / "run", verbose=0)
    loaded = load_trained(tmp_path / "run")
    assert loaded.name == "VAE-GAN" and isinstance(loaded.model, VAEGAN)
    assert loaded.model.get_config()["latent_dim"] == 8
    images, masks = faces_and_holes()
    np.testing.assert_allclose(loaded.predict(images, masks), trained.predict(images, masks), atol=1e-6)
    assert all(int(opt.iterations.numpy()) == 4 for opt in loaded.model.optimizers.values())
    # It fills with the moving average of its weights, which differs from the last step's.
    generator = loaded.model._generator_variables()
    assert len(generator) == len(averages) > 0
    for variable in generator:
        np.testing.assert_array_equal(variable.numpy(), averages[variable.path])
    assert any(not np.allclose(last_step[v.path], averages[v.path], atol=1e-6) for v in generator), \
        "the average differs from the last step's weights"
    # The same seed draws the same fills; another seed others.
    np.testing.assert_array_equal(loaded.sample(images, masks, 2, seed=5), loaded.sample(images, masks, 2, seed=5))
    scores = evaluate(loaded, images, masks, diversity_samples=3, diversity_images=4)
    assert scores["method"] == "VAE-GAN" and scores["diversity"] > 0


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_every_optimizer_state(tmp_path, monkeypatch):
    """Killed after its first checkpoint, the run resumes there and ends at the same step."""
    on_epoch_end = training.HistoryWriter.on_epoch_end

    def interrupted_after_the_second_epoch(self, epoch, logs=None):
        on_epoch_end(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt  # the backup of epoch 1 was never written: like a kill -9 here

    config = TrainConfig(steps=12, checkpoint_every=4, **SMOKE)
    with monkeypatch.context() as patch:
        patch.setattr(training.HistoryWriter, "on_epoch_end", interrupted_after_the_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "run", verbose=0)
    trained = train(config, tmp_path / "run", resume=True, verbose=0)
    assert [row["step"] for row in trained.history] == [4, 8, 12]
    loaded = load_trained(tmp_path / "run")
    assert {name: int(opt.iterations.numpy()) for name, opt in loaded.model.optimizers.items()} == {
        "encoder": 12, "decoder": 12, "discriminator": 12}


def test_editing_the_loss_weights_changes_the_cache_key():
    plain = TrainConfig(**SMOKE)
    heavier = TrainConfig(**{**SMOKE, "model_options": {**SMALL, "adversarial_weight": 0.1}})
    assert plain.cache_key() != heavier.cache_key()
    assert TrainConfig(model="vaegan").learning_rate == 2e-4 and TrainConfig(model="unet").learning_rate == 1e-3


@pytest.mark.slow
def test_train_evaluate_and_fill_samples_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "vaegan"
    assert main(["train", "vaegan", "--data", "synthetic", "--image-size", "32", "--steps", "4", "--batch-size", "4",
                 "--limit", "32", "--base-filters", "8", "--depth", "3", "--latent-dim", "8", "--checkpoint-every", "2",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", "synthetic", "--image-size", "32", "--limit", "4",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "VAE-GAN" and result["diversity"] > 0 and np.isfinite(result["sharpness"])

    face = tmp_path / "face.png"
    Image.fromarray(face_like(1, width=50, height=40)).save(face)
    assert main(["fill", str(face), "--model", str(out), "--samples", "3", "-o", str(tmp_path / "fill.png")]) == 0
    fills = [np.asarray(Image.open(tmp_path / f"fill-{i}.png"), np.int16) for i in (1, 2, 3)]
    assert all(f.shape == (32, 32, 3) for f in fills) and np.abs(fills[0] - fills[1]).sum() > 0
    assert main(["fill", str(face), "--model", "telea", "--samples", "2", "-o", str(tmp_path / "t.png")]) == 2
    assert "fills a hole one way only" in capsys.readouterr().err


def test_unet_options_are_refused_for_the_vaegan():
    config = TrainConfig(**{**SMOKE, "model_options": {"mask_channel": False}})
    with pytest.raises(ConfigError, match="mask_channel"):
        training.build_model(config)


def test_a_keras_model_round_trips_through_its_config():
    model = build_vaegan(image_size=32, image_skips=False, **SMALL)
    clone = VAEGAN.from_config(model.get_config())
    assert clone.settings == model.settings and len(clone.decoder.inputs) == 1
    assert keras.saving.get_registered_name(VAEGAN) == "inpaintlib>VAEGAN"
