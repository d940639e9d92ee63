"""Benchmark what training buys per CPU minute: time to reach the classical methods' quality.

For each training setting (the seed's recipe and the changes it is compared with), train a
model as ``inpaintlib.training.train`` does (the same ``build_model``, pipeline and XLA choice) on
the quick profile's budget, and score it every ``--eval-every`` steps on fixed validation faces
(never the test split) under six conditions: centre squares, random boxes and free-form strokes
of a quarter and of half the image side. Reported per setting:

- ``curve``: training seconds (wall clock of the training steps alone: scoring is left out) and
  the hole PSNR of each condition at each scoring point;
- ``seconds_to_classical``: per condition, the training seconds at which the model first
  reached the best classical method's hole PSNR on those faces (``null``: not within the budget);
- ``seconds_to_seed``: the training seconds at which the mean hole PSNR over the six conditions
  first reached the seed recipe's (``seed``, or ``vaegan-seed`` for a VAE-GAN setting) at the end
  of its budget, and ``speedup`` the seed's training time divided by it (``null`` where never
  reached).

A VAE-GAN is scored by the decoding of its posterior mean with its current weights (the moving
average it fills with after training is not yet in place). Training seconds are compared between
settings run one after another on the same machine; a shared CPU drifts by a tenth over minutes,
so a speed-up below about 1.2 is within the noise.

Prints one JSON object. Usage: python bench/time_to_quality.py [--data SPEC] [--settings a,b]
[--steps N] [--eval-every 50] [--faces 200] (default data: $CELEBA_DIR, else the sample in
../shared/data/celeba-sample, else synthetic). ``--list`` names the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from inpaintlib.baselines import BASELINES, get_baseline
from inpaintlib.data import load_images, make_dataset, open_images, resolve_data_spec
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import psnr_hole
from inpaintlib.training import TrainConfig, build_model, checkpoint_interval, trains_with_xla

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"
CONDITIONS = [(kind, hole) for kind in ("center", "random-box", "free-form") for hole in (0.25, 0.5)]
# The quick profile's models (book/02_unet.ipynb, book/03_vaegan.ipynb): the U-Net 300 steps of 32,
# 16 filters, 3 levels, the seed's recipe (centre holes, a zero start, MSE over the whole image, Adam
# at a fixed 1e-3); the VAE-GAN 600 steps of 16, 16 filters.
QUICK = {
    "unet": TrainConfig(model="unet", mask="center", steps=300, batch_size=32, learning_rate=1e-3, loss="mse",
                        model_options={"base_filters": 16, "depth": 3, "smooth_start": False, "keep_known": False}),
    "vaegan": TrainConfig(model="vaegan", mask="center", steps=600, batch_size=16,
                          model_options={"base_filters": 16, "latent_dim": 128}),
}
SMOOTH = {"smooth_start": True, "keep_known": True}
#: Each setting changes its model's quick recipe; a model's ``seed`` setting is the recipe itself.
SETTINGS = {
    "seed": {},
    "mixed": {"mask": "mixed"},
    "mixed-hole-l1": {"mask": "mixed", "loss": "mae", "model_options": {"keep_known": True}},
    "mixed-smooth": {"mask": "mixed", "loss": "mae", "model_options": SMOOTH},
    "mixed-smooth-cosine": {"mask": "mixed", "loss": "mae", "schedule": "cosine", "model_options": SMOOTH},
    "mixed-smooth-cosine-2e-3": {"mask": "mixed", "loss": "mae", "schedule": "cosine", "learning_rate": 2e-3,
                                 "model_options": SMOOTH},
    "mixed-smooth-mse": {"mask": "mixed", "loss": "mse", "model_options": SMOOTH},
    "mixed-smooth-depth4": {"mask": "mixed", "loss": "mae", "model_options": {**SMOOTH, "depth": 4}},
    "mixed-smooth-refined": {"mask": "mixed", "loss": "mae", "model_options": {**SMOOTH, "smooth_refine_steps": 10}},
    "vaegan-seed": {"model": "vaegan"},
    "vaegan-mixed": {"model": "vaegan", "mask": "mixed"},
    "vaegan-mixed-refined": {"model": "vaegan", "mask": "mixed", "model_options": {"smooth_refine_steps": 10}},
}


def seed_of(name: str) -> str:
    """The setting a setting is measured against: its own model's quick recipe."""
    return "vaegan-seed" if SETTINGS[name].get("model") == "vaegan" else "seed"


def setting_config(name: str, data: str, steps: int | None) -> TrainConfig:
    changes = dict(SETTINGS[name])
    base = QUICK[changes.pop("model", "unet")]
    options = {**base.model_options, **changes.pop("model_options", {})}
    return dataclasses.replace(base, data=data, steps=steps or base.steps, model_options=options, **changes)


