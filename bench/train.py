"""Benchmark U-Net training on this machine: images/s with and without XLA, FLOPs, peak, data wait.

Prints one JSON object. Usage: python bench/train.py [--data SPEC] [--batch-size 32] [--steps 60]
(default data: $CELEBA_DIR, else the sample in ../shared/data/celeba-sample, else synthetic).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from inpaintlib.data import load_images, make_dataset
from inpaintlib.device import has_accelerator
from inpaintlib.unet import build_unet

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"


def forward_flops_per_image(model: keras.Model) -> int:
    """Multiply-adds of every convolution, counted as 2 FLOPs each; other layers are negligible."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_height, kernel_width, channels_in, _ = layer.kernel.shape
            flops += 2 * height * width * channels_out * kernel_height * kernel_width * channels_in
    return flops


def matmul_peak_gflops(size: int = 4096, repeats: int = 10) -> float:
    """The machine's float32 peak as a large matrix product reaches it."""
    a = tf.random.uniform((size, size))
    b = tf.random.uniform((size, size))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b)))
    product(a, b).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        product(a, b).numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def images_per_second(dataset, jit_compile: bool, args) -> float:
    keras.utils.set_random_seed(0)
    model = build_unet(args.image_size, args.base_filters, args.depth)
    model.compile(keras.optimizers.Adam(1e-3), "mse", jit_compile=jit_compile)
    model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0, shuffle=False)  # tracing, compilation
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (f"celeba:{os.environ['CELEBA_DIR']}" if os.environ.get("CELEBA_DIR")
               else f"celeba:{SAMPLE}" if SAMPLE.is_dir() else "synthetic")
    parser.add_argument("--data", default=default)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--mask", default="center")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    images = load_images(args.data, "train", image_size=args.image_size)
    pipeline = make_dataset(images, args.mask, args.batch_size, seed=0)
    # The same batch again and again, already in memory: training with no data work at all.
    in_memory = pipeline.take(1).cache().repeat()

    plain = images_per_second(pipeline, False, args)
    xla = images_per_second(pipeline, True, args)
    fastest = max(plain, xla)
    no_data = images_per_second(in_memory, xla > plain, args)
    forward = forward_flops_per_image(build_unet(args.image_size, args.base_filters, args.depth))
    training_flops = 3 * forward  # backward costs about twice the forward pass
    peak = matmul_peak_gflops()
    achieved = training_flops * fastest / 1e9
    result = {
        "benchmark": "train",
        "model": f"unet(base_filters={args.base_filters}, depth={args.depth})",
        "data": args.data,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "device": tf.config.list_physical_devices("GPU")[0].name if tf.config.list_physical_devices("GPU") else "CPU",
        "cores": os.cpu_count(),
        "images_per_s_plain": round(plain, 1),
        "images_per_s_xla": round(xla, 1),
        "xla_speedup": round(xla / plain, 3),
        "training_uses_xla": has_accelerator(),  # inpaintlib compiles with XLA on GPUs and TPUs only
        "forward_gflops_per_image": round(forward / 1e9, 4),
        "training_gflops_per_image": round(training_flops / 1e9, 4),
        "achieved_gflops_per_s": round(achieved, 1),
        "peak_matmul_gflops_per_s": round(peak, 1),
        "fraction_of_peak": round(achieved / peak, 3),
        "data_wait_fraction": round(max(0.0, 1 - fastest / no_data), 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
