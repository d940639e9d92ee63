"""Training on several devices: a MirroredStrategy over two logical CPU devices.

TensorFlow splits the CPU into logical devices only before it starts, so each
check runs in a fresh Python process and reports back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inpaintlib.errors import ConfigError
from inpaintlib.training import pick_strategy

#: Trains the config (JSON in argv[1]) on one device, then on a 2-replica MirroredStrategy over a split CPU.
TRAIN_ON_ONE_AND_TWO_DEVICES = """
import json, sys
import numpy as np
import tensorflow as tf
from inpaintlib import training
from inpaintlib.training import TrainConfig, pick_strategy, train

two = pick_strategy("cpu:2")  # first: it splits the CPU before TensorFlow starts
# The same batches in the same order on one device and on two: a distributed dataset reshuffles
# differently, so the comparison trains on the images in file order, repeated.
make_dataset = training.make_dataset
training.make_dataset = lambda images, mask, batch_size, shuffle=True, **kwargs: make_dataset(
    images, mask, batch_size, shuffle=False, repeat=shuffle, **kwargs)
config = TrainConfig(**json.loads(sys.argv[1]))
report = {"auto_replicas": pick_strategy("auto").num_replicas_in_sync, "mirrored": type(two).__name__,
          "replicas": two.num_replicas_in_sync, "devices": list(two.extended.worker_devices)}

for name, strategy in (("one", tf.distribute.get_strategy()), ("two", two)):
    trained = train(config, f"{sys.argv[2]}/{name}", verbose=0, strategy=strategy)
    model = trained.model
    if name == "two":  # how the strategy splits one global batch of batch_size
        data = iter(two.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(np.zeros((config.batch_size, 2), np.float32)).batch(config.batch_size)))
        report["replica_batches"] = [int(t.shape[0]) for t in two.experimental_local_results(next(data))]
    report[name] = {
        "history": trained.history,
        "weights": [w.tolist() for w in model.get_weights()] if config.model == "unet" else None,
        # Adam's second moments: a gradient scaled by the wrong number of replicas scales them by its square.
        "velocities": [v.numpy().tolist() for o in (model.optimizers.values() if config.model == "vaegan"
                       else [model.optimizer]) for v in o.variables if v.path.endswith("_velocity")],
        "iterations": ({k: int(o.iterations.numpy()) for k, o in model.optimizers.items()}
                       if config.model == "vaegan" else int(model.optimizer.iterations.numpy())),
    }
print("REPORT" + json.dumps(report))
"""

STEPS = 8


def train_on_one_and_two_devices(tmp_path, **config) -> dict:
    config = {"data": "synthetic", "image_size": 16, "batch_size": 8, "limit": 32, "validation_images": 8,
              "steps": STEPS, "checkpoint_every": 4, **config}
    env = {**os.environ, "INPAINTLIB_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", TRAIN_ON_ONE_AND_TWO_DEVICES, json.dumps(config), str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    report = json.loads(line[len("REPORT"):])
    assert report["auto_replicas"] == 1, "two CPU devices are no reason to mirror by default"
    assert report["mirrored"] == "MirroredStrategy" and report["replicas"] == 2
    assert [d.rsplit("/", 1)[-1] for d in report["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert report["replica_batches"] == [4, 4], "batch_size is the global batch: half to each replica"
    for name in ("one", "two"):
        assert [row["step"] for row in report[name]["history"]] == [4, 8]
    return report


def velocity_ratios(report) -> np.ndarray:
    """Norm of each of Adam's second-moment variables on two devices over one device."""
    return np.array([np.linalg.norm(np.array(b)) / np.linalg.norm(np.array(a))
                     for a, b in zip(report["one"]["velocities"], report["two"]["velocities"])])


