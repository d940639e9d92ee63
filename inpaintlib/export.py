"""Trained models as ONNX graphs, for runtimes without TensorFlow (onnxruntime, onnxruntime-web).

- The U-Net is one graph: ``(masked_image, mask) -> image``.
- The VAE-GAN is one graph with its noise as an input: ``(masked_image, mask, noise) -> image``,
  where the code is z = mean + std * noise, the prior network's Gaussian. Noise drawn from
  N(0, I) draws a fill from the prior as trained, noise times a temperature below 1 draws closer
  to the most likely fill (the manifest's ``temperature`` is the library's default,
  :data:`~inpaintlib.config.DEFAULT_TEMPERATURE`), and zeros give that fill itself (what the model
  returns when called). A page draws a new noise on each click; the graph itself is deterministic.

The graphs' outputs are not composited: a runtime keeps the known pixels, as
:meth:`.TrainedModel.inpaint` does. Each export is checked before it is kept: onnxruntime's output
on the given faces against Keras's, at most :data:`ONNX_TOLERANCE` apart, or the export fails and
leaves nothing behind. The folder receives ``MODEL.onnx`` and ``MODEL.json`` (what a runtime
needs to feed the graph: input names and shapes, the image size, the code's length, the
measured difference), each written atomically.

Keras writes the graph (``model.export(format="onnx")``, through tf2onnx), so exporting needs
the ``export`` extra (``pip install 'inpaintlib[export]'``; the book extra has it too).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from inpaintlib.config import DEFAULT_TEMPERATURE
from inpaintlib.errors import ConfigError

#: The largest difference allowed between onnxruntime's and Keras's outputs, per pixel and channel.
ONNX_TOLERANCE = 1e-4
#: The same with the weights stored in half precision, below half a grey level (1/255), so that a
#: pixel shown in 8 bits moves by one level at most.
FLOAT16_TOLERANCE = 2e-3
#: The same for a model whose smooth fill refines by conjugate gradients (``smooth_refine_steps``): in
#: float32 their result settles to a few 1e-4 on any runtime (TensorFlow's is that far from float64's),
#: so two runtimes differ by as much.
REFINED_TOLERANCE = FLOAT16_TOLERANCE
#: Weights with fewer values than this stay in single precision (biases and constants weigh nothing).
FLOAT16_MIN_SIZE = 1024
#: Faces an export is checked on by default.
CHECK_IMAGES = 8
#: Seed of the noise the VAE-GAN's graph is checked with.
CHECK_SEED = 2017


def to_onnx(model_dir: str | Path, out_dir: str | Path, images=None, masks=None, float16: bool = False) -> dict:
    """Export the model in ``model_dir`` (a folder :func:`.train` wrote) to ``out_dir``; its manifest.

    Parameters
    ----------
    model_dir : path
        A trained U-Net or VAE-GAN.
    out_dir : path
        Folder for ``unet.onnx`` or ``vaegan.onnx`` and its ``.json`` manifest (created if absent).
    images, masks : array_like, optional
        Faces (N, S, S, 3) in [0, 1] or uint8 and masks (N, S, S, 1) to check the graph on, at the
        model's size (default: eight synthetic faces, centre holes of half the side).
    float16 : bool
        Store the weights in half precision (the graph computes in single precision, casting them
        once per run): half the file, for a page that downloads it, within :data:`FLOAT16_TOLERANCE`
        of Keras.

    Returns
    -------
    dict
        The manifest written beside the graph: ``model``, ``file``, ``image_size``, ``inputs``
        (names and shapes), ``output``, ``latent_dim`` (VAE-GAN), ``float16``, ``max_difference``
        and ``checked_on`` (images), the ``config`` the model was trained with.

    Raises
    ------
    ConfigError
        A folder that holds no model, an export extra that is not installed, or a graph whose
        output differs from Keras's by more than :data:`ONNX_TOLERANCE` (:data:`REFINED_TOLERANCE` for a
        model whose smooth fill refines).
    """
    from inpaintlib.config import read_model_folder

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    config, _ = read_model_folder(model_dir)  # a folder without a model fails here, before TensorFlow
    ort = _runtime()
    from inpaintlib.training import load_trained

    trained = load_trained(model_dir)
    size = config.image_size
    images, masks = _check_inputs(images, masks, size)
    graph, feeds = inference_graph(trained.model, images, masks)
    expected = graph.predict(list(feeds.values()), verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{config.model}.onnx"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{target.name}.") as scratch:
        draft = Path(scratch) / target.name
        _keras_export(graph, draft)
        if float16:
            _store_weights_as_float16(draft)
        session = ort.InferenceSession(str(draft), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        got = session.run(None, dict(zip(names, feeds.values())))[0]
        difference = float(np.abs(got - expected).max())
        refined = trained.config.all_model_options()["smooth_refine_steps"]  # both models have the option
        tolerance = FLOAT16_TOLERANCE if float16 else REFINED_TOLERANCE if refined else ONNX_TOLERANCE
        if not difference <= tolerance:
            raise ConfigError(f"the ONNX graph of {model_dir} differs from the Keras model by {difference:.2g} "
                              f"(more than {tolerance:g}): it was not written; report this with your "
                              f"versions of keras, tf2onnx and onnxruntime")
        manifest = {
            "model": config.model, "file": target.name, "image_size": size,
            # None: a dimension the graph leaves free (the batch)
            "inputs": [{"name": i.name, "shape": [d if isinstance(d, int) else None for d in i.shape]}
                       for i in session.get_inputs()],
            "output": session.get_outputs()[0].name,
            # The noise's length, and the temperature to scale it by, as the library draws by default.
            **({"latent_dim": int(feeds["noise"].shape[-1]), "temperature": DEFAULT_TEMPERATURE}
               if "noise" in feeds else {}),
            "float16": float16, "max_difference": difference, "checked_on": len(images), "config": config.to_dict(),
        }
        os.replace(draft, target)  # the same file system: the graph appears whole or not at all
    from inpaintlib.files import atomic_write

    with atomic_write(target.with_suffix(".json")) as f:
        f.write(json.dumps(manifest, indent=1).encode())
    return manifest


def inference_graph(model, images: np.ndarray, masks: np.ndarray):
    """The Keras model to export, and the inputs it is checked on (a dict, in the graph's input order).

    The U-Net is exported as it is. For a VAE-GAN, a functional model of its prior network and
    decoder, with the noise as a third input (see the module docstring).
    """
    import keras

    masked = (images * (1.0 - masks)).astype(np.float32)
    feeds = {"masked_image": masked, "mask": masks}
    if not hasattr(model, "sample_fills"):
        return model, feeds
    size, latent = model.settings["image_size"], model.settings["latent_dim"]
    masked_image = keras.Input((size, size, 3), name="masked_image")
    mask = keras.Input((size, size, 1), name="mask")
    noise = keras.Input((latent,), name="noise")
    mean, log_var, *maps = model.encoder([masked_image, mask])
    code = mean + keras.ops.exp(0.5 * log_var) * noise
    fill = model._decode(code, maps, training=False)
    graph = keras.Model([masked_image, mask, noise], fill, name="vaegan_fill")
    feeds["noise"] = np.random.default_rng(CHECK_SEED).standard_normal((len(images), latent)).astype(np.float32)
    return graph, feeds


def _store_weights_as_float16(path: Path) -> None:
    """Rewrite the graph at ``path`` with its large weights stored in half precision, each cast
    back to single precision under its old name, so every node reads what it read before."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    kept, casts = [], []
    for weight in graph.initializer:
        values = numpy_helper.to_array(weight)
        if values.dtype != np.float32 or values.size < FLOAT16_MIN_SIZE:
            kept.append(weight)
            continue
        kept.append(numpy_helper.from_array(values.astype(np.float16), f"{weight.name}/float16"))
        casts.append(helper.make_node("Cast", [f"{weight.name}/float16"], [weight.name], to=onnx.TensorProto.FLOAT,
                                      name=f"{weight.name}/to_float32"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts first: the nodes stay in topological order
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _keras_export(graph, path: Path) -> None:
    import warnings

    try:
        with warnings.catch_warnings():  # tf2onnx's own look at np.object, harmless
            warnings.simplefilter("ignore", FutureWarning)
            graph.export(str(path), format="onnx", verbose=False)
    except ImportError as error:
        raise ConfigError(f"exporting to ONNX needs tf2onnx ({error}): pip install 'inpaintlib[export]'") from None


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("checking an ONNX export needs onnxruntime: pip install 'inpaintlib[export]'") from None
    return onnxruntime


def _check_inputs(images, masks, size: int):
    from inpaintlib.masks import eval_masks
    from inpaintlib.viz import as_float

    if images is None:
        from inpaintlib.data import load_images

        images = load_images("synthetic", "validation", image_size=size, limit=CHECK_IMAGES)
    images = as_float(images)
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ConfigError(f"check images must be (N, {size}, {size}, 3), the model's size, not {images.shape}")
    if masks is None:
        masks = eval_masks("center", len(images), size)
    masks = np.asarray(masks, np.float32).reshape(len(images), size, size, 1)
    return images, masks
