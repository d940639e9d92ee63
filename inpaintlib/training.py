"""Training that survives interruption, and the trained-model cache.

``train`` fits a model on a tf.data pipeline for a number of *steps* (the
original recipe's "4000 epochs of one random batch of 128" is 4000 steps of
batch 128). Keras epochs are only the checkpoint interval here: at the end of
each one, ``keras.callbacks.BackupAndRestore`` saves weights and optimizer
state, and the history is written to ``history.json``. A run killed at any
moment resumes from its last checkpoint and ends at the same step count.

``train_or_load`` keys a finished model by everything that shaped it, so a
chapter re-run, a book rebuild or a classroom that changes one parameter
trains only what changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from inpaintlib.device import has_accelerator
from inpaintlib.data import cache_root, load_images, make_dataset, open_images, resolve_data_spec
from inpaintlib.errors import ConfigError, InpaintError
from inpaintlib.files import atomic_write
from inpaintlib.masks import check_hole, check_mask_kind, eval_masks

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
BACKUP_DIR = "backup"
MODEL_KINDS = ("unet", "vaegan")
#: Which devices to train on: auto (the default), one, gpu:N or cpu:N; see pick_strategy.
DEVICES_ENV = "INPAINTLIB_DEVICES"
#: Adam's learning rate when the config names none: GANs want a smaller step.
DEFAULT_LEARNING_RATES = {"unet": 1e-3, "vaegan": 2e-4}
#: On a CPU, XLA takes 5-15 s to compile a training step, then runs each step 1.2-1.5x faster
#: (bench/train.py, both models): it pays from about a hundred steps on.
XLA_MIN_STEPS_ON_CPU = 200


class TrainingDiverged(InpaintError):
    """The loss became NaN or infinite; the last good weights were kept."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a trained model.

    ``checkpoint_every`` only sets how often training saves its state and logs
    its history, so it is left out of the cache key.
    """

    model: str = "unet"
    data: str = "auto"
    image_size: int = 64
    mask: str = "center"
    hole: float = 0.5
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float | None = None  # None: the model's default, DEFAULT_LEARNING_RATES
    seed: int = 0
    limit: int | None = None
    validation_images: int = 256
    model_options: dict = field(default_factory=dict)
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.learning_rate is None and self.model in DEFAULT_LEARNING_RATES:
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATES[self.model])

    def validate(self) -> TrainConfig:
        """Return self if every field is usable, else raise ConfigError naming the field."""
        if self.model not in MODEL_KINDS:
            raise ConfigError(f"unknown model {self.model!r}: use one of {', '.join(MODEL_KINDS)}")
        check_mask_kind(self.mask)
        check_hole(self.hole)
        for name in ("image_size", "steps", "batch_size", "checkpoint_every", "validation_images"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, not {value!r}")
        if self.limit is not None and (not isinstance(self.limit, (int, np.integer)) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer or None (the whole train split), not {self.limit!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ConfigError(f"learning-rate must be positive, not {self.learning_rate!r}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def cache_key(self) -> str:
        """A short hash of what shapes the model, with the data spec resolved (``auto`` -> its source)."""
        values = self.to_dict()
        values.pop("checkpoint_every")
        values["data"] = resolve_data_spec(self.data)
        # Options left at their defaults and the same options spelled out make the same model.
        defaults = {name: parameter.default for name, parameter in inspect.signature(_builder(self.model)).parameters.items()
                    if name != "image_size"}
        values["model_options"] = {**defaults, **self.model_options}
        values["code"] = _model_code_digest(self.model)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainedModel:
    """A trained network with the config that made it and its history; inpaints like a baseline."""

    model: keras.Model
    config: TrainConfig
    history: list[dict]
    path: Path | None = None

    @property
    def name(self) -> str:
        return {"unet": "U-Net", "vaegan": "VAE-GAN"}.get(self.config.model, self.config.model)

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
            fills = self.model.sample_fills(images * (1.0 - masks), masks, k, seed=seed, batch_size=batch_size)
            return images * (1.0 - masks) + fills * masks
        return np.repeat(self.inpaint(images, masks, batch_size)[None], k, axis=0)


#: The strategies pick_strategy made, by device spec: one per process, because a second
#: MirroredStrategy over the same devices reuses the first one's collective keys, and the next
#: model, whose gradients have other shapes, fails in its first step.
_STRATEGIES: dict[str, tf.distribute.Strategy] = {}


def pick_strategy(devices: str | None = None) -> tf.distribute.Strategy:
    """The devices to train on, as a tf.distribute strategy.

    Parameters
    ----------
    devices : str, optional
        ``"auto"`` (the default): a TPU if one is attached (Colab's TPU runtime),
        all GPUs if there are several, else the default strategy (one device).
        ``"one"``: the default strategy even where there are several devices.
        ``"gpu:N"`` or ``"cpu:N"``: a MirroredStrategy over the first N GPUs, or
        over N logical devices the CPU is split into (no faster: a way to test
        several-device training on a laptop; it must be chosen before TensorFlow
        starts computing). None reads ``$INPAINTLIB_DEVICES``, then ``"auto"``.

    Under several devices ``batch_size`` stays the *global* batch: each of N
    replicas gets ``batch_size / N`` examples of every step. The same spec gives
    the same strategy throughout a process.
    """
    spec = (os.environ.get(DEVICES_ENV, "") if devices is None else str(devices)).strip().lower() or "auto"
    if spec in _STRATEGIES:
        return _STRATEGIES[spec]
    if spec == "auto":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return _STRATEGIES.setdefault(spec, tf.distribute.TPUStrategy(resolver))
        except (ValueError, RuntimeError, tf.errors.NotFoundError, tf.errors.UnavailableError):
            pass
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return _STRATEGIES.setdefault(spec, tf.distribute.MirroredStrategy())
        return tf.distribute.get_strategy()
    if spec == "one":
        return tf.distribute.get_strategy()
    kind, _, count = spec.partition(":")
    if kind not in ("cpu", "gpu") or not count.isdigit() or int(count) < 1:
        raise ConfigError(f"unknown devices {spec!r} (${DEVICES_ENV}): use auto, one, gpu:N or cpu:N")
    n = int(count)
    if kind == "cpu":
        _split_cpu(n)
    found = tf.config.list_logical_devices(kind.upper())
    if len(found) < n:
        raise ConfigError(f"devices {spec!r}: TensorFlow sees only {len(found)} {kind.upper()} device(s); "
                          f"ask for at most {len(found)}, or use auto")
    return _STRATEGIES.setdefault(spec, tf.distribute.MirroredStrategy([device.name for device in found[:n]]))


def _split_cpu(n: int) -> None:
    """Split the CPU into ``n`` logical devices (at least), which TensorFlow allows only before it starts."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) >= n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise ConfigError(
            f"cannot split the CPU into {n} devices once TensorFlow has started: set {DEVICES_ENV}=cpu:{n} "
            f"in the environment, or call pick_strategy('cpu:{n}') before any other TensorFlow work"
        ) from None


