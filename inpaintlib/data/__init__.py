"""Face images for inpainting: CelebA, synthetic stand-in faces, tf.data pipelines.

Images are uint8 arrays of shape (N, H, W, 3) until they enter a pipeline, and
float32 in [0, 1] inside it. A *data spec* string picks the source everywhere:
``synthetic``, ``celeba:PATH`` (a folder or a .zip) or ``auto`` (CelebA from
``$CELEBA_DIR`` when it is set, synthetic faces otherwise).

Every public name below is importable from ``inpaintlib.data`` itself; the
submodules, one per concept:

- ``sources``: data specs (:func:`.parse_data_spec`, :class:`.DataSource`), the
  splits, and :class:`.DataWarning`;
- ``celeba``: reading a CelebA folder or zip (partition file, splits, image
  bytes), and :func:`.check_source`;
- ``decoding``: image bytes to uint8 RGB squares (:func:`.decode_image`), and
  single image files read and written;
- ``cache``: the cache folder (:func:`.cache_root`) and its atomically written arrays;
- ``synthetic``: the procedural faces (:func:`.synthetic_faces`);
- ``loading``: a whole split in memory (:func:`.load_images`);
- ``streaming``: a split for training, in memory or streamed from its files
  (:func:`.open_images`, :class:`.ImageStream`);
- ``pipeline``: the tf.data batches of masked images (:func:`.make_dataset`);
- ``celeba_setup``: putting CelebA where the chapters find it (:func:`.setup_celeba`).
"""

from inpaintlib.data.cache import CACHE_ENV, cache_root, save_atomically
from inpaintlib.data.celeba import PARTITION_FILES, check_source, data_identity
from inpaintlib.data.decoding import check_image_size, check_output_path, decode_image, read_image, save_png_atomically
from inpaintlib.data.loading import load_images
from inpaintlib.data.pipeline import make_dataset
from inpaintlib.data.celeba_setup import KAGGLE_DATASET, check_celeba, setup_celeba
from inpaintlib.data.sources import (
    CELEBA_ENV,
    IMAGE_DIR,
    SPLITS,
    SYNTHETIC_SPLIT_SIZES,
    DataSource,
    DataWarning,
    parse_data_spec,
    resolve_data_spec,
)
from inpaintlib.data.streaming import DATA_MODES, MEMORY_BUDGET_ENV, ImageStream, default_memory_budget, open_images
from inpaintlib.data.synthetic import synthetic_faces

__all__ = [
    "CACHE_ENV", "CELEBA_ENV", "DATA_MODES", "IMAGE_DIR", "KAGGLE_DATASET", "MEMORY_BUDGET_ENV",
    "PARTITION_FILES", "SPLITS", "SYNTHETIC_SPLIT_SIZES",
    "DataSource", "DataWarning", "ImageStream",
    "cache_root", "check_celeba", "check_image_size", "check_output_path", "check_source", "data_identity",
    "decode_image",
    "default_memory_budget", "load_images", "make_dataset", "open_images", "parse_data_spec", "read_image",
    "resolve_data_spec", "save_atomically", "save_png_atomically", "setup_celeba", "synthetic_faces",
]
