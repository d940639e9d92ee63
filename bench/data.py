"""Benchmark the data layer on real CelebA: cold decode, cached reload, tf.data throughput, streaming.

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

import numpy as np

from inpaintlib.data import SPLITS, default_memory_budget, load_images, make_dataset, open_images, parse_data_spec
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


def streaming_images_per_second(source, image_size, batch_size, cache_dir, in_memory, rounds=5):
    """Training-pipeline images/s of the train split streamed from its files, beside ``in_memory``'s.

    Centre masks, the cheapest, so that the data path weighs most. The first
    pass decodes every file and writes the disk cache; it is timed whole, from
    the pipeline's start (its first batch waits for the shuffle buffer to
    fill). Later passes read that cache: each of ``rounds`` times one pass of
    the stream right after as many batches of the in-memory pipeline, so that
    both see the same load on a shared machine, and the medians are reported.
    ``no_cache`` decodes every pass.
    """
    cached = open_images(source, "train", image_size, cache_dir=cache_dir, mode="stream")
    uncached = open_images(source, "train", image_size, cache_dir=cache_dir, mode="stream", stream_cache=False)
    per_pass = len(cached) // batch_size

    def images_per_second(batches, n=per_pass):
        started = time.perf_counter()
        for _ in range(n):
            next(batches)
        return n * batch_size / (time.perf_counter() - started)

    streamed = iter(make_dataset(cached, mask="center", batch_size=batch_size, seed=0))
    first = images_per_second(streamed)
    next(streamed), next(streamed)  # the batch that spans the end of the first pass
    memory = iter(make_dataset(in_memory, mask="center", batch_size=batch_size, seed=0))
    for _ in range(5):  # warm-up: tracing
        next(memory)
    pairs = [(images_per_second(memory), images_per_second(streamed)) for _ in range(rounds)]
    memory, later = (float(np.median(rates)) for rates in zip(*pairs))
    no_cache = iter(make_dataset(uncached, mask="center", batch_size=batch_size, seed=0))
    next(no_cache)
    no_cache = images_per_second(no_cache, per_pass - 1)
    return {
        "mask": "center",
        "batches_per_pass": per_pass,
        "in_memory_images_per_s": round(memory),
        "first_pass_images_per_s": round(first),
        "later_passes_images_per_s": round(later),
        "no_cache_images_per_s": round(no_cache),
        "first_pass_ratio": round(first / memory, 3),
        "later_passes_ratio": round(later / memory, 3),
        "no_cache_ratio": round(no_cache / memory, 3),
    }


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
        streaming = streaming_images_per_second(source, args.image_size, args.batch_size, cache_dir, images["train"])
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
        "memory_budget_bytes": default_memory_budget(),
        "pipeline_batch_size": args.batch_size,
        "pipeline_batches_per_s": {
            kind: round(pipeline_batches_per_second(images["train"], kind, args.batch_size, args.batches), 1)
            for kind in MASK_KINDS
        },
        "streaming": streaming,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
