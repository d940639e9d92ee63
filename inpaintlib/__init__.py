"""inpaintlib: image inpainting on faces with a U-Net and a VAE-GAN.

The library behind the inpainting-book course. Modules, one per concept:
``data`` (CelebA and synthetic faces, tf.data pipelines), ``masks``,
``viz``, ``profiles``, ``book`` and ``cli``.
"""

import os

# TensorFlow's C++ start-up chatter buries what a reader needs to see; keep
# its warnings and errors. Set before any module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from inpaintlib.errors import ConfigError, DataError, InpaintError, MaskError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "InpaintError", "MaskError", "__version__"]
