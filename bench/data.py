"""Benchmark the data layer on real CelebA: cold decode, cached reload, tf.data throughput.

Prints one JSON object. Usage: python bench/data.py [--data celeba:PATH] [--image-size 64]
(default data: $CELEBA_DIR, else the sample in ../shared/data/celeba-sample).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from inpaintlib.data import SPLITS, load_images, make_dataset, parse_data_spec
from inpaintlib.masks import MASK_KINDS

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"


def load_all(source, image_size, cache_dir):
    started = time.perf_counter()
    images = {split: load_images(source, split, image_size=image_size, cache_dir=cache_dir) for split in SPLITS}
    return images, time.perf_counter() - started


def pipeline_batches_per_second(images, kind, batch_size, batches):
    dataset = iter(make_dataset(images, mask=kind, batch_size=batch_size, seed=0))
    for _ in range(5):  # warm-up: tracing, XLA compilation, prefetch
        next(dataset)
    started = time.perf_counter()
    for _ in range(batches):
        next(dataset)
    return batches / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = f"celeba:{os.environ['CELEBA_DIR']}" if os.environ.get("CELEBA_DIR") else f"celeba:{SAMPLE}"
    parser.add_argument("--data", default=default)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    source = parse_data_spec(args.data)

    with tempfile.TemporaryDirectory() as cache_dir:
        images, cold = load_all(source, args.image_size, cache_dir)
        _, cached = load_all(source, args.image_size, cache_dir)
    count = sum(len(split) for split in images.values())
    result = {
        "benchmark": "data",
        "data": args.data,
        "image_size": args.image_size,
        "images": count,
        "cold_decode_s": round(cold, 3),
        "cached_reload_s": round(cached, 3),
        "cold_images_per_s": round(count / cold, 1),
        "cores": os.cpu_count(),
        "pipeline_batch_size": args.batch_size,
        "pipeline_batches_per_s": {
            kind: round(pipeline_batches_per_second(images["train"], kind, args.batch_size, args.batches), 1)
            for kind in MASK_KINDS
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
