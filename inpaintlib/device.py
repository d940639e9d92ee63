"""The devices to compute on: which accelerator TensorFlow sees (said in one line for a chapter's
first cell), and the tf.distribute strategy training runs under."""

from __future__ import annotations

import os

from inpaintlib.errors import ConfigError

#: Which devices to train on, ``auto`` (the default), ``one``, ``gpu:N`` or ``cpu:N``; see pick_strategy.
DEVICES_ENV = "INPAINTLIB_DEVICES"


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


#: The strategies pick_strategy made, by device spec: one per process, because a second
#: MirroredStrategy over the same devices reuses the first one's collective keys, and the next
#: model, whose gradients have other shapes, fails in its first step.
_STRATEGIES: dict = {}


def pick_strategy(devices: str | None = None):
    """The devices to train on, as a tf.distribute strategy.

    Parameters
    ----------
    devices : str, optional
        ``"auto"`` (the default): a TPU if one is attached (Colab's TPU runtime),
        all GPUs if there are several, else the default strategy (one device).
        ``"one"``: the default strategy even where there are several devices.
        ``"gpu:N"`` or ``"cpu:N"``: a MirroredStrategy over the first N GPUs, or
        over N logical devices the CPU is split into (no faster: a way to test
        several-device training on a laptop; it must be chosen before TensorFlow
        starts computing). None reads ``$INPAINTLIB_DEVICES``, then ``"auto"``.

    Notes
    -----
    Under several devices ``batch_size`` stays the *global* batch: each of N
    replicas gets ``batch_size / N`` examples of every step. The same spec gives
    the same strategy throughout a process.
    """
    import tensorflow as tf

    spec = (os.environ.get(DEVICES_ENV, "") if devices is None else str(devices)).strip().lower() or "auto"
    if spec in _STRATEGIES:
        return _STRATEGIES[spec]
    if spec == "auto":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return _STRATEGIES.setdefault(spec, tf.distribute.TPUStrategy(resolver))
        except (ValueError, RuntimeError, tf.errors.NotFoundError, tf.errors.UnavailableError):
            pass
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return _STRATEGIES.setdefault(spec, tf.distribute.MirroredStrategy())
        return tf.distribute.get_strategy()
    if spec == "one":
        return tf.distribute.get_strategy()
    kind, _, count = spec.partition(":")
    if kind not in ("cpu", "gpu") or not count.isdigit() or int(count) < 1:
        raise ConfigError(f"unknown devices {spec!r} (${DEVICES_ENV}): use auto, one, gpu:N or cpu:N")
    n = int(count)
    if kind == "cpu":
        _split_cpu(n)
    found = tf.config.list_logical_devices(kind.upper())
    if len(found) < n:
        raise ConfigError(f"devices {spec!r}: TensorFlow sees only {len(found)} {kind.upper()} device(s); "
                          f"ask for at most {len(found)}, or use auto")
    return _STRATEGIES.setdefault(spec, tf.distribute.MirroredStrategy([device.name for device in found[:n]]))


def _split_cpu(n: int) -> None:
    """Split the CPU into ``n`` logical devices (at least), which TensorFlow allows only before it starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) >= n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise ConfigError(
            f"cannot split the CPU into {n} devices once TensorFlow has started: set {DEVICES_ENV}=cpu:{n} "
            f"in the environment, or call pick_strategy('cpu:{n}') before any other TensorFlow work"
        ) from None