def build_model(config: TrainConfig) -> keras.Model:
    """Build and compile the network ``config`` describes, in the current strategy's scope."""
    if config.model == "unet":
        from inpaintlib.unet import build_unet

        _check_options(build_unet, config.model_options)
        model = build_unet(image_size=config.image_size, **config.model_options)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse", jit_compile=has_accelerator())
        return model
    if config.model == "vaegan":
        from inpaintlib.vaegan import build_vaegan

        _check_options(build_vaegan, config.model_options)
        model = build_vaegan(image_size=config.image_size, **config.model_options)
        model.compile(learning_rate=config.learning_rate, jit_compile=has_accelerator())
        return model
    raise ConfigError(f"unknown model {config.model!r}: use one of {', '.join(MODEL_KINDS)}")


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False, verbose="auto",
          strategy: tf.distribute.Strategy | None = None) -> TrainedModel:
    """Train a model and save it, with its config and history, into ``out_dir``.

    Parameters
    ----------
    config : TrainConfig
    out_dir : path
        Receives ``model.keras``, ``config.json``, ``history.json``; holds the
        checkpoint (``backup/``) while training runs.
    resume : bool
        Continue an interrupted run in ``out_dir`` from its last checkpoint.
    verbose : "auto", 0, 1 or 2
        Keras's progress display: 1 a progress bar, 2 one line per checkpoint.
    strategy : tf.distribute.Strategy, optional
        The devices to train on; by default :func:`pick_strategy`'s choice.
        ``config.batch_size`` is the global batch, split evenly over the replicas.

    Returns
    -------
    TrainedModel
    """
    config.validate()
    out = Path(out_dir)
    if (out / MODEL_FILE).exists():
        raise ConfigError(f"{out} already holds a trained model: choose another --out, or delete it to train again")
    if (out / BACKUP_DIR).exists() and not resume:
        raise ConfigError(f"{out} holds an interrupted training run: pass --resume to continue it, or choose another --out")
    if resume and (out / CONFIG_FILE).exists():
        started = TrainConfig.from_dict(json.loads((out / CONFIG_FILE).read_text()))
        changed = [k for k, v in config.to_dict().items() if started.to_dict().get(k) != v]
        if changed:
            raise ConfigError(
                f"the run in {out} was started with different {', '.join(changed)}: resume it with the same "
                f"arguments, or choose another --out"
            )
    # Picked first: splitting the CPU into devices (cpu:N) must come before any TensorFlow work.
    strategy = pick_strategy() if strategy is None else strategy
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"batch-size {config.batch_size} does not split evenly over "
                          f"{strategy.num_replicas_in_sync} devices: use a multiple of {strategy.num_replicas_in_sync}")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / CONFIG_FILE, config.to_dict())

    keras.utils.set_random_seed(config.seed)
    # In memory when the decoded split fits the memory budget, else streamed from its files; one line says which.
    images = open_images(config.data, "train", config.image_size, limit=config.limit)
    validation = load_images(config.data, "validation", config.image_size, limit=config.validation_images)
    train_data = make_dataset(images, config.mask, config.batch_size, seed=config.seed, hole=config.hole)
    validation_masks = eval_masks(config.mask, len(validation), config.image_size, hole=config.hole)
    validation_data = make_dataset(validation, validation_masks, config.batch_size, shuffle=False)

    # Adversarial training is fragile in float16: the VAE-GAN stays in float32.
    with _mixed_precision_on_gpu(enabled=config.model == "unet"), strategy.scope():
        model = build_model(config)

    # XLA for the training steps only: prediction later runs on batches of any size, each of
    # which XLA would compile anew, so it keeps build_model's setting.
    predicts_with_xla, model.jit_compile = model.jit_compile, trains_with_xla(config, strategy.num_replicas_in_sync)
    epoch_steps = checkpoint_interval(config.steps, config.checkpoint_every)
    guard = NaNGuard()
    history = HistoryWriter(out / HISTORY_FILE, epoch_steps, config.batch_size)
    # The guard runs first so that a diverged epoch's weights are replaced by the last
    # good ones before BackupAndRestore saves them.
    callbacks = [guard, history, keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR), double_checkpoint=True)]
    model.fit(
        train_data, epochs=config.steps // epoch_steps, steps_per_epoch=epoch_steps,
        validation_data=validation_data, callbacks=callbacks, verbose=verbose, shuffle=False,
    )
    model.jit_compile = predicts_with_xla
    if guard.diverged_at_step is not None:
        kept = out / "last-good"
        kept.mkdir(exist_ok=True)
        write_json_atomically(kept / CONFIG_FILE, config.to_dict())
        write_json_atomically(kept / HISTORY_FILE, history.rows)
        save_model_atomically(model, kept / MODEL_FILE)
        shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
        raise TrainingDiverged(
            f"the loss became NaN or infinite at step {guard.diverged_at_step}; training stopped and kept the "
            f"weights of step {guard.good_step} in {kept}. Lower the learning rate (now {config.learning_rate})"
        )
    if hasattr(model, "average_weights"):  # the VAE-GAN fills with the average of its last steps' weights
        model.average_weights()
    save_model_atomically(model, out / MODEL_FILE)
    return TrainedModel(model, config, history.rows, out)


