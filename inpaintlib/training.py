"""Training that survives interruption, and the trained-model cache.

``train`` fits a model on a tf.data pipeline for a number of *steps* (the
original recipe's "4000 epochs of one random batch of 128" is 4000 steps of
batch 128). Keras epochs are only the checkpoint interval here: at the end of
each one, :class:`.Checkpoint` saves weights and optimizer state (one file,
written atomically) and the history is written to ``history.json``. A run
killed at any moment resumes from its last checkpoint and *is* the
uninterrupted run: the pipeline skips the batches the checkpoint already
trained on, so the resumed steps see the same images, holes and noise.

``train_or_load`` keys a finished model by everything that shaped it, so a
chapter re-run, a book rebuild or a classroom that changes one parameter
trains only what changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from inpaintlib.checkpoints import (  # noqa: F401  (re-exported: where a run's state goes)
    Checkpoint,
    FillMonitor,
    HistoryWriter,
    StopOnNaN,
    restore_checkpoint,
    save_model_atomically,
    write_json_atomically,
)
from inpaintlib.device import has_accelerator, pick_strategy
from inpaintlib.data import cache_root, load_images, make_dataset, open_images
from inpaintlib.config import (  # noqa: F401  (TrainConfig and the folder's file names, re-exported)
    CONFIG_FILE,
    DEFAULT_TEMPERATURE,
    HISTORY_FILE,
    MODEL_FILE,
    MODEL_KINDS,
    ORIGIN_FILE,
    RUN_FILE,
    TrainConfig,
    builder,
    key_of,
    read_model_folder,
    read_record,
)
from inpaintlib.errors import ConfigError, InpaintError
from inpaintlib.files import hold_lock
from inpaintlib.masks import eval_masks

BACKUP_DIR = "backup"
#: Validation faces whose fills :class:`.FillMonitor` keeps at every checkpoint.
MONITORED_FACES = 6
#: Held by the process training into a folder; gone once the model is saved.
LOCK_FILE = "train.lock"
#: On a CPU, XLA takes 5-15 s to compile a training step, then runs each step 1.2-1.5x faster
#: (bench/train.py, both models): it pays from about a hundred steps on.
XLA_MIN_STEPS_ON_CPU = 200


class TrainingDiverged(InpaintError):
    """The loss became NaN or infinite; the last good weights were kept."""


@dataclass
class TrainedModel:
    """A trained network with the config that made it and its history; inpaints like a baseline."""

    model: keras.Model
    config: TrainConfig
    history: list[dict]
    path: Path | None = None
    #: How tables and figures name it; by default the model's kind ("U-Net").
    label: str | None = None
    #: How far apart a VAE-GAN's draws are spread (see :meth:`.VAEGAN.sample_fills`); 1: the prior as trained.
    temperature: float = DEFAULT_TEMPERATURE
    #: Where it came from, "trained" (in this run), "cache" (trained before) or "imported" (from a bundle).
    origin: str = "trained"

    @property
    def run(self) -> dict:
        """The record its training wrote (``run.json``): cache key, data, device, wall time; {} if absent."""
        return read_record(self.path / RUN_FILE) if self.path else {}

    def describe(self) -> str:
        """One line on what made this model and where it came from, the scale its results carry:
        steps and batch, the data, the training's wall time and device, and whether it was trained
        in this run, loaded from the cache, or imported from a bundle.

        Examples
        --------
        >>> config = TrainConfig(model="unet", data="synthetic", steps=300, batch_size=32)
        >>> TrainedModel(None, config, [{"step": 300, "seconds": 90.0}]).describe()
        'U-Net: 300 steps of 32 (1.5 min of training, 107 images/s); synthetic data; trained in this run'
        """
        run, seconds = self.run, self.training_seconds
        device = f" on {run['device']}" if run.get("device") else ""
        speed = f", {self.config.steps * self.config.batch_size / seconds:.0f} images/s" if seconds else ""
        where = {"trained": "trained in this run",
                 "cache": f"loaded from the cache (trained {run.get('finished', 'in an earlier run')})"}.get(self.origin)
        if where is None:
            where = f"imported from the bundle {self.bundle} (trained {run.get('finished', '?')})"
        data = run.get("data_label") or f"{self.config.data} data"
        return (f"{self.name}: {self.config.steps} steps of {self.config.batch_size} ({seconds / 60:.1f} min of "
                f"training{speed}{device}); {data}; {where}")

    def scale(self) -> str:
        """:meth:`describe` short enough for a caption: steps and batch, minutes, device, origin.

        Examples
        --------
        >>> config = TrainConfig(model="unet", data="synthetic", steps=300, batch_size=32)
        >>> TrainedModel(None, config, [{"step": 300, "seconds": 90.0}]).scale()
        'U-Net: 300 steps of 32, 1.5 min, trained in this run'
        """
        device = self.device
        where = {"trained": "trained in this run", "cache": "from the cache"}.get(
            self.origin, f"imported from {self.bundle}")
        return (f"{self.name}: {self.config.steps} steps of {self.config.batch_size}, "
                f"{self.training_seconds / 60:.1f} min{f' on {device}' if device else ''}, {where}")

    @property
    def device(self) -> str:
        """The device it trained on, as its run record names it ("the CPU (2 cores, no GPU)"); "" if unknown."""
        # run.json names the device as describe_device does, "TensorFlow X on the CPU (...)".
        return self.run.get("device", "").partition(" on ")[2]

    @property
    def training_seconds(self) -> float:
        """The wall time of its training, from its history."""
        return sum(row.get("seconds", 0.0) for row in self.history)

    @property
    def bundle(self) -> str:
        """The bundle it was imported from (``origin.json``), "?" if none is recorded."""
        return (read_record(self.path / ORIGIN_FILE) if self.path else {}).get("bundle", "?")

    @property
    def name(self) -> str:
        return self.label or {"unet": "U-Net", "vaegan": "VAE-GAN"}.get(self.config.model, self.config.model)

    def predict(self, images, masks, batch_size: int = 64) -> np.ndarray:
        """The network's raw output for images (N, H, W, 3) in [0, 1] and masks (N, H, W, 1)."""
        images = np.asarray(images, np.float32)
        masks = np.asarray(masks, np.float32)
        return self.model.predict([images * (1.0 - masks), masks], batch_size=batch_size, verbose=0)

    def inpaint(self, images, masks, batch_size: int = 64) -> np.ndarray:
        """Fill the holes: known pixels kept, hole pixels predicted. float32 in [0, 1]."""
        images = np.asarray(images, np.float32)
        masks = np.asarray(masks, np.float32)
        return images * (1.0 - masks) + self.predict(images, masks, batch_size) * masks

    def sample(self, images, masks, k: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``k`` fills of each image, composited: (k, N, H, W, 3) float32 in [0, 1].

        A VAE-GAN draws each from its own latent code; a deterministic model
        (the U-Net) repeats its one fill, so its diversity is exactly 0.
        """
        images = np.asarray(images, np.float32)
        masks = np.asarray(masks, np.float32)
        if hasattr(self.model, "sample_fills"):
            fills = self.model.sample_fills(images * (1.0 - masks), masks, k, seed=seed, batch_size=batch_size,
                                            temperature=self.temperature)
            return images * (1.0 - masks) + fills * masks
        return np.repeat(self.inpaint(images, masks, batch_size)[None], k, axis=0)


def build_model(config: TrainConfig) -> keras.Model:
    """Build and compile the network ``config`` describes, in the current strategy's scope."""
    build = builder(config.model)
    _check_options(build, config.model_options)
    model = build(image_size=config.image_size, **config.model_options)
    if config.model == "unet":
        rate = config.learning_rate
        if config.schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=config.steps)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=config.loss, jit_compile=has_accelerator())
    else:  # the VAE-GAN makes its own three optimizers
        model.compile(learning_rate=config.learning_rate, jit_compile=has_accelerator(),
                      decay_steps=config.steps if config.schedule == "cosine" else None)
    return model


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False, verbose="auto",
          strategy: tf.distribute.Strategy | None = None) -> TrainedModel:
    """Train a model and save it, with its config and history, into ``out_dir``.

    Parameters
    ----------
    config : TrainConfig
    out_dir : path
        Receives ``model.keras``, ``config.json``, ``history.json``; holds the
        checkpoint (``backup/``) while training runs, and a lock that keeps a
        second process from training into the same folder.
    resume : bool
        Continue an interrupted run in ``out_dir`` from its last checkpoint. The
        config must make the same model (the same :meth:`~inpaintlib.config.TrainConfig.cache_key`);
        the run keeps its own checkpoint interval.
    verbose : "auto", 0, 1 or 2
        Keras's progress display: 1 a progress bar, 2 one line per checkpoint.
    strategy : tf.distribute.Strategy, optional
        The devices to train on; by default :func:`.pick_strategy`'s choice.
        ``config.batch_size`` is the global batch, split evenly over the replicas.

    Returns
    -------
    TrainedModel
    """
    config.validate()
    out = Path(out_dir)
    # Picked first: splitting the CPU into devices (cpu:N) must come before any TensorFlow work.
    strategy = pick_strategy() if strategy is None else strategy
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"batch-size {config.batch_size} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} devices: use a multiple of {strategy.num_replicas_in_sync}")
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(out / LOCK_FILE, wait=False) as lock:
        if (out / MODEL_FILE).exists():
            raise ConfigError(f"{out} already holds a trained model: choose another --out, or delete it to train again")
        if (out / BACKUP_DIR).exists() and not resume:
            raise ConfigError(f"{out} holds an interrupted training run: pass --resume to continue it, or choose "
                              f"another --out")
        if resume and (out / CONFIG_FILE).exists():
            config = _same_run(TrainConfig.from_dict(json.loads((out / CONFIG_FILE).read_text())), config, out)
        trained = _train_locked(config, out, verbose, strategy)
        lock.unlink(missing_ok=True)  # before it is released: a finished folder holds the model, not a lock
        return trained


