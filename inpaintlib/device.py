"""Which accelerator TensorFlow sees, said in one line for a chapter's first cell."""

from __future__ import annotations

import os


def describe_device() -> str:
    """One line naming TensorFlow's version and the device it computes on.

    Examples
    --------
    >>> describe_device().startswith("TensorFlow")
    True
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
        where = f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {', '.join(names)}"
    elif tf.config.list_logical_devices("TPU"):
        where = "a TPU"
    else:
        where = f"the CPU ({os.cpu_count()} cores, no GPU)"
    return f"TensorFlow {tf.__version__} on {where}"


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or a TPU (where training always compiles with XLA)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"))