def trains_with_xla(config: TrainConfig, replicas: int = 1) -> bool:
    """Whether ``train`` compiles the training step with XLA: always on a GPU or TPU, and on a
    CPU for runs long enough to repay the compilation (``XLA_MIN_STEPS_ON_CPU``), unless the CPU
    is split into several devices (XLA cannot reach one device's variables from another)."""
    if has_accelerator():
        return True
    return replicas == 1 and config.steps >= XLA_MIN_STEPS_ON_CPU


def load_trained(path: str | Path) -> TrainedModel:
    """Load a model directory written by :func:`train`."""
    path = Path(path)
    if not (path / MODEL_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise ConfigError(
            f"{path} holds no trained model ({MODEL_FILE} and {CONFIG_FILE}): train one with "
            f"`inpaint train`, or name a baseline"
        )
    try:
        config = TrainConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
        history = json.loads((path / HISTORY_FILE).read_text()) if (path / HISTORY_FILE).exists() else []
    except (json.JSONDecodeError, TypeError) as error:
        raise ConfigError(f"{path} holds a damaged model ({CONFIG_FILE} or {HISTORY_FILE} is not valid: {error}): "
                          f"train it again") from None
    if config.model in MODEL_KINDS:
        _builder(config.model)  # imports the model's module, which registers its classes (VAEGAN) with Keras
    try:
        model = keras.saving.load_model(path / MODEL_FILE)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load {path / MODEL_FILE} ({error}): train the model again") from None
    return TrainedModel(model, config, history, path)


def train_or_load(config: TrainConfig, cache_dir: str | Path | None = None, verbose="auto") -> TrainedModel:
    """The model ``config`` describes: from the cache if it was trained before, else trained now and cached.

    An interrupted training run in the cache is resumed from its last checkpoint.
    """
    config.validate()
    final = cache_root(cache_dir) / "models" / f"{config.model}-{config.cache_key()}"
    if (final / MODEL_FILE).is_file():
        return load_trained(final)
    partial = final.with_name(final.name + ".partial")
    if not (partial / MODEL_FILE).is_file():
        train(config, partial, resume=(partial / CONFIG_FILE).exists(), verbose=verbose)
    # A directory rename is atomic: the cache holds whole models or none.
    os.replace(partial, final)
    return load_trained(final)


def checkpoint_interval(steps: int, every: int) -> int:
    """Steps per Keras epoch: the divisor of ``steps`` closest to ``every`` (on a log scale),
    so that training runs exactly ``steps`` steps."""
    divisors = [d for d in range(1, math.isqrt(steps) + 1) if steps % d == 0]
    divisors += [steps // d for d in divisors]
    return min(divisors, key=lambda d: (abs(math.log(d / every)), -d))


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss and put back the weights of the last good checkpoint."""

    def __init__(self):
        super().__init__()
        self.diverged_at_step = None
        self.good_step = 0
        self._good_weights = None
        self._step = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self._good_weights is None:
            self._good_weights = self.model.get_weights()
            self._step = epoch * self.params["steps"]
            self.good_step = self._step

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if any(not math.isfinite(float(v)) for v in (logs or {}).values()):
            self.diverged_at_step = self._step
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at_step is not None:
            self.model.set_weights(self._good_weights)
        else:
            self._good_weights = self.model.get_weights()
            self.good_step = self._step


class HistoryWriter(keras.callbacks.Callback):
    """Write one row per checkpoint interval to a JSON file, atomically, resuming cleanly.

    On resume, fit starts at the epoch after the last checkpoint: rows past it
    (written after that checkpoint, before the kill) are dropped, so the history
    has no gap and no repeat.
    """

    def __init__(self, path: Path, epoch_steps: int, batch_size: int):
        super().__init__()
        self.path, self.epoch_steps, self.batch_size = path, epoch_steps, batch_size
        self.rows = json.loads(path.read_text()) if path.exists() else []
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self.rows = [row for row in self.rows if row["epoch"] <= epoch]
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        row = {"epoch": epoch + 1, "step": (epoch + 1) * self.epoch_steps, "seconds": round(seconds, 3),
               "images_per_second": round(self.epoch_steps * self.batch_size / seconds, 1)}
        row.update({k: (float(v) if math.isfinite(float(v)) else None) for k, v in (logs or {}).items()})
        self.rows.append(row)
        write_json_atomically(self.path, self.rows)


def write_json_atomically(path: Path, value) -> None:
    """Write JSON so that ``path`` holds the old content or the new, never a part."""
    with atomic_write(path) as f:
        f.write(json.dumps(value, indent=1).encode())


def save_model_atomically(model: keras.Model, path: Path) -> None:
    # Not atomic_write: Keras saves only to a path whose name ends in .keras, not to a file object.
    temporary = path.with_name(f".{path.stem}-{os.getpid()}.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _builder(kind: str):
    """The function that builds a model kind: inpaintlib.unet.build_unet, inpaintlib.vaegan.build_vaegan."""
    import importlib

    return getattr(importlib.import_module(f"inpaintlib.{kind}"), f"build_{kind}")


def _model_code_digest(kind: str) -> str:
    """A hash of the code that builds and compiles a model: editing it (a classroom exercise)
    invalidates the cached models it made."""
    import importlib

    module = importlib.import_module(f"inpaintlib.{kind}")
    source = inspect.getsource(module) + inspect.getsource(build_model)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


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
