"""Benchmark training on this machine, for the U-Net and the VAE-GAN: images/s, FLOPs, peak, data wait.

For each model, images/s of the training step as inpaintlib runs it now (``after``: XLA, and the
U-Net's MaxPool2x2) and as it ran before (``before``: no XLA on a CPU, the U-Net with Keras's
MaxPooling2D; for the U-Net also MaxPooling2D with XLA, to part the two changes); the FLOPs of
one step per image (counted on the step's TensorFlow graph, backward pass included); the
machine's float32 peak (the fastest of three libraries' large matrix product, best of three runs)
and the fraction of it reached; the fraction of step time spent waiting for data (against one
batch served from memory again and again). For the U-Net also mixed bfloat16, with whether the
CPU has native bfloat16 instructions, and training on the split streamed from its files
(``open_images(mode="stream")``, no disk cache) against the in-memory array.

How it times: steady-state steps, from the end of a step that follows the warm-up to the end of
the last, taken by a callback inside ``fit``. ``fit``'s return is left out: at its end the
tf.data iterator's teardown waits for its autotuning thread, up to the next power-of-two
multiple of 10 ms since the iterator started (seconds, once per ``fit``, never per step). A
shared CPU's speed drifts by 20% over minutes, so the configurations are measured in interleaved
rounds, each round right after a measure of the peak; every figure is the median over rounds,
a fraction of peak the median of each round's ratio.

Prints one JSON object. Usage: python bench/train.py [--model unet|vaegan|both] [--data SPEC]
[--batch-size 32] [--base-filters N] [--steps 30] [--rounds 3] (default data: $CELEBA_DIR, else
the sample in ../shared/data/celeba-sample, else synthetic).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from inpaintlib import unet
from inpaintlib.data import load_images, make_dataset, open_images
from inpaintlib.training import TrainConfig, build_model

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-sample"
MATMUL_SIZE = 4096


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


def matmul_products() -> dict:
    """A float32 matrix product of MATMUL_SIZE squared by three libraries: TensorFlow's kernels,
    XLA's and NumPy's BLAS. The fastest of them is the peak that training is compared with."""
    a = np.random.default_rng(0).random((MATMUL_SIZE, MATMUL_SIZE), np.float32)
    products = {}
    for name, jit in (("tensorflow", False), ("xla", True)):
        product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)), jit_compile=jit)
        products[name] = lambda product=product: product(a, a).numpy()
    products["numpy"] = lambda: a @ a
    return products


def gflops_per_s(product, repeats: int = 3) -> float:
    """The fastest of ``repeats`` products: a product slowed by a passing stall of this shared CPU
    would lower the peak and flatter every fraction of it."""
    product()  # warm-up: tracing, compilation, thread pools
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        seconds.append(time.perf_counter() - started)
    return 2 * MATMUL_SIZE**3 / min(seconds) / 1e9


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def keras_max_pooling():
    """Build the U-Net as it was before MaxPool2x2: with Keras's MaxPooling2D."""
    ours = unet.MaxPool2x2
    unet.MaxPool2x2 = lambda name: keras.layers.MaxPooling2D(2, name=name)
    try:
        yield
    finally:
        unet.MaxPool2x2 = ours


def compiled_model(kind: str, args, jit_compile: bool, policy: str = "float32", keras_pooling=False) -> keras.Model:
    """The model ``inpaintlib.training`` trains, compiled as asked."""
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        options = {"base_filters": args.base_filters} if args.base_filters else {}
        config = TrainConfig(model=kind, image_size=args.image_size, batch_size=args.batch_size, model_options=options)
        with keras_max_pooling() if keras_pooling else contextlib.nullcontext():
            model = build_model(config)
        model.jit_compile = jit_compile  # as training.train sets it for the steps
        return model
    finally:
        keras.mixed_precision.set_global_policy(previous)