@pytest.mark.slow
def test_unet_on_two_devices_matches_one_device(tmp_path):
    report = train_on_one_and_two_devices(tmp_path, model="unet", model_options={"base_filters": 4, "depth": 1})
    one, two = report["one"], report["two"]
    assert one["iterations"] == two["iterations"] == STEPS
    # Measured: losses equal to 1e-7, weights to 5e-8, second moments to 4e-7.
    for a, b in zip(one["history"], two["history"]):
        for key in ("loss", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), (key, a[key], b[key])
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-6)
    # Adam hides a gradient twice too large in the weights, not in its second moments (4x).
    np.testing.assert_allclose(velocity_ratios(report), 1.0, rtol=1e-3)


@pytest.mark.slow
def test_vaegan_on_two_devices_is_finite_and_steps_once_per_batch(tmp_path):
    report = train_on_one_and_two_devices(
        tmp_path, model="vaegan", learning_rate=1e-3, model_options={"latent_dim": 8, "base_filters": 8, "depth": 2})
    one, two = report["one"], report["two"]
    assert one["iterations"] == two["iterations"] == {"encoder": STEPS, "posterior": STEPS, "decoder": STEPS,
                                                      "discriminator": STEPS}
    for row in two["history"]:
        assert all(np.isfinite(row[key]) for key in row if key not in ("epoch", "step", "log")), row
    # Same batches, different noise (each replica draws its own): the losses agree closely, not exactly,
    # and the gradients have the same size: a wrong 1/replicas scaling would put these ratios near 4 or 1/4.
    for a, b in zip(one["history"], two["history"]):
        assert b["pixel"] == pytest.approx(a["pixel"], rel=0.05)
    assert 0.5 < np.median(velocity_ratios(report)) < 2.0


def test_device_specs_are_checked():
    import tensorflow as tf

    with pytest.raises(ConfigError, match="unknown devices 'tpu:2'.*auto, one, gpu:N or cpu:N"):
        pick_strategy("tpu:2")
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(ConfigError, match="TensorFlow sees only 0 GPU device"):
            pick_strategy("gpu:2")
    assert pick_strategy("one").num_replicas_in_sync == 1


def test_batch_size_must_split_evenly_over_the_replicas(tmp_path):
    from types import SimpleNamespace

    from inpaintlib.training import TrainConfig, train

    three = SimpleNamespace(num_replicas_in_sync=3)  # checked before training starts: a stand-in will do
    with pytest.raises(ConfigError, match="batch-size 8 does not split evenly over 3 devices"):
        train(TrainConfig(data="synthetic", batch_size=8), tmp_path / "run", strategy=three)
    assert not (tmp_path / "run").exists()


#: Trains a U-Net, then a VAE-GAN, then a U-Net again in one process on two CPU devices, the way
#: chapter 4 trains both models in one kernel; XLA on, as for a long run on one CPU.
TRAIN_BOTH_MODELS = """
import sys
from inpaintlib import training

training.XLA_MIN_STEPS_ON_CPU = 1
assert training.pick_strategy() is training.pick_strategy("cpu:2"), "one strategy per spec and process"
for i, model in enumerate(("unet", "vaegan", "unet")):
    options = {"base_filters": 4, "depth": 2, **({"latent_dim": 4} if model == "vaegan" else {})}
    config = training.TrainConfig(model=model, data="synthetic", image_size=16, batch_size=4, limit=16,
                                  validation_images=4, steps=2, checkpoint_every=2, model_options=options)
    trained = training.train(config, f"{sys.argv[1]}/{i}", verbose=0)
    print("TRAINED", model, trained.history[-1]["loss"])
"""


def test_both_models_train_one_after_the_other_on_two_devices(tmp_path):
    """A second MirroredStrategy over the same devices reused the first one's collective keys, and
    the VAE-GAN after a U-Net failed in its first step ("Shape mismatch in the collective")."""
    env = {**os.environ, "INPAINTLIB_DEVICES": "cpu:2"}
    result = subprocess.run([sys.executable, "-c", TRAIN_BOTH_MODELS, str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = [line.split() for line in result.stdout.splitlines() if line.startswith("TRAINED")]
    assert [model for _, model, _ in trained] == ["unet", "vaegan", "unet"]
    assert all(np.isfinite(float(loss)) for _, _, loss in trained)
