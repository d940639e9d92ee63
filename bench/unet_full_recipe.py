"""The U-Net's original full recipe on any Keras backend: wall time, images/s, scores.

The original recipe trains 4000 steps of batch 128 on the whole train split, centre holes of half
the side, from a zero hole, on the MSE over the whole image (chapter 2's `full` profile has its
scale; chapter 2's own recipe starts from a smooth fill and trains on mixed holes, see
bench/time_to_quality.py). ``inpaintlib.training`` trains on TensorFlow; this script trains the same model
(``inpaintlib.unet.build_unet``, plain Keras) with the same recipe on the backend that
``KERAS_BACKEND`` names (tensorflow, jax or torch), drawing random batches with NumPy instead of
tf.data. It exists so that a GPU machine without TensorFlow can still time the recipe; its numbers
are that backend's, not the library's TensorFlow path.

Prints one JSON object: backend, device, precision, steps, batch size, wall time, images/s after the
first (compiling) step, and ``inpaintlib.metrics.evaluate`` on the test split's centre holes.

Usage:
    python bench/unet_full_recipe.py [--data SPEC] [--steps 4000] [--batch-size 128]
    python bench/unet_full_recipe.py --data SPEC --pack faces.npz    # write the splits, losslessly
    python bench/unet_full_recipe.py --faces faces.npz               # train from such a file
(``--pack`` stores each face as lossless WebP: the sample's 7,500 faces in about 43 MB, small enough
to carry to a machine that has no copy of CelebA.)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np


def pack(path: str, splits: dict[str, np.ndarray]) -> None:
    """Write uint8 (N, H, W, 3) arrays as one blob of lossless WebP files per split, with offsets."""
    arrays = {}
    for name, images in splits.items():
        encoded = [cv2.imencode(".webp", image[..., ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101])[1] for image in images]
        arrays[f"{name}_blob"] = np.concatenate(encoded)
        arrays[f"{name}_offsets"] = np.cumsum([0] + [len(e) for e in encoded])
    np.savez(path, **arrays)


def unpack(path: str, name: str) -> np.ndarray:
    with np.load(path) as packed:
        blob, offsets = packed[f"{name}_blob"], packed[f"{name}_offsets"]
    return np.stack([cv2.imdecode(blob[a:b], cv2.IMREAD_COLOR)[..., ::-1] for a, b in zip(offsets[:-1], offsets[1:])])


def centre_masks(n: int, image_size: int, hole: float) -> np.ndarray:
    """The centre hole of ``inpaintlib.masks`` (1 marks a missing pixel), without TensorFlow."""
    side = round(image_size * hole)
    start = (image_size - side) // 2
    masks = np.zeros((n, image_size, image_size, 1), np.float32)
    masks[:, start:start + side, start:start + side] = 1.0
    return masks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="auto", help="data spec (default: $CELEBA_DIR, else synthetic)")
    parser.add_argument("--faces", help="a file written by --pack, used instead of --data")
    parser.add_argument("--pack", help="write the train and test splits of --data to this file and stop")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--hole", type=float, default=0.5)
    parser.add_argument("--n-eval", type=int, default=2000)
    parser.add_argument("--precision", choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"], default="auto",
                        help="auto: mixed_float16 on a GPU (as inpaintlib.training does), float32 elsewhere")
    args = parser.parse_args()

    if args.pack or not args.faces:
        from inpaintlib.data import load_images

        train_faces = load_images(args.data, "train", image_size=64)
        test_faces = load_images(args.data, "test", image_size=64)
        if args.pack:
            pack(args.pack, {"train": train_faces, "test": test_faces})
            print(json.dumps({"packed": args.pack, "train": len(train_faces), "test": len(test_faces),
                              "bytes": os.path.getsize(args.pack)}))
            return 0
    else:
        train_faces, test_faces = unpack(args.faces, "train"), unpack(args.faces, "test")

    import keras

    from inpaintlib.metrics import evaluate
    from inpaintlib.unet import build_unet

    backend = keras.backend.backend()
    devices = keras.distribution.list_devices() if hasattr(keras, "distribution") else []
    on_gpu = any("gpu" in str(d).lower() or "cuda" in str(d).lower() for d in devices)
    precision = args.precision if args.precision != "auto" else ("mixed_float16" if on_gpu else "float32")
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_unet(train_faces.shape[1], args.base_filters, args.depth, smooth_start=False, keep_known=False)
    model.compile(keras.optimizers.Adam(1e-3), "mse")  # Keras wraps it in loss scaling under mixed_float16

    rng = np.random.default_rng(0)
    masks = centre_masks(args.batch_size, train_faces.shape[1], args.hole)
    losses = []

    def step():
        images = train_faces[rng.integers(0, len(train_faces), args.batch_size)].astype(np.float32) / 255.0
        return float(model.train_on_batch([images * (1.0 - masks), masks], images))

    started = time.perf_counter()
    losses.append(step())  # traces and compiles
    first_step = time.perf_counter() - started
    for i in range(1, args.steps):
        loss = step()  # the batch is drawn on the host: its time counts, as a data wait would
        if i % 100 == 0:
            losses.append(loss)
    wall = time.perf_counter() - started

    class Model:
        name = "unet"

        def inpaint(self, images, masks):
            return model.predict([images * (1.0 - masks), masks], batch_size=256, verbose=0)

    test = test_faces[: args.n_eval]
    scores = evaluate(Model(), test, centre_masks(len(test), test.shape[1], args.hole), batch_size=256)
    print(json.dumps({
        "backend": backend, "devices": [str(d) for d in devices], "precision": precision,
        "train_images": len(train_faces), "steps": args.steps, "batch_size": args.batch_size,
        "first_step_s": round(first_step, 2), "wall_s": round(wall, 1),
        "images_per_s": round((args.steps - 1) * args.batch_size / (wall - first_step), 1),
        "loss_every_100_steps": [round(x, 5) for x in losses],
        "test": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
