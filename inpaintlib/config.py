"""Training configs and model folders, read and checked without TensorFlow.

A :class:`.TrainConfig` names everything that shapes a trained model; a model
folder holds ``model.keras``, the ``config.json`` that made it and its
``history.json``. Both are checked here, before anything imports TensorFlow,
so that a mistake on the command line is one line and a fraction of a
second, not TensorFlow's start-up followed by an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inpaintlib.errors import ConfigError
from inpaintlib.masks import check_hole, check_mask_kind

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
#: Written when training ends, with the cache key and what it hashes, the data, the device and the wall time.
RUN_FILE = "run.json"
#: Written into a model imported from a bundle (see inpaintlib.bundles), naming the bundle and its record of the model.
ORIGIN_FILE = "origin.json"
MODEL_KINDS = ("unet", "vaegan")
#: Adam's learning rate when the config names none. The VAE-GAN's is below the U-Net's, as a GAN's
#: usually is, but above DCGAN's 2e-4: at the quick profile's 600 steps 2e-4 left its most likely
#: fill far from converged, and 1e-3 diverged (bench/vaegan_designs.py, validation faces).
DEFAULT_LEARNING_RATES = {"unet": 1e-3, "vaegan": 5e-4}
#: How far apart a VAE-GAN's draws spread when nothing says otherwise. The prior's standard deviation
#: is scaled by it (1: the prior as trained). Chosen on validation faces over three seeds
#: (bench/vaegan_designs.py): at 1 a draw's hole PSNR fell 1.8 to 3.4 dB below the most likely fill's,
#: as the perception-distortion trade predicts of a sampler, and at 0.5 about half as far, the draws
#: still clearly different and about as face-like.
DEFAULT_TEMPERATURE = 0.5
#: The U-Net's training losses by their Keras names, computed over its whole output, which is
#: the hole alone when the U-Net keeps the known pixels (its ``keep_known`` option, the
#: default). ``mae`` (L1) is the default, ``mse`` the original recipe's. The VAE-GAN's losses
#: are its model options.
UNET_LOSSES = ("mse", "mae")
#: How the learning rate moves over the run, fixed or along a cosine down to zero at the last step.
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a trained model.

    ``checkpoint_every`` only sets how often training saves its state and logs
    its history, so it is left out of the cache key. ``mask`` is a kind or a
    ``mixed`` spec (:mod:`inpaintlib.masks`); ``loss`` applies to the U-Net
    (None: ``"mae"``, L1); ``schedule`` to every optimizer of either model.
    """

    model: str = "unet"
    data: str = "auto"
    image_size: int = 64
    mask: str = "mixed"
    hole: float = 0.5
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float | None = None  # None: the model's default, DEFAULT_LEARNING_RATES
    loss: str | None = None
    schedule: str = "constant"
    seed: int = 0
    limit: int | None = None
    validation_images: int = 256
    model_options: dict = field(default_factory=dict)
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.learning_rate is None and self.model in DEFAULT_LEARNING_RATES:
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATES[self.model])
        if self.loss is None and self.model == "unet":
            object.__setattr__(self, "loss", "mae")

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
        refine = self.model_options.get("smooth_refine_steps", 0)
        if not isinstance(refine, (int, np.integer)) or isinstance(refine, bool) or refine < 0:
            raise ConfigError(f"smooth-refine-steps must be 0 or a positive integer, not {refine!r}")
        max_std = self.model_options.get("max_std")
        if max_std is not None and (not isinstance(max_std, (int, float)) or isinstance(max_std, bool) or max_std <= 0):
            raise ConfigError(f"max-std must be positive, or None for no bound, not {max_std!r}")
        if self.limit is not None and (not isinstance(self.limit, (int, np.integer)) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer or None (the whole train split), not {self.limit!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ConfigError(f"learning-rate must be positive, not {self.learning_rate!r}")
        if self.model == "unet" and self.loss not in UNET_LOSSES:
            raise ConfigError(f"unknown U-Net loss {self.loss!r}: use one of {', '.join(UNET_LOSSES)}")
        if self.model == "vaegan" and self.loss is not None:
            raise ConfigError(f"the VAE-GAN's losses are set by its weights (kl_weight, pixel_weight, ...), "
                              f"not loss={self.loss!r}: leave loss unset")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown learning-rate schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def key_values(self) -> dict:
        """What the cache key hashes: the fields that shape the model, spelled canonically, and the code."""
        from inpaintlib.data import data_identity
        from inpaintlib.provenance import code_digest

        values = self.to_dict()
        values.pop("checkpoint_every")
        values["data"] = data_identity(self.data)  # what the data holds, not where it lies
        # Options left at their defaults and the same options spelled out make the same model.
        values["model_options"] = self.all_model_options()
        values["code"] = code_digest()
        return values

    def all_model_options(self) -> dict:
        """``model_options`` with every option the builder takes that they leave out, at its default."""
        defaults = {name: parameter.default for name, parameter in inspect.signature(builder(self.model)).parameters.items()
                    if name != "image_size"}
        return {**defaults, **self.model_options}

    def cache_key(self) -> str:
        """A short hash of what shapes the model: its fields with the data named by what it holds
        (:func:`inpaintlib.data.celeba.data_identity`: ``auto`` resolved, the same CelebA anywhere alike),
        options at their defaults spelled out, the package's code, and the TensorFlow and Keras
        versions (:func:`inpaintlib.provenance.code_digest`)."""
        return key_of(self.key_values())


def key_of(key_values: dict) -> str:
    """The cache key of :meth:`.TrainConfig.key_values`: a bundle's import checks a manifest's key with it."""
    return hashlib.sha256(json.dumps(key_values, sort_keys=True).encode()).hexdigest()[:16]


def read_record(path: str | Path) -> dict:
    """A model folder's optional JSON record (``run.json``, ``origin.json``); {} where absent or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def read_model_folder(path: str | Path) -> tuple[TrainConfig, list[dict]]:
    """The config and history of a model folder written by training, checked without loading the model.

    Raises :class:`.ConfigError` naming the problem and the fix for a folder that
    holds no model, or a damaged one.
    """
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
    return config, history


def builder(kind: str):
    """The function that builds a model kind: inpaintlib.unet.build_unet, inpaintlib.vaegan.build_vaegan."""
    import importlib

    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {kind!r}: use one of {', '.join(MODEL_KINDS)}")
    return getattr(importlib.import_module(f"inpaintlib.{kind}"), f"build_{kind}")
