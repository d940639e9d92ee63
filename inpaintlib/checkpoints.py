"""What a training run saves as it goes, and reads back: checkpoints, the history, the model.

:class:`Checkpoint` writes the weights and the optimizers' state (one file, replaced atomically)
at the end of every Keras epoch, and :func:`restore_checkpoint` puts them back, step count
included; :class:`StopOnNaN` ends a diverged run before its epoch's checkpoint, so the last one
is the last good state; :class:`HistoryWriter` keeps ``history.json`` whole across a resume, and
:class:`FillMonitor` keeps ``monitor.npz``: the fills of a few fixed faces at every checkpoint, so
training is something to watch as well as a curve (keras-io's ``GANMonitor`` does the same).
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from inpaintlib.errors import ConfigError
from inpaintlib.files import atomic_write


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's ``TerminateOnNaN``, raising at the first non-finite loss, and noting the step.

    Raising (``raise_error=True``) ends the epoch at once, before its
    :class:`.Checkpoint`: the last checkpoint keeps the last good weights and
    optimizer state, which :func:`.train` then restores and keeps.
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self.diverged_at_step = None
        self._first_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._first_step = epoch * self.params["steps"]

    def on_train_batch_end(self, batch, logs=None):
        try:
            super().on_train_batch_end(batch, logs)
        except RuntimeError:
            self.diverged_at_step = self._first_step + batch + 1
            raise


class Checkpoint(keras.callbacks.Callback):
    """Save the weights and the optimizers' state at the end of every epoch, into one file
    replaced atomically: a kill at any moment leaves the last checkpoint whole.

    The step count travels inside the file, as the optimizers' ``iterations``, so
    the weights and the step they belong to can never disagree;
    :func:`.restore_checkpoint` reads both back.
    """

    FILE = "latest.weights.h5"

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)

    def on_train_begin(self, logs=None):
        if not (self.folder / self.FILE).is_file():  # the state to go back to if the first epoch diverges
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()

    def save(self):
        """Write the model's state now."""
        self.folder.mkdir(parents=True, exist_ok=True)
        # Keras writes weights only to a name ending in .weights.h5: a hidden one beside the file.
        temporary = self.folder / f".{os.getpid()}-{self.FILE}"
        try:
            self.model.save_weights(temporary)
            os.replace(temporary, self.folder / self.FILE)
        finally:
            temporary.unlink(missing_ok=True)


def restore_checkpoint(model: keras.Model, folder: Path) -> int:
    """Load the last :class:`.Checkpoint` in ``folder`` into ``model`` (built and compiled, in its
    strategy's scope); the number of steps it had trained, 0 where there is none.

    Builds the model's optimizers either way: their state must exist to be loaded, and to be
    in the first checkpoint, which a run that diverges in its first epoch goes back to.
    """
    optimizers = list(getattr(model, "optimizers", {}).values()) or [model.optimizer]
    for optimizer in optimizers:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    path = Path(folder) / Checkpoint.FILE
    if not path.is_file():
        return 0
    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"the checkpoint {path} cannot be loaded ({error}): delete {path.parent.parent} "
                          f"and train again") from None
    return int(max(int(optimizer.iterations.numpy()) for optimizer in optimizers))


class HistoryWriter(keras.callbacks.Callback):
    """Write one row per checkpoint interval to a JSON file, atomically, resuming cleanly.

    Each row holds the interval's logs (training means and validation scores) and, under
    ``"log"``, the training losses every ``log_every`` steps: the means over those steps, so a
    short run still draws a curve worth reading. On resume, fit starts at the epoch after the
    last checkpoint: rows past it (written after that checkpoint, before the kill) are dropped,
    so the history has no gap and no repeat.
    """

    def __init__(self, path: Path, epoch_steps: int, batch_size: int, log_every: int | None = None):
        super().__init__()
        self.path, self.epoch_steps, self.batch_size = path, epoch_steps, batch_size
        self.log_every = log_every or epoch_steps
        self.rows = json.loads(path.read_text()) if path.exists() else []
        self._started = None
        self._log, self._last = [], (0, {})

    def on_epoch_begin(self, epoch, logs=None):
        self.rows = [row for row in self.rows if row["epoch"] <= epoch]
        self._started = time.perf_counter()
        self._epoch, self._log, self._last = epoch, [], (0, {})

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if done % self.log_every and done != self.epoch_steps:
            return
        # Keras's logs are means since the epoch began: the mean over the last steps is their difference.
        means = {k: float(v) for k, v in (logs or {}).items()}
        before, previous = self._last
        point = {"step": self._epoch * self.epoch_steps + done}
        for name, mean in means.items():
            value = (done * mean - before * previous.get(name, 0.0)) / (done - before)
            point[name] = value if math.isfinite(value) else None
        self._log.append(point)
        self._last = (done, means)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        row = {"epoch": epoch + 1, "step": (epoch + 1) * self.epoch_steps, "seconds": round(seconds, 3),
               "images_per_second": round(self.epoch_steps * self.batch_size / seconds, 1)}
        row.update({k: (float(v) if math.isfinite(float(v)) else None) for k, v in (logs or {}).items()})
        row["log"] = self._log
        self.rows.append(row)
        write_json_atomically(self.path, self.rows)


class FillMonitor(keras.callbacks.Callback):
    """At the end of every epoch, fill fixed masked faces and add the fills to an ``.npz`` file.

    The file holds ``images`` and ``masks`` (the faces and their holes), ``steps`` (C,) and
    ``fills`` (C, K, H, W, 3), uint8, composited; it is replaced atomically, and on resume the
    fills past the last checkpoint are dropped, as :class:`HistoryWriter` drops its rows.
    """

    FILE = "monitor.npz"

    def __init__(self, path: Path, images: np.ndarray, masks: np.ndarray, epoch_steps: int):
        super().__init__()
        self.path, self.epoch_steps = Path(path), epoch_steps
        self.images, self.masks = np.asarray(images, np.float32), np.asarray(masks, np.float32)
        self.steps, self.fills = [], []
        if self.path.is_file():
            with np.load(self.path) as saved:
                self.steps, self.fills = list(saved["steps"]), list(saved["fills"])

    def on_epoch_begin(self, epoch, logs=None):
        kept = [i for i, step in enumerate(self.steps) if step <= epoch * self.epoch_steps]
        self.steps, self.fills = [self.steps[i] for i in kept], [self.fills[i] for i in kept]

    def on_epoch_end(self, epoch, logs=None):
        known = self.images * (1.0 - self.masks)
        fill = np.asarray(self.model([known, self.masks], training=False), np.float32)
        self.steps.append((epoch + 1) * self.epoch_steps)
        self.fills.append(_to_uint8(known + fill * self.masks))
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=_to_uint8(self.images), masks=self.masks.astype(np.uint8),
                            steps=np.asarray(self.steps), fills=np.stack(self.fills))
        with atomic_write(self.path) as f:
            f.write(buffer.getvalue())


def read_monitor(folder: Path) -> dict | None:
    """The :class:`FillMonitor` file of a model folder as a dict of arrays, or None if it has none."""
    path = Path(folder) / FillMonitor.FILE
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def _to_uint8(images) -> np.ndarray:
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_json_atomically(path: Path, value) -> None:
    """Write JSON so that ``path`` holds the old content or the new, never a part."""
    with atomic_write(path) as f:
        f.write(json.dumps(value, indent=1).encode())


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """Save a Keras model so that ``path`` holds the old model or the new, never a part."""
    # Not atomic_write: Keras saves only to a path whose name ends in .keras, not to a file object.
    temporary = path.with_name(f".{path.stem}-{os.getpid()}.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
