"""The VAE-GAN: its networks, stable smoke training over seeds, sampling, saving, resume, the command line."""

from __future__ import annotations

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import face_like
from PIL import Image

from inpaintlib import training
from inpaintlib.cli import build_parser, main
from inpaintlib.config import DEFAULT_TEMPERATURE
from inpaintlib.data import synthetic_faces
from inpaintlib.errors import ConfigError
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import evaluate
from inpaintlib.training import TrainConfig, TrainedModel, load_trained, train
from inpaintlib.smooth_fill import SmoothFill
from inpaintlib.vaegan import VAEGAN, HoleCrop, build_vaegan

SMALL = {"latent_dim": 8, "base_filters": 8, "depth": 3}
SMOKE = dict(model="vaegan", data="synthetic", image_size=32, batch_size=8, limit=64, validation_images=8,
             model_options=SMALL, learning_rate=1e-3)


def faces_and_holes(n=6, size=32):
    images = synthetic_faces(n, size, seed=3).astype(np.float32) / 255.0
    return images, eval_masks("center", n, size)


@pytest.mark.parametrize("image_skips", [True, False])
def test_networks_have_the_documented_shapes(image_skips):
    model = build_vaegan(image_size=32, image_skips=image_skips, smooth_start=image_skips, **SMALL)
    images, masks = faces_and_holes(2)
    mean, log_var, *maps = model.encoder([images, masks])
    assert mean.shape == log_var.shape == (2, 8)
    assert [m.shape[1] for m in maps] == [32, 16, 8, 4], "feature maps from full size to the bottom"
    assert [t.shape for t in model.posterior([images, masks])] == [(2, 8), (2, 8)]
    assert model([images, masks]).shape == (2, 32, 32, 3)
    logits, features = model.discriminator([images, masks])
    assert logits.shape == (2, 1) and features.shape[1:3] == (8, 8)
    skip_inputs = [i.name for i in model.decoder.inputs[1:]]
    assert (len(skip_inputs) == 4) == image_skips


@pytest.mark.parametrize("kind, logits", [("global", 1), ("patch", 64), ("global+local", 2)])
def test_each_discriminator_judges_what_it_says(kind, logits):
    model = build_vaegan(image_size=32, discriminator=kind, **SMALL)
    images, masks = faces_and_holes(2)
    assert model.discriminator([images, masks])[0].shape == (2, logits)
    # Only the patches that hold hole pixels count as fakes (a centre hole of 16 of 32 pixels:
    # the middle 4x4 of the 8x8 cells of 4 pixels); a global logit always does.
    weights = model._fake_weights(tf.constant(masks), (2, logits)).numpy()
    if kind == "patch":
        assert weights.reshape(2, 8, 8)[:, 2:6, 2:6].all() and weights.sum() == 2 * 16
    else:
        assert weights.all()


def test_the_hole_crop_is_the_window_centred_on_the_hole():
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    masks = np.zeros((2, 32, 32, 1), np.float32)
    masks[0, 20:28, 4:10] = 1  # centroid (23.5, 6.5): the window starts at row 16, column 0 (kept inside)
    masks[1, 8:16, 8:16] = 1  # centroid (11.5, 11.5): rows and columns 4..19
    crops = HoleCrop(16)([tf.constant(images), tf.constant(masks)]).numpy()
    np.testing.assert_allclose(crops[0], images[0, 16:32, 0:16], atol=1e-6)
    np.testing.assert_allclose(crops[1], images[1, 4:20, 4:20], atol=1e-6)


def test_the_untrained_model_fills_with_the_smooth_fill_for_every_code():
    model = build_vaegan(image_size=32, **SMALL)
    images, masks = faces_and_holes(3)
    smooth = SmoothFill()([images * (1 - masks), masks]).numpy()
    # Within the logit's clipping margin (1e-3) of the smooth fill.
    np.testing.assert_allclose(model([images * (1 - masks), masks]).numpy(), smooth, atol=1.01e-3)
    draws = model.sample_fills(images * (1 - masks), masks, 2)
    np.testing.assert_allclose(draws, np.stack([smooth, smooth]), atol=1.01e-3)


