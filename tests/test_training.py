"""Training: exact step counts, checkpoints and resume after SIGKILL, the NaN guard, the model cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_celeba, zip_folder
from inpaintlib import training
from inpaintlib.checkpoints import read_monitor
from inpaintlib.errors import ConfigError, MaskError
from inpaintlib.training import (
    TrainConfig,
    TrainedModel,
    TrainingDiverged,
    checkpoint_interval,
    load_trained,
    train,
    train_or_load,
)

TINY = dict(data="synthetic", image_size=16, batch_size=4, limit=32, validation_images=8,
            model_options={"base_filters": 4, "depth": 1})


def test_checkpoint_interval_divides_the_steps():
    assert checkpoint_interval(4000, 100) == 100
    assert checkpoint_interval(1234, 100) == 617
    assert checkpoint_interval(7, 100) == 7
    assert checkpoint_interval(90, 100) == 90
    for steps in (1, 13, 60, 999, 1000):
        assert steps % checkpoint_interval(steps, 50) == 0


def test_train_saves_model_config_and_history(tmp_path):
    config = TrainConfig(steps=12, checkpoint_every=4, **TINY)
    trained = train(config, tmp_path / "run", verbose=0)
    assert [row["step"] for row in trained.history] == [4, 8, 12]
    assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in trained.history)
    # The curves: a point every step here (a hundredth of the run), each the mean over its steps,
    # so that an epoch's points average to the epoch's mean.
    for row in trained.history:
        assert [point["step"] for point in row["log"]] == list(range(row["step"] - 3, row["step"] + 1))
        np.testing.assert_allclose(np.mean([point["loss"] for point in row["log"]]), row["loss"], rtol=1e-5)
    # The monitor: fixed validation faces filled at every checkpoint, their known pixels kept.
    monitor = read_monitor(tmp_path / "run")
    assert list(monitor["steps"]) == [4, 8, 12] and monitor["fills"].shape == (3, training.MONITORED_FACES, 16, 16, 3)
    known = np.broadcast_to(monitor["masks"] == 0, monitor["fills"].shape[1:])
    assert (monitor["fills"][:, known] == np.broadcast_to(monitor["images"][known], (3, known.sum()))).all()
    assert not (tmp_path / "run" / "backup").exists(), "the checkpoint goes once training is done"
    loaded = load_trained(tmp_path / "run")
    assert loaded.config == config and loaded.history == trained.history
    images = np.random.default_rng(0).random((3, 16, 16, 3)).astype(np.float32)
    masks = np.zeros((3, 16, 16, 1), np.float32)
    masks[:, 4:12, 4:12] = 1
    np.testing.assert_allclose(loaded.predict(images, masks), trained.predict(images, masks), atol=1e-6)
    filled = loaded.inpaint(images, masks)
    np.testing.assert_array_equal(filled[masks[..., 0] == 0], images[masks[..., 0] == 0])


@pytest.mark.parametrize("model", ["unet", "vaegan"])
def test_long_runs_train_with_xla_and_predict_without(tmp_path, monkeypatch, model):
    """On a CPU, XLA compiles the training step of runs long enough to repay it, and only that:
    prediction would compile anew for every batch size."""
    import keras

    compiled_with = []
    fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, *a, **k: compiled_with.append(self.jit_compile) or fit(self, *a, **k))
    monkeypatch.setattr(training, "XLA_MIN_STEPS_ON_CPU", 4)
    own = {"latent_dim": 4} if model == "vaegan" else {}
    tiny = {**TINY, "model_options": {"base_filters": 4, "depth": 2, "smooth_start": False, **own}}
    short = train(TrainConfig(model=model, steps=2, checkpoint_every=2, **tiny), tmp_path / "short", verbose=0)
    long = train(TrainConfig(model=model, steps=4, checkpoint_every=2, **tiny), tmp_path / "long", verbose=0)
    assert compiled_with == [False, True]
    # XLA runs the smooth fill's depthwise convolutions slower on a CPU: both models' default start.
    smooth = {**tiny, "model_options": {"base_filters": 4, "depth": 2, **own}}
    train(TrainConfig(model=model, steps=4, checkpoint_every=2, **smooth), tmp_path / "smooth", verbose=0)
    assert compiled_with[-1] is False
    assert all(np.isfinite(row["loss"]) for row in short.history + long.history)
    assert long.model.jit_compile is False and load_trained(tmp_path / "long").model.jit_compile is False


def test_out_dir_is_never_overwritten(tmp_path):
    config = TrainConfig(steps=2, checkpoint_every=2, **TINY)
    train(config, tmp_path / "run", verbose=0)
    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(config, tmp_path / "run", verbose=0)
    (tmp_path / "other" / "backup").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds an interrupted training run: pass --resume"):
        train(config, tmp_path / "other", verbose=0)


def test_bad_configs_name_the_field():
    with pytest.raises(ConfigError, match="steps must be a positive integer, not 0"):
        TrainConfig(steps=0).validate()
    with pytest.raises(ConfigError, match="batch-size must be a positive integer, not -2"):
        TrainConfig(batch_size=-2).validate()
    with pytest.raises(ConfigError, match="unknown model 'gan'"):
        TrainConfig(model="gan").validate()
    with pytest.raises(ConfigError, match="unknown model option.*widht: use base_filters, depth, mask_channel"):
        training.build_model(TrainConfig(model_options={"widht": 3}))
    with pytest.raises(ConfigError, match="unknown U-Net loss 'huber': use one of mse, mae"):
        TrainConfig(loss="huber").validate()
    with pytest.raises(ConfigError, match="the VAE-GAN's losses are set by its weights"):
        TrainConfig(model="vaegan", loss="mae").validate()
    with pytest.raises(ConfigError, match="unknown learning-rate schedule 'step': use one of constant, cosine"):
        TrainConfig(schedule="step").validate()
    with pytest.raises(MaskError, match="unknown mask kind 'mixd'"):
        TrainConfig(mask="mixd").validate()


def test_the_default_recipe_and_the_cosine_schedule(tmp_path):
    """By default a U-Net trains on mixed holes with L1 on the hole; a cosine schedule ends at zero."""
    default = TrainConfig()
    assert (default.mask, default.loss, default.schedule) == ("mixed", "mae", "constant")
    config = TrainConfig(steps=8, checkpoint_every=4, schedule="cosine", learning_rate=1e-2, **TINY)
    trained = train(config, tmp_path / "run", verbose=0)
    optimizer = trained.model.optimizer
    assert int(optimizer.iterations) == 8 and float(optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert trained.model.loss == "mae" and trained.model.get_layer("smooth_fill") is not None


@pytest.mark.parametrize("first_bad_step, last_good_step", [(10, 8), (1, 0)], ids=["third-epoch", "first-step"])
def test_nan_loss_stops_and_keeps_the_last_good_weights(tmp_path, monkeypatch, first_bad_step, last_good_step):
    make_dataset = training.make_dataset

    def data_that_turns_nan(images, mask, *args, shuffle=True, **kwargs):
        dataset = make_dataset(images, mask, *args, shuffle=shuffle, **kwargs)
        if not shuffle:
            return dataset  # the validation data stays clean
        nan_from = first_bad_step - 1
        poison = lambda i, batch: (batch[0], batch[1] + training.tf.where(i >= nan_from, float("nan"), 0.0))  # noqa: E731
        return dataset.enumerate().map(poison)

    monkeypatch.setattr(training, "make_dataset", data_that_turns_nan)
    config = TrainConfig(steps=40, checkpoint_every=4, **TINY)
    with pytest.raises(TrainingDiverged, match="NaN or infinite at step .*Lower the learning rate") as caught:
        train(config, tmp_path / "run", verbose=0)
    assert f"at step {first_bad_step};" in str(caught.value)
    assert f"weights of step {last_good_step} in" in str(caught.value)
    kept = load_trained(tmp_path / "run" / "last-good")
    assert all(np.isfinite(w).all() for w in kept.model.get_weights())
    # The optimizer's state is the last good one too, not the diverged step's.
    assert int(kept.model.optimizer.iterations.numpy()) == last_good_step
    assert all(np.isfinite(v.numpy()).all() for v in kept.model.optimizer.variables)
    assert not (tmp_path / "run" / "model.keras").exists(), "a diverged run is not a finished model"


def test_train_or_load_trains_once_per_config(tmp_path, monkeypatch):
    config = TrainConfig(steps=4, checkpoint_every=2, **TINY)
    trained = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: trained.append(real_train(*a, **k)) or trained[-1])
    first = train_or_load(config, cache_dir=tmp_path, verbose=0)
    assert len(trained) == 1
    assert first.path.parent == tmp_path / "models" and first.path.name.startswith("unet-")

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained again a cached config"))
    again = train_or_load(TrainConfig(steps=4, checkpoint_every=1, **TINY), cache_dir=tmp_path)
    assert again.path == first.path, "the checkpoint interval does not change the model"
    # What was loaded is what training made (the model in memory when training ended).
    for a, b in zip(trained[0].model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(pytest.fail.Exception):
        train_or_load(TrainConfig(steps=4, checkpoint_every=2, seed=1, **TINY), cache_dir=tmp_path)


def test_train_or_load_returns_what_it_trained_when_the_code_changes_meanwhile(tmp_path, monkeypatch):
    """An edit to the package while a model trains (a chapter run in one window, the library edited in
    another) changes the key a second look would compute: the model trained is still the one returned."""
    real_train = training.train

    def train_then_edit(*args, **kwargs):
        trained = real_train(*args, **kwargs)
        monkeypatch.setattr("inpaintlib.provenance.code_digest", lambda: "edited meanwhile")
        return trained

    monkeypatch.setattr(training, "train", train_then_edit)
    model = train_or_load(TrainConfig(steps=2, checkpoint_every=2, **TINY), cache_dir=tmp_path, verbose=0)
    assert model.origin == "trained" and (model.path / "model.keras").is_file()


def test_train_or_load_resumes_an_interrupted_cache_entry(tmp_path, monkeypatch):
    config = TrainConfig(steps=6, checkpoint_every=2, **TINY)
    real_fit = training.keras.Model.fit

    def fit_then_die(self, *args, callbacks=(), **kwargs):
        class Die(training.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt

        return real_fit(self, *args, callbacks=[*callbacks, Die()], **kwargs)

    monkeypatch.setattr(training.keras.Model, "fit", fit_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_or_load(config, cache_dir=tmp_path, verbose=0)
    (partial,) = (tmp_path / "models").glob("*.partial")
    assert [row["step"] for row in json.loads((partial / "history.json").read_text())] == [2, 4]

    monkeypatch.setattr(training.keras.Model, "fit", real_fit)
    trained = train_or_load(config, cache_dir=tmp_path, verbose=0)
    assert [row["step"] for row in trained.history] == [2, 4, 6]
    assert not partial.exists()


def test_auto_data_is_resolved_in_the_cache_key(monkeypatch, tmp_path):
    write_celeba(tmp_path, [0, 1, 2])
    monkeypatch.setenv("CELEBA_DIR", str(tmp_path))
    with_celeba = TrainConfig(data="auto").cache_key()
    assert with_celeba == TrainConfig(data=f"celeba:{tmp_path}").cache_key()
    monkeypatch.delenv("CELEBA_DIR")
    with pytest.warns(UserWarning, match="synthetic"):
        assert TrainConfig(data="auto").cache_key() == TrainConfig(data="synthetic").cache_key()


def test_the_same_celeba_anywhere_shares_a_cache_key_and_other_images_do_not(tmp_path):
    """A bundle trained on another machine's copy of CelebA names the same models as this one's."""
    folder = write_celeba(tmp_path / "here", [0, 0, 1, 2])
    copy = shutil.copytree(folder, tmp_path / "elsewhere")
    zipped = zip_folder(folder, tmp_path / "celeba.zip", prefix="celeba/")
    keys = {TrainConfig(data=f"celeba:{path}").cache_key() for path in (folder, copy, zipped)}
    assert len(keys) == 1
    (copy / "img_align_celeba" / "000002.jpg").unlink()  # a train image fewer
    assert TrainConfig(data=f"celeba:{copy}").cache_key() not in keys
    resplit = write_celeba(tmp_path / "resplit", [0, 1, 1, 2])
    assert TrainConfig(data=f"celeba:{resplit}").cache_key() not in keys


def test_options_at_their_defaults_share_a_cache_key():
    spelled_out = TrainConfig(**{**TINY, "model_options": {**TINY["model_options"], "mask_channel": True}})
    assert spelled_out.cache_key() == TrainConfig(**TINY).cache_key()
    assert TrainConfig(**{**TINY, "model_options": {"base_filters": 4, "depth": 2}}).cache_key() != TrainConfig(**TINY).cache_key()


# --- the cache key covers the code ---------------------------------------------------------

#: Trains (or loads) a tiny U-Net with the inpaintlib found first on sys.path; prints the folder
#: and whether it trained.
TRAIN_OR_LOAD = """
import sys
from inpaintlib import training
from inpaintlib.checkpoints import read_monitor
calls = []
real_train = training.train
training.train = lambda *a, **k: calls.append(1) or real_train(*a, **k)
config = training.TrainConfig(steps=2, checkpoint_every=2, data="synthetic", image_size=16, batch_size=4,
                              limit=8, validation_images=4, model_options={"base_filters": 4, "depth": 1})
