"""inpaintlib: image inpainting on faces with a U-Net and a VAE-GAN.

The library behind the inpainting-book course, one module per concept: ``data``
(CelebA and synthetic faces, tf.data pipelines), ``masks``, ``unet`` and
``smooth_fill``, ``vaegan``,
``config``, ``training`` and ``checkpoints``, ``metrics``, ``facemetrics`` and ``baselines``, ``viz``, ``profiles``,
``book`` and ``cli``, over ``errors``, ``files``, ``device``, ``provenance`` and
``startup``. The book's library page (``book/library.md``) is its design and
API reference.
"""

from inpaintlib.startup import quiet_tensorflow_startup

# TensorFlow's C++ start-up lines bury what a reader needs to see: hidden from the first
# import of TensorFlow, whoever imports it (see inpaintlib.startup).
quiet_tensorflow_startup()

from inpaintlib.errors import ConfigError, DataError, InpaintError, MaskError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "InpaintError", "MaskError", "__version__"]