@pytest.mark.parametrize("max_std", [3.0, 1.0, None])
def test_the_gaussians_spread_starts_near_one_and_stays_below_its_bound(max_std):
    """Untrained, each Gaussian is about as wide as the standard normal; pushed wider, a bounded one
    stops at max_std."""
    model = build_vaegan(image_size=32, max_std=max_std, **SMALL)
    images, masks = faces_and_holes(2)
    start = model.encoder([images, masks])[1].numpy()
    assert abs(np.median(start)) < (0.8 if max_std == 1.0 else 0.3)  # log-variance: a spread near 1
    for layer in (model.encoder.get_layer("z_log_var"), model.posterior.get_layer("posterior_z_log_var")):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + 8.0])
    for log_var in (model.encoder([images, masks])[1].numpy(), model.posterior([images, masks])[1].numpy()):
        if max_std is None:
            assert np.all(log_var > 5.0)
        else:
            assert np.all(log_var < 2 * np.log(max_std)) and np.all(log_var > 2 * np.log(max_std) - 1.0)


def test_the_first_design_has_no_posterior_network_and_its_kl_is_to_the_standard_normal():
    model = build_vaegan(image_size=32, posterior="visible", **SMALL)
    assert model.posterior is None and [n.name for n in model.networks] == ["encoder", "decoder", "discriminator"]
    model.compile()
    images, masks = faces_and_holes(2)
    masked = images * (1 - masks)
    mean, log_var = (t.numpy() for t in model.encoder([masked, masks])[:2])
    expected = np.mean(np.sum(0.5 * (np.exp(log_var) + mean**2 - 1 - log_var), axis=-1)) / (32 * 32 * 3)
    kl = model._loss_terms(tf.constant(masked), tf.constant(masks), tf.constant(images), training=False)["kl"]
    np.testing.assert_allclose(float(kl), expected, rtol=1e-4)


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_the_mean_fill_loss_is_the_pixel_loss_of_the_fill_the_model_returns(weight):
    """Logged in evaluation whatever its weight; in the loss, and trained, only with a weight."""
    model = build_vaegan(image_size=32, mean_fill_weight=weight, **SMALL)
    model.compile()
    images, masks = faces_and_holes(2)
    masked = images * (1 - masks)
    weights = 1 + (6.0 - 1) * masks  # hole_weight 6: the pixel loss's weighting
    expected = np.mean(weights * np.abs(model([masked, masks]).numpy() - images))
    terms = model._loss_terms(tf.constant(masked), tf.constant(masks), tf.constant(images), training=False)
    np.testing.assert_allclose(float(terms["mean_fill"]), expected, rtol=1e-5)
    trained = model._loss_terms(tf.constant(masked), tf.constant(masks), tf.constant(images), training=True)
    # The default weights (1 for kl, feature and pixel, 0.1 adversarial), and this one.
    with_it = (trained["kl"] + trained["feature"] + trained["pixel"] + weight * trained["mean_fill"]
               + 0.1 * trained["adversarial"])
    np.testing.assert_allclose(float(trained["loss"]), float(with_it), rtol=1e-5)
    assert (float(trained["mean_fill"]) > 0) == (weight > 0)