model = training.train_or_load(config, cache_dir=sys.argv[1], verbose=0)
print(training.__file__, model.path.name, "trained" if calls else "loaded")
"""


@pytest.mark.slow
def test_editing_a_mask_function_in_a_copy_of_the_package_retrains(tmp_path):
    import shutil

    package = tmp_path / "edited" / "inpaintlib"
    shutil.copytree(training.Path(training.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"

    def run(pythonpath=None):
        env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
        # Run outside the repository, whose own inpaintlib/ the working folder would put first on sys.path.
        result = subprocess.run([sys.executable, "-c", TRAIN_OR_LOAD, str(cache)], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.split()

    where, first, how = run(package.parent)
    assert where == str(package / "training.py") and how == "trained"
    assert run(package.parent)[1:] == [first, "loaded"], "the same code reuses its model"
    masks = package / "masks.py"
    source = masks.read_text()
    edited = source.replace("start = (image_size - side) // 2", "start = (image_size - side) // 2 + 1")
    assert edited != source, "the edit must change the centre hole's code"
    masks.write_text(edited)
    _, second, how = run(package.parent)
    assert how == "trained" and second != first, "edited mask code trains a new model"


def test_module_version_finds_the_distribution_that_installs_a_module(tmp_path, monkeypatch):
    """As tensorflow-cpu installs the module tensorflow: the version comes from whichever distribution did."""
    from inpaintlib import provenance

    info = tmp_path / "fakeflow_cpu-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeflow-cpu\nVersion: 9.8.7\n")
    (info / "top_level.txt").write_text("fakeflow\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    provenance.module_version.cache_clear()
    assert provenance.module_version("fakeflow") == "9.8.7"
    assert provenance.module_version("no_such_module_here") == "not installed"
    assert provenance.module_version("keras") == __import__("keras").__version__


# --- resuming is the uninterrupted run --------------------------------------------------------

#: ``inpaint`` commands with deterministic ops, one after the other in one process (argv[1], JSON);
#: the last SIGKILLs the process after step $KILL_AT_STEP when that is set.
DETERMINISTIC_TRAIN = """
import json, os, signal, sys
import keras, tensorflow as tf
tf.config.experimental.enable_op_determinism()
commands = json.loads(sys.argv[1])
kill_at = int(os.environ.get("KILL_AT_STEP", "0"))