def conditions(faces: np.ndarray) -> list[dict]:
    """The validation faces under each condition, with the best classical method's hole PSNR."""
    images = faces.astype(np.float32) / 255.0
    scored = []
    for kind, hole in CONDITIONS:
        masks = eval_masks(kind, len(faces), faces.shape[1], hole=hole)
        classical = {name: float(psnr_hole(get_baseline(name).inpaint(images, masks), images, masks).mean())
                     for name in BASELINES}
        best = max(classical, key=classical.get)
        scored.append({"condition": f"{kind} {hole}", "images": images, "masks": masks,
                       "classical": classical, "best_classical": best, "target": classical[best]})
    return scored


class ScoreEveryEpoch(keras.callbacks.Callback):
    """Time the training steps (each Keras epoch here is ``eval_every`` steps) and score the
    model after each, outside the timed span."""

    def __init__(self, scored: list[dict]):
        super().__init__()
        self.scored, self.curve, self.train_seconds = scored, [], 0.0
        self.fill = None

    def on_train_begin(self, logs=None):
        # One traced function, without XLA: Keras's predict under the training step's jit_compile
        # recompiles for every call, which would take longer than the training it scores.
        self.fill = tf.function(lambda masked, masks: self.model([masked, masks], training=False))

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.started
        point = {"step": (epoch + 1) * self.params["steps"], "train_seconds": round(self.train_seconds, 2)}
        for condition in self.scored:
            images, masks = condition["images"], condition["masks"]
            fills = np.concatenate([self.fill(images[i:i + 100] * (1 - masks[i:i + 100]), masks[i:i + 100])
                                    for i in range(0, len(images), 100)])
            # psnr_hole reads the hole pixels alone: the fills need no compositing.
            point[condition["condition"]] = round(float(psnr_hole(fills, images, masks).mean()), 3)
        self.curve.append(point)
        print(json.dumps(point), file=sys.stderr, flush=True)


def run_setting(config: TrainConfig, scored: list[dict], eval_every: int) -> dict:
    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    model.jit_compile = trains_with_xla(config)
    images = open_images(config.data, "train", config.image_size, limit=config.limit)
    data = make_dataset(images, config.mask, config.batch_size, seed=config.seed, hole=config.hole)
    every = checkpoint_interval(config.steps, eval_every)
    score = ScoreEveryEpoch(scored)
    model.fit(data, epochs=config.steps // every, steps_per_epoch=every, callbacks=[score], verbose=0)
    return {"config": {k: v for k, v in config.to_dict().items() if k not in ("data", "checkpoint_every")},
            "curve": score.curve}


def first_reached(curve: list[dict], value_of, target: float) -> float | None:
    return next((point["train_seconds"] for point in curve if value_of(point) >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("CELEBA_DIR") and f"celeba:{os.environ['CELEBA_DIR']}"
                        or (f"celeba:{SAMPLE}" if SAMPLE.is_dir() else "synthetic"))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--steps", type=int, help="training steps (default: each model's quick budget)")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--faces", type=int, default=200, help="validation faces scored per condition")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    args = parser.parse_args()
    if args.list:
        print(json.dumps({name: dataclasses.asdict(setting_config(name, "auto", args.steps))
                          for name in SETTINGS}, indent=1))
        return
    names = args.settings.split(",")
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}: use {', '.join(SETTINGS)}")
    # Every setting is measured against its model's seed recipe, which runs first.
    names = list(dict.fromkeys([seed_of(name) for name in names] + names))
    scored = conditions(load_images(args.data, "validation", 64, limit=args.faces))
    results = {}
    for name in names:
        print(f"setting {name}", file=sys.stderr, flush=True)
        results[name] = run_setting(setting_config(name, args.data, args.steps), scored, args.eval_every)

    def mean_psnr(point):
        return float(np.mean([point[c["condition"]] for c in scored]))

    for name, result in results.items():
        seed_curve = results[seed_of(name)]["curve"]
        seed_quality, seed_seconds = mean_psnr(seed_curve[-1]), seed_curve[-1]["train_seconds"]
        curve = result["curve"]
        result["final_mean_psnr"] = round(mean_psnr(curve[-1]), 3)
        result["seconds_to_classical"] = {c["condition"]: first_reached(curve, lambda p, c=c: p[c["condition"]],
                                                                        c["target"]) for c in scored}
        reached = first_reached(curve, mean_psnr, seed_quality)
        result["seconds_to_seed"] = reached
        result["speedup"] = round(seed_seconds / reached, 2) if reached else None
    print(json.dumps({
        "data": resolve_data_spec(args.data), "split": "validation", "faces": args.faces,
        "classical": {c["condition"]: {"best": c["best_classical"], **{k: round(v, 3) for k, v in c["classical"].items()}}
                      for c in scored},
        "settings": results,
    }, indent=1))


if __name__ == "__main__":
    main()