@pytest.mark.parametrize(
    "options, message",
    [({"depth": 6}, "divisible by 2\\*\\*depth"), ({"depth": 1}, "depth must be at least 2"),
     ({"real_label": 0.3}, "real_label must be in"), ({"posterior": "hole"}, "unknown posterior 'hole'"),
     ({"discriminator": "local"}, "unknown discriminator 'local': use one of global, patch"),
     ({"image_skips": False}, "set smooth_start=False"), ({"max_std": 0}, "max_std must be positive, or None")],
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
    """Killed after its first checkpoint, the run resumes there and ends at the same step, where the
    cosine schedule of every optimizer reaches zero."""
    on_epoch_end = training.HistoryWriter.on_epoch_end

    def interrupted_after_the_second_epoch(self, epoch, logs=None):
        on_epoch_end(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt  # the backup of epoch 1 was never written: like a kill -9 here

    config = TrainConfig(steps=12, checkpoint_every=4, schedule="cosine", **SMOKE)
    with monkeypatch.context() as patch:
        patch.setattr(training.HistoryWriter, "on_epoch_end", interrupted_after_the_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "run", verbose=0)
    trained = train(config, tmp_path / "run", resume=True, verbose=0)
    assert [row["step"] for row in trained.history] == [4, 8, 12]
    loaded = load_trained(tmp_path / "run")
    assert {name: int(opt.iterations.numpy()) for name, opt in loaded.model.optimizers.items()} == {
        "encoder": 12, "posterior": 12, "decoder": 12, "discriminator": 12}
    assert all(float(opt.learning_rate) == pytest.approx(0.0, abs=1e-9) for opt in loaded.model.optimizers.values())


def test_editing_the_loss_weights_changes_the_cache_key():
    plain = TrainConfig(**SMOKE)
    heavier = TrainConfig(**{**SMOKE, "model_options": {**SMALL, "adversarial_weight": 0.3}})
    assert plain.cache_key() != heavier.cache_key()
    assert TrainConfig(model="vaegan").learning_rate == 5e-4 and TrainConfig(model="unet").learning_rate == 1e-3


def test_every_way_of_drawing_fills_draws_at_the_default_temperature():
    """The library, the command line and a trained model agree on how far apart draws spread by default."""
    args = build_parser().parse_args(["fill", "face.png", "--model", "runs/vaegan", "-o", "fill.png"])
    sampling = inspect.signature(VAEGAN.sample_fills).parameters["temperature"].default
    assert args.temperature == sampling == TrainedModel(None, TrainConfig(model="vaegan"), []).temperature
    assert 0 < DEFAULT_TEMPERATURE == sampling < 1  # below the prior as trained: chosen on validation faces


@pytest.mark.slow
def test_train_evaluate_and_fill_samples_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "vaegan"
    assert main(["train", "vaegan", "--data", "synthetic", "--image-size", "32", "--steps", "4", "--batch-size", "4",
                 "--limit", "32", "--base-filters", "8", "--depth", "3", "--latent-dim", "8", "--checkpoint-every", "2",
                 "--discriminator", "global+local", "--no-smooth-start", "--schedule", "cosine", "--max-std", "2",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    options = config["model_options"]
    assert options["discriminator"] == "global+local" and options["smooth_start"] is False
    assert (config["schedule"], options["max_std"]) == ("cosine", 2.0)
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
    # At temperature 0 every draw is the single most likely fill.
    assert main(["fill", str(face), "--model", str(out), "--samples", "2", "--temperature", "0",
                 "-o", str(tmp_path / "cold.png")]) == 0
    cold = [np.asarray(Image.open(tmp_path / f"cold-{i}.png")) for i in (1, 2)]
    np.testing.assert_array_equal(cold[0], cold[1])
    assert main(["fill", str(face), "--model", "telea", "--samples", "2", "-o", str(tmp_path / "t.png")]) == 2
    assert "fills a hole one way only" in capsys.readouterr().err


def test_unet_options_are_refused_for_the_vaegan():
    config = TrainConfig(**{**SMOKE, "model_options": {"mask_channel": False}})
    with pytest.raises(ConfigError, match="mask_channel"):
        training.build_model(config)


def test_a_keras_model_round_trips_through_its_config():
    model = build_vaegan(image_size=32, image_skips=False, smooth_start=False, **SMALL)
    clone = VAEGAN.from_config(model.get_config())
    assert clone.settings == model.settings and len(clone.decoder.inputs) == 1
    assert keras.saving.get_registered_name(VAEGAN) == "inpaintlib>VAEGAN"
