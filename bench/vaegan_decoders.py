"""Benchmark the VAE-GAN's two decoders on real faces: z alone (Larsen et al.) or z and the image's skips.

Trains each for --steps steps of --batch-size on the train split with centre holes, scores both on the
first --n-eval validation faces, and prints one JSON object. The numbers behind the choice in chapter 3.
A design choice is made on the validation split, never the test split: the test faces stay unseen
until chapter 4 scores the chosen model on them, so its numbers are not tuned to them.
Usage: python bench/vaegan_decoders.py [--data SPEC] [--steps 600]
(default data: $CELEBA_DIR, else the sample in ../shared/data/celeba-sample, else synthetic).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from inpaintlib.data import load_images
from inpaintlib.masks import eval_masks
from inpaintlib.metrics import evaluate
from inpaintlib.training import TrainConfig, train

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (f"celeba:{os.environ['CELEBA_DIR']}" if os.environ.get("CELEBA_DIR")
               else f"celeba:{SAMPLE}" if SAMPLE.is_dir() else "synthetic")
    parser.add_argument("--data", default=default)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    images = load_images(args.data, "validation", 64, limit=args.n_eval)
    masks = eval_masks("center", len(images), 64)
    result = {"benchmark": "vaegan_decoders", "data": args.data, "split": "validation", "steps": args.steps,
              "batch_size": args.batch_size, "mask": "center", "n_eval": len(images)}
    with tempfile.TemporaryDirectory() as folder:
        for image_skips in (True, False):
            config = TrainConfig(model="vaegan", data=args.data, steps=args.steps, batch_size=args.batch_size,
                                 seed=args.seed, model_options={"image_skips": image_skips})
            started = time.perf_counter()
            trained = train(config, Path(folder) / str(image_skips), verbose=0)
            seconds = time.perf_counter() - started
            scores = evaluate(trained, images, masks)
            name = "z_and_image_skips" if image_skips else "z_alone"
            metrics = ("psnr_hole", "ssim", "ssim_hole", "sharpness", "diversity")
            result[name] = {"train_seconds": round(seconds, 1), **{k: round(scores[k], 4) for k in metrics}}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