class StepClock(keras.callbacks.Callback):
    """The time at the end of every training step."""

    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def steady_images_per_second(model: keras.Model, dataset, steps: int, batch_size: int) -> float:
    """Images/s of ``steps`` steps after one untimed step (which starts the pipeline)."""
    clock = StepClock()
    model.fit(dataset, steps_per_epoch=steps + 1, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return steps * batch_size / (clock.ends[-1] - clock.ends[0])


def interleaved(runs: dict, peak, args) -> tuple[dict, list]:
    """Images/s of each (model, dataset) in ``runs`` and the peak, measured in rounds; per-round lists."""
    for model, dataset in runs.values():
        model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0, shuffle=False)  # compilation
    per_round = max(1, args.steps // args.rounds)
    rates, peaks = {name: [] for name in runs}, []
    for _ in range(args.rounds):
        peaks.append(peak())
        for name, (model, dataset) in runs.items():
            rates[name].append(steady_images_per_second(model, dataset, per_round, args.batch_size))
    return rates, peaks


def measure(kind: str, pipeline, args, peak) -> dict:
    # The same batch again and again, already in memory: training with no data work at all.
    in_memory = pipeline.take(1).cache().repeat()
    after = compiled_model(kind, args, True)
    runs = {  # the library's model trains on each data source with one compiled step
        "before": (compiled_model(kind, args, False, keras_pooling=kind == "unet"), pipeline),
        "after": (after, pipeline),
        "no_data": (after, in_memory),
    }
    if kind == "unet":
        runs["maxpool_xla"] = (compiled_model(kind, args, True, keras_pooling=True), pipeline)
        # The streaming mode at its slowest: every file read and decoded in the pipeline, no disk cache.
        files = open_images(args.data, "train", args.image_size, mode="stream", stream_cache=False)
        runs["streamed"] = (after, make_dataset(files, args.mask, args.batch_size, seed=0))
    rates, peaks = interleaved(runs, peak, args)
    flops = training_flops_per_image(after, args.batch_size, args.image_size)

    def median(name):
        return statistics.median(rates[name])

    def fraction_of_peak(name):
        return statistics.median(flops * rate / 1e9 / p for rate, p in zip(rates[name], peaks))

    def ratio(name, to):
        return statistics.median(a / b for a, b in zip(rates[name], rates[to]))

    result = {
        "images_per_s_before": round(median("before"), 2),
        "images_per_s": round(median("after"), 2),
        "speedup": round(ratio("after", "before"), 3),
        "training_gflops_per_image": round(flops / 1e9, 3),
        "achieved_gflops_per_s": round(flops * median("after") / 1e9, 1),
        "peak_gflops_per_s_by_round": [round(p, 1) for p in peaks],
        "fraction_of_peak_before": round(fraction_of_peak("before"), 3),
        "fraction_of_peak": round(fraction_of_peak("after"), 3),
        "data_wait_fraction": round(max(0.0, 1 - ratio("after", "no_data")), 3),
    }
    if kind == "unet":
        result["images_per_s_maxpool_xla"] = round(median("maxpool_xla"), 2)
        result["images_per_s_streamed"] = round(median("streamed"), 2)
        result["streamed_ratio"] = round(ratio("streamed", "after"), 3)
        # Emulated bfloat16 is ten times slower on a CPU without it: a few steps say so.
        bf16 = compiled_model(kind, args, True, "mixed_bfloat16")
        bf16.fit(pipeline, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        bf16_rate = steady_images_per_second(bf16, pipeline, args.bf16_steps, args.batch_size)
        result["images_per_s_mixed_bfloat16"] = round(bf16_rate, 2)
        result["bfloat16_speedup"] = round(bf16_rate / median("after"), 3)
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
    parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bf16-steps", type=int, default=3)
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # each configuration's fits retrace on purpose: no warnings about it

    images = load_images(args.data, "train", image_size=args.image_size)
    pipeline = make_dataset(images, args.mask, args.batch_size, seed=0)
    products = matmul_products()
    matmul = {name: round(gflops_per_s(product), 1) for name, product in products.items()}
    fastest = max(matmul, key=matmul.get)
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
        "peak_library": fastest,
    }
    for kind in ("unet", "vaegan") if args.model == "both" else (args.model,):
        result[kind] = measure(kind, pipeline, args, lambda: gflops_per_s(products[fastest]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
