"""Benchmark training on this machine, for the U-Net and the VAE-GAN: images/s, FLOPs, peak, data wait.

For each model: images/s of plain ``fit`` and with XLA (``jit_compile``), the FLOPs of one training
step per image (counted on the step's TensorFlow graph, backward pass included), the GFLOP/s reached,
the machine's float32 peak measured in the same run (the fastest of three libraries' large matrix
product), their ratio, and the fraction of step time spent waiting for data (against the same batch
served from memory). For the
U-Net also mixed bfloat16, with whether the CPU has native bfloat16 instructions, and training on a
split streamed from its files (``open_images(mode="stream")``, no disk cache) against the in-memory array.

Prints one JSON object. Usage: python bench/train.py [--model unet|vaegan|both] [--data SPEC]
[--batch-size 32] [--base-filters N] [--steps 60] (default data: $CELEBA_DIR, else the sample in
../shared/data/celeba-sample, else synthetic).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from inpaintlib.data import load_images, make_dataset, open_images
from inpaintlib.device import has_accelerator
from inpaintlib.training import TrainConfig, build_model

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"


def training_flops_per_image(model: keras.Model, batch_size: int, image_size: int) -> float:
    """FLOPs of one ``train_step`` per image, counted by TensorFlow's graph profiler (convolutions,
    their gradients and matrix products; element-wise work is left out, as it is small)."""
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    images = tf.TensorSpec((batch_size, image_size, image_size, 3))
    masks = tf.TensorSpec((batch_size, image_size, image_size, 1))
    graph = tf.function(model.train_step).get_concrete_function(((images, masks), images)).graph
    options = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return profile(graph, options=options).total_float_ops / batch_size


def matmul_gflops(size: int = 4096, repeats: int = 10) -> dict[str, float]:
    """The machine's float32 peak as a large matrix product reaches it, by three libraries: TensorFlow's
    kernels, XLA's and NumPy's BLAS. The best of them is the peak that training is compared with."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), np.float32)
    rates = {}
    for name, jit in (("tensorflow", False), ("xla", True)):
        product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)), jit_compile=jit)
        rates[name] = _rate(lambda: product(a, a).numpy(), 2 * size**3, repeats)
    rates["numpy"] = _rate(lambda: a @ a, 2 * size**3, repeats)
    return {name: round(rate / 1e9, 1) for name, rate in rates.items()}


def _rate(work, flops: int, repeats: int) -> float:
    work()  # warm-up: tracing, compilation, thread pools
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return flops * repeats / (time.perf_counter() - started)


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compiled_model(kind: str, args, jit_compile: bool, policy: str = "float32") -> keras.Model:
    """The model ``inpaintlib.training`` trains, with its default options, compiled as asked."""
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        options = {"base_filters": args.base_filters} if args.base_filters else {}
        model = build_model(TrainConfig(model=kind, image_size=args.image_size, batch_size=args.batch_size,
                                        model_options=options))
        model.jit_compile = jit_compile  # build_model turns XLA on for accelerators only
        return model
    finally:
        keras.mixed_precision.set_global_policy(previous)


def images_per_second(model: keras.Model, dataset, args) -> float:
    model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0, shuffle=False)  # tracing, compilation
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def measure(kind: str, pipeline, args, peak: float) -> dict:
    # The same batch again and again, already in memory: training with no data work at all.
    in_memory = pipeline.take(1).cache().repeat()
    plain = images_per_second(compiled_model(kind, args, False), pipeline, args)
    xla = images_per_second(compiled_model(kind, args, True), pipeline, args)
    fastest = max(plain, xla)
    no_data = images_per_second(compiled_model(kind, args, xla > plain), in_memory, args)
    flops = training_flops_per_image(compiled_model(kind, args, False), args.batch_size, args.image_size)
    achieved = flops * fastest / 1e9
    result = {
        "images_per_s_plain": round(plain, 1),
        "images_per_s_xla": round(xla, 1),
        "xla_speedup": round(xla / plain, 3),
        "training_gflops_per_image": round(flops / 1e9, 3),
        "achieved_gflops_per_s": round(achieved, 1),
        "fraction_of_peak": round(achieved / peak, 3),
        "data_wait_fraction": round(max(0.0, 1 - fastest / no_data), 3),
    }
    if kind == "unet":
        bf16 = images_per_second(compiled_model(kind, args, xla > plain, "mixed_bfloat16"), pipeline, args)
        result["images_per_s_mixed_bfloat16"] = round(bf16, 1)
        result["bfloat16_speedup"] = round(bf16 / fastest, 3)
        # The streaming mode at its slowest: every file read and decoded in the pipeline, no disk cache.
        files = open_images(args.data, "train", args.image_size, mode="stream", stream_cache=False)
        streamed = make_dataset(files, args.mask, args.batch_size, seed=0)
        streamed_rate = images_per_second(compiled_model(kind, args, xla > plain), streamed, args)
        result["images_per_s_streamed"] = round(streamed_rate, 1)
        result["streamed_ratio"] = round(streamed_rate / fastest, 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (f"celeba:{os.environ['CELEBA_DIR']}" if os.environ.get("CELEBA_DIR")
               else f"celeba:{SAMPLE}" if SAMPLE.is_dir() else "synthetic")
    parser.add_argument("--model", choices=["unet", "vaegan", "both"], default="both")
    parser.add_argument("--data", default=default)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--base-filters", type=int, help="both models' (default: the library's default)")
    parser.add_argument("--mask", default="center")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    images = load_images(args.data, "train", image_size=args.image_size)
    pipeline = make_dataset(images, args.mask, args.batch_size, seed=0)
    matmul = matmul_gflops()
    peak = max(matmul.values())
    gpus = tf.config.list_physical_devices("GPU")
    result = {
        "benchmark": "train",
        "data": args.data,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "base_filters": args.base_filters or "default",
        "device": gpus[0].name if gpus else "CPU",
        "cores": os.cpu_count(),
        "cpu_has_bfloat16": cpu_has_bfloat16(),
        "matmul_gflops_per_s": matmul,
        "peak_matmul_gflops_per_s": peak,
        "training_uses_xla": has_accelerator(),  # inpaintlib compiles with XLA on GPUs and TPUs only
    }
    for kind in ("unet", "vaegan") if args.model == "both" else (args.model,):
        result[kind] = measure(kind, pipeline, args, peak)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