def _same_run(started: TrainConfig, config: TrainConfig, out: Path) -> TrainConfig:
    """The config to resume with: ``config`` if it makes the model the run in ``out`` started on
    (the same cache key), with the run's own checkpoint interval; else a ConfigError."""
    if started.cache_key() != config.cache_key():
        before, now = started.key_values(), config.key_values()
        changed = [name for name in now if before.get(name) != now[name]]
        what = ("the library's code or its TensorFlow and Keras versions changed" if changed == ["code"]
                else f"the run was started with different {', '.join(n for n in changed if n != 'code')}")
        raise ConfigError(f"cannot resume the run in {out}: {what}. Resume it with the same arguments and code, "
                          f"or choose another --out")
    return dataclasses.replace(config, checkpoint_every=started.checkpoint_every)


def _train_locked(config: TrainConfig, out: Path, verbose, strategy: tf.distribute.Strategy) -> TrainedModel:
    write_json_atomically(out / CONFIG_FILE, config.to_dict())

    keras.utils.set_random_seed(config.seed)
    # In memory when the decoded split fits the memory budget, else streamed from its files; one line says which.
    images = open_images(config.data, "train", config.image_size, limit=config.limit)
    validation = load_images(config.data, "validation", config.image_size, limit=config.validation_images)

    # Adversarial training is fragile in float16: the VAE-GAN stays in float32.
    with _mixed_precision_on_gpu(enabled=config.model == "unet"), strategy.scope():
        model = build_model(config)
        done = restore_checkpoint(model, out / BACKUP_DIR)
    epoch_steps = checkpoint_interval(config.steps, config.checkpoint_every)
    if done % epoch_steps or done > config.steps:
        raise ConfigError(f"the checkpoint in {out / BACKUP_DIR} is at step {done}, which is not a checkpoint of "
                          f"this run ({config.steps} steps, one checkpoint every {epoch_steps}): choose another --out")
    # The resumed run skips the batches the checkpoint has seen, so it continues the same stream.
    train_data = make_dataset(images, config.mask, config.batch_size, seed=config.seed, hole=config.hole, skip=done)
    validation_masks = eval_masks(config.mask, len(validation), config.image_size, hole=config.hole)
    # Scored in batches of at least 64: a small training batch would make the score many small calls.
    validation_data = make_dataset(validation, validation_masks, max(config.batch_size, 64), shuffle=False)

    # XLA for the training steps only: prediction later runs on batches of any size, each of
    # which XLA would compile anew, so it keeps build_model's setting.
    predicts_with_xla, model.jit_compile = model.jit_compile, trains_with_xla(config, strategy.num_replicas_in_sync)
    stop = StopOnNaN()
    # About a hundred points on the training curves, whatever the run's length.
    history = HistoryWriter(out / HISTORY_FILE, epoch_steps, config.batch_size, log_every=max(1, config.steps // 100))
    monitor = FillMonitor(out / FillMonitor.FILE, validation[:MONITORED_FACES] / 255.0,
                          validation_masks[:MONITORED_FACES], epoch_steps)
    callbacks = [stop, history, monitor, Checkpoint(out / BACKUP_DIR)]
    try:
        model.fit(
            train_data, initial_epoch=done // epoch_steps, epochs=config.steps // epoch_steps,
            steps_per_epoch=epoch_steps, validation_data=validation_data, callbacks=callbacks, verbose=verbose,
            shuffle=False,
        )
    except RuntimeError:
        if stop.diverged_at_step is None:
            raise
        # The diverged epoch never reached its checkpoint: the last one holds the last good state.
        good_step = restore_checkpoint(model, out / BACKUP_DIR)
        model.jit_compile = predicts_with_xla
        kept = out / "last-good"
        kept.mkdir(exist_ok=True)
        write_json_atomically(kept / CONFIG_FILE, config.to_dict())
        write_json_atomically(kept / HISTORY_FILE, history.rows)
        save_model_atomically(model, kept / MODEL_FILE)
        shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
        raise TrainingDiverged(
            f"the loss became NaN or infinite at step {stop.diverged_at_step}; training stopped and kept the "
            f"weights of step {good_step} in {kept}. Lower the learning rate (now {config.learning_rate})"
        ) from None
    model.jit_compile = predicts_with_xla
    if hasattr(model, "average_weights"):  # the VAE-GAN fills with the average of its last steps' weights
        model.average_weights()
    write_json_atomically(out / RUN_FILE, run_record(config, history.rows))
    save_model_atomically(model, out / MODEL_FILE)
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
    return TrainedModel(model, config, history.rows, out)


def run_record(config: TrainConfig, history: list[dict]) -> dict:
    """What a finished run writes beside its model: its cache key and everything the key hashes (a
    bundle's import checks them), the data's label, the device and the training's wall time."""
    import datetime

    from inpaintlib.data import parse_data_spec
    from inpaintlib.device import describe_device

    key_values = config.key_values()
    return {"key": key_of(key_values), "key_values": key_values,
            "data_label": parse_data_spec(config.data).label, "device": describe_device(),
            "seconds": round(sum(row.get("seconds", 0.0) for row in history), 2),
            "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def trains_with_xla(config: TrainConfig, replicas: int = 1) -> bool:
    """Whether ``train`` compiles the training step with XLA: always on a GPU or TPU, and on a
    CPU for runs long enough to repay the compilation (``XLA_MIN_STEPS_ON_CPU``), unless the CPU
    is split into several devices (XLA cannot reach one device's variables from another) or the
    model starts from a smooth fill (XLA runs its depthwise convolutions 7x slower on a CPU)."""
    if has_accelerator():
        return True
    smooth = config.all_model_options()["smooth_start"]  # both models have the option
    return replicas == 1 and config.steps >= XLA_MIN_STEPS_ON_CPU and not smooth


def load_trained(path: str | Path) -> TrainedModel:
    """Load a model directory written by :func:`.train`."""
    path = Path(path)
    config, history = read_model_folder(path)
    if config.model in MODEL_KINDS:
        builder(config.model)  # imports the model's module, which registers its classes (VAEGAN) with Keras
    try:
        model = keras.saving.load_model(path / MODEL_FILE)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load {path / MODEL_FILE} ({error}): train the model again") from None
    return TrainedModel(model, config, history, path)


def train_or_load(config: TrainConfig, cache_dir: str | Path | None = None, verbose="auto") -> TrainedModel:
    """The model ``config`` describes: from the cache if it was trained before, else trained now and cached.

    An interrupted training run in the cache is resumed from its last checkpoint.
    Where another process is training the same model now (two chapters run at
    once), this one waits for it and loads its model.
    """
    final = cache_folder(config.validate(), cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    trained_now = False
    with _exclusive_lock(final.with_name(f".{final.name}.lock"), wait=True):
        if not (final / MODEL_FILE).is_file():
            partial = final.with_name(final.name + ".partial")
            if not (partial / MODEL_FILE).is_file():
                train(config, partial, resume=(partial / CONFIG_FILE).exists(), verbose=verbose)
            # A directory rename is atomic: the cache holds whole models or none.
            os.replace(partial, final)
            trained_now = True
    # Load the folder the key named when this call began: the code (and so the key) may change meanwhile.
    return _from_cache(final, "trained" if trained_now else "cache")


def cache_folder(config: TrainConfig, cache_dir: str | Path | None = None) -> Path:
    """Where the model cache keeps (or will keep) the model ``config`` describes."""
    return cache_root(cache_dir) / "models" / f"{config.model}-{config.cache_key()}"


def load_cached(config: TrainConfig, cache_dir: str | Path | None = None) -> TrainedModel | None:
    """The model ``config`` describes if the cache holds it (trained or imported), else None; never trains."""
    final = cache_folder(config.validate(), cache_dir)
    return _from_cache(final) if (final / MODEL_FILE).is_file() else None


def _from_cache(final: Path, origin: str = "cache") -> TrainedModel:
    """A cache folder's model, with where it came from: imported from a bundle, else ``origin``."""
    model = load_trained(final)
    model.origin = "imported" if (final / ORIGIN_FILE).is_file() else origin
    return model


def full_recipe_of(model: TrainedModel, cache_dir: str | Path | None = None) -> TrainedModel | None:
    """The same model at the full profile's scale (:func:`.recipe_config`), when the cache holds it
    (an imported bundle, say) and ``model`` is not already it; None otherwise. Never trains.

    A chapter run at a small scale scores it beside its own model, so a reader sees what the
    full recipe reaches on the same faces.
    """
    from inpaintlib.profiles import ACCELERATOR_PROFILE, recipe_config

    full = recipe_config(model.config, ACCELERATOR_PROFILE)
    if full.cache_key() == model.config.cache_key():
        return None
    found = load_cached(full, cache_dir)
    if found is not None:
        found.label, found.temperature = f"{model.name}, full recipe", model.temperature
    return found


@contextlib.contextmanager
def _exclusive_lock(path: Path, wait: bool):
    """Hold :func:`~inpaintlib.files.hold_lock`'s lock on ``path``, or raise ConfigError where ``wait`` is
    False and another process holds it. Where the system has no lock (not POSIX), go on without."""
    try:
        handle = hold_lock(path)
    except ImportError:
        handle = None
    except BlockingIOError:
        if not wait:
            raise ConfigError(f"another process is training into {path.parent} now: wait for it to finish, "
                              f"or choose another --out") from None
        print(f"Waiting for another process that is training the same model ({path.name})", file=sys.stderr)
        handle = hold_lock(path, wait=True)
    with handle or contextlib.nullcontext():
        yield path


def checkpoint_interval(steps: int, every: int) -> int:
    """Steps per Keras epoch: the divisor of ``steps`` closest to ``every`` (on a log scale),
    so that training runs exactly ``steps`` steps."""
    divisors = [d for d in range(1, math.isqrt(steps) + 1) if steps % d == 0]
    divisors += [steps // d for d in divisors]
    return min(divisors, key=lambda d: (abs(math.log(d / every)), -d))


def _check_options(builder, options: dict) -> None:
    valid = [p for p in inspect.signature(builder).parameters if p != "image_size"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown model option(s) {', '.join(unknown)}: use {', '.join(valid)}")


@contextlib.contextmanager
def _mixed_precision_on_gpu(enabled: bool = True):
    """Build under mixed_float16 on a GPU (faster, half the memory), float32 elsewhere."""
    previous = keras.mixed_precision.global_policy()
    if enabled and tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