class KillAt(keras.callbacks.Callback):
    armed = False
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.armed and self.epoch * self.params["steps"] + batch + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit
keras.Model.fit = lambda self, *a, callbacks=(), **k: fit(self, *a, callbacks=[*callbacks, KillAt()], **k)
from inpaintlib.cli import main
for i, argv in enumerate(commands):
    KillAt.armed = i == len(commands) - 1
    status = main(argv)
    if status:
        sys.exit(status)
"""
#: Tiny models, below the XLA threshold (test_long_runs_train_with_xla_and_predict_without covers XLA).
EXACT_RUNS = {
    "unet": ["--base-filters", "4", "--depth", "2"],
    "vaegan": ["--base-filters", "4", "--depth", "3", "--latent-dim", "4"],
}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["unet", "vaegan"])
def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights(tmp_path, model):
    steps = 40

    def train_command(out, *extra):
        return ["train", model, "--data", "synthetic", "--image-size", "16", "--steps", str(steps), "--batch-size",
                "4", "--checkpoint-every", "10", "--limit", "24", *EXACT_RUNS[model], "--out", str(out), *extra]

    def run(*commands, kill_at=0):
        env = {**os.environ, "KILL_AT_STEP": str(kill_at)}
        return subprocess.run([sys.executable, "-c", DETERMINISTIC_TRAIN, json.dumps(commands)], capture_output=True,
                              text=True, env=env, timeout=300)

    out = tmp_path / "resumed"
    # One process trains the uninterrupted run, then the run it kills mid-epoch: steps 21 to 25
    # are lost, 1 to 20 kept in the checkpoint.
    killed = run(train_command(tmp_path / "whole"), train_command(out), kill_at=25)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "whole" / "model.keras").exists()
    assert [row["step"] for row in json.loads((out / "history.json").read_text())] == [10, 20]
    assert not (out / "model.keras").exists() and (out / "backup").exists()
    again = subprocess.run([sys.executable, "-m", "inpaintlib.cli", *train_command(out)], capture_output=True,
                           text=True, timeout=300)  # found before TensorFlow starts
    assert again.returncode == 2 and "pass --resume" in again.stderr, "an interrupted run is never overwritten"
    resumed = run(train_command(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "model.keras").exists() and not (out / "backup").exists()

    expected, got = load_trained(tmp_path / "whole").model, load_trained(tmp_path / "resumed").model
    optimizers = list(getattr(got, "optimizers", {}).values()) or [got.optimizer]
    assert [int(optimizer.iterations.numpy()) for optimizer in optimizers] == [steps] * len(optimizers)
    assert len(got.weights) == len(expected.weights)
    for a, b in zip(expected.weights, got.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, err_msg=a.path)
    rows = json.loads((out / "history.json").read_text())
    assert [(row["epoch"], row["step"]) for row in rows] == [(1, 10), (2, 20), (3, 30), (4, 40)], "no gap, no repeat"
    assert [point["step"] for row in rows for point in row["log"]] == list(range(1, steps + 1))
    assert list(read_monitor(out)["steps"]) == [10, 20, 30, 40]


def test_resume_takes_the_same_model_spelled_differently_and_refuses_another(tmp_path):
    config = TrainConfig(steps=4, checkpoint_every=2, **TINY)
    out = tmp_path / "run"
    out.mkdir()
    training.write_json_atomically(out / "config.json", config.to_dict())
    (out / "backup").mkdir()
    # Chapter 4 spells fewer options than chapter 2: the same model, so the same run.
    spelled_out = TrainConfig(steps=4, checkpoint_every=4,
                              **{**TINY, "model_options": {**TINY["model_options"], "mask_channel": True}})
    trained = train(spelled_out, out, resume=True, verbose=0)
    assert [row["step"] for row in trained.history] == [2, 4], "the run keeps its own checkpoint interval"
    other = tmp_path / "other"
    other.mkdir()
    training.write_json_atomically(other / "config.json", config.to_dict())
    with pytest.raises(ConfigError, match="started with different hole. Resume it with the same arguments"):
        train(TrainConfig(steps=4, checkpoint_every=2, hole=0.25, **TINY), other, resume=True, verbose=0)


def test_a_second_process_cannot_train_into_the_same_folder(tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / training.LOCK_FILE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another open file: as another process holds it
        with pytest.raises(ConfigError, match="another process is training into .*run now"):
            train(TrainConfig(steps=2, checkpoint_every=2, **TINY), out, verbose=0)
    trained = train(TrainConfig(steps=2, checkpoint_every=2, **TINY), out, verbose=0)
    assert trained.history and not (out / training.LOCK_FILE).exists(), "a finished folder keeps no lock"


def test_train_or_load_waits_for_another_process_training_the_same_model(tmp_path, monkeypatch):
    import fcntl
    import threading

    config = TrainConfig(steps=2, checkpoint_every=2, **TINY)
    elsewhere = train(config, tmp_path / "elsewhere", verbose=0)  # what the other process will have made
    final = tmp_path / "models" / f"unet-{config.cache_key()}"
    final.parent.mkdir(parents=True)
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained what another process trains"))
    result = {}
    with open(final.with_name(f".{final.name}.lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: result.update(model=train_or_load(config, cache_dir=tmp_path)))
        waiter.start()
        waiter.join(2.0)
        assert waiter.is_alive(), "it waits while the lock is held"
        os.replace(tmp_path / "elsewhere", final)  # the other process finishes ...
    waiter.join(60)  # ... and releases the lock
    assert result["model"].path == final
    for a, b in zip(elsewhere.model.get_weights(), result["model"].model.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- the scale every result carries ------------------------------------------------------------

def test_the_full_recipe_is_found_in_the_cache_and_named_in_the_scale_note(tmp_path, monkeypatch):
    """A small model's chapter scores the full recipe's model beside it when the cache holds it, and
    its note says what the full recipe trains; nothing trains the full recipe to find that out."""
    from inpaintlib import profiles
    from inpaintlib.provenance import scale_line, scale_note

    tiny_full = {"full": {"02_unet": {"steps": 6, "batch_size": 8, "base_filters": 8, "n_eval": 99}}}
    monkeypatch.setattr(profiles, "load_profiles", lambda path=None: tiny_full)
    small = train_or_load(TrainConfig(steps=4, checkpoint_every=2, **TINY), cache_dir=tmp_path, verbose=0)
    full_config = profiles.recipe_config(small.config)
    assert (full_config.steps, full_config.batch_size, full_config.model_options) == (
        6, 8, {"base_filters": 8, "depth": 1}), "the profile's training values, the rest as the model has them"
    assert (full_config.mask, full_config.limit, full_config.checkpoint_every) == (small.config.mask, 32, 2)
    assert training.full_recipe_of(small, cache_dir=tmp_path) is None, "never trained: not in the cache"

    note = scale_note("quick", [small], [None])
    # How long 4 steps take depends on the machine's load, so the minutes are checked apart, below.
    assert re.match(r":::\{admonition\} These results come from (less than a minute|one minute|\d+ minutes) "
                    r"of training on the CPU \(", note)
    assert ":class: attention" in note and re.search(r"U-Net: 4 steps of 4, \d+\.\d min on the CPU", note)
    assert "The full recipe trains U-Net 6 steps of 8, base_filters = 8, on a GPU" in note
    assert "The model cache holds" not in note

    trained_full = train_or_load(full_config, cache_dir=tmp_path, verbose=0)
    found = training.full_recipe_of(small, cache_dir=tmp_path)
    assert found.path == trained_full.path and found.origin == "cache" and found.name == "U-Net, full recipe"
    assert training.full_recipe_of(found, cache_dir=tmp_path) is None, "the full recipe is its own"
    note = scale_note("quick with steps = 4", [small], [found])
    assert "The **quick with steps = 4** profile." in note
    assert "The model cache holds the full recipe's U-Net, full recipe: 6 steps of 8" in note
    assert scale_note("full", [found], [None]).startswith(":::{admonition} The full recipe: ")
    for seconds, spent in [(20, "less than a minute"), (50, "one minute"), (200, "3 minutes")]:
        timed = TrainedModel(None, small.config, [{"step": 4, "seconds": seconds}])
        assert scale_note("quick", [timed], [None]).startswith(
            f":::{{admonition}} These results come from {spent} of training on this machine"), seconds
    assert scale_line("smoke", [small, found]) == (
        f"Scale: smoke profile; {small.scale()}; {found.scale()}.")
    assert small.scale().endswith("trained in this run") and found.scale().endswith("from the cache")
