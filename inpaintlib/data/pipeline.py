"""The tf.data pipelines that feed training and evaluation: :func:`.make_dataset` turns images (an
array or an :class:`~inpaintlib.data.streaming.ImageStream`) and masks into batches.
"""

from __future__ import annotations

import numpy as np

from inpaintlib.data.streaming import ImageStream
from inpaintlib.errors import DataError


def make_dataset(
    images,
    mask="center",
    batch_size: int = 32,
    shuffle: bool = True,
    repeat: bool | None = None,
    seed: int = 0,
    hole: float = 0.5,
    skip: int = 0,
):
    """A tf.data pipeline of ``((masked_image, mask), image)`` batches.

    Parameters
    ----------
    images : numpy.ndarray or ImageStream
        uint8 (N, H, W, 3) images, or a split streamed from its files (see
        :func:`.open_images`), which is decoded inside the pipeline.
    mask : str or numpy.ndarray
        A mask kind (``"center"``, ``"random-box"``, ``"free-form"``), drawn
        afresh for every batch inside the pipeline, or fixed float32 masks
        (N, H, W, 1) that go with an array of ``images`` (evaluation).
    batch_size : int
    shuffle : bool
        Shuffle the images each epoch.
    repeat : bool, optional
        Repeat forever (training); defaults to ``shuffle``.
    seed : int
        Seed of the shuffle and of the masks: the same seed gives the same batches.
    hole : float
        Hole size as a fraction of the image side (see :mod:`inpaintlib.masks`).
    skip : int
        Batches to leave out at the start: the pipeline then yields batch
        ``skip`` onwards of the same stream, so a resumed training run sees what
        the uninterrupted run saw. The skipped images and holes are never
        drawn: an array skips shuffled indices and mask seeds, and a stream
        without a disk cache skips file indices, before any decoding.

    Returns
    -------
    tf.data.Dataset
        float32 in [0, 1]: masked images (B, H, W, 3) with holes set to 0, masks
        (B, H, W, 1) with 1 for a missing pixel, and the original images (B, H, W, 3).

    Examples
    --------
    >>> from inpaintlib.data import load_images
    >>> faces = load_images("synthetic", "test", image_size=32, limit=8)
    >>> (masked, masks), targets = next(iter(make_dataset(faces, batch_size=4)))
    >>> tuple(masked.shape), tuple(masks.shape)
    ((4, 32, 32, 3), (4, 32, 32, 1))
    """
    # Imported here so that loading images and the command line start without TensorFlow.
    import tensorflow as tf

    from inpaintlib.masks import check_hole, check_mask_kind, draw_masks

    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, not {batch_size}")
    if not isinstance(skip, (int, np.integer)) or skip < 0:
        raise DataError(f"skip must be a number of batches, 0 or more, not {skip!r}")
    repeat = shuffle if repeat is None else repeat
    fixed_masks = None
    if isinstance(mask, str):
        check_mask_kind(mask)
        check_hole(hole)
    elif isinstance(images, ImageStream):
        raise DataError("fixed masks go with an array of images: load the split with load_images")
    if isinstance(images, ImageStream):
        # A split too large for memory: its files are decoded inside the pipeline.
        image_size = images.image_size
        examples = images.dataset(shuffle=shuffle, seed=seed, repeat=repeat, skip=skip * batch_size)
        batches = examples.batch(batch_size)
        skip_batches = 0  # the stream skipped its examples itself
        pick = tf.identity
    else:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
            raise DataError(f"images must be a non-empty uint8 array (N, H, W, 3), not {images.dtype} {images.shape}")
        image_size = images.shape[1]
        if not isinstance(mask, str):
            fixed_masks = np.asarray(mask, np.float32)
            if fixed_masks.shape != images.shape[:3] + (1,):
                raise DataError(f"fixed masks must have shape {images.shape[:3] + (1,)}, not {fixed_masks.shape}")
            fixed_masks = tf.constant(fixed_masks)
        pixels = tf.constant(images)
        # Shuffle indices, not images: cheap at any size, and a batch is one gather.
        indices = tf.data.Dataset.range(len(images))
        if shuffle:
            indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            indices = indices.repeat()
        batches = indices.batch(batch_size)
        skip_batches = skip
        pick = lambda index: tf.gather(pixels, index)  # noqa: E731
    batch_seeds = tf.data.Dataset.random(seed=seed).skip(skip)  # one fresh mask seed per batch

    def to_example(batch, batch_seed):
        image = tf.cast(pick(batch), tf.float32) / 255.0
        if fixed_masks is None:
            holes = draw_masks(mask, tf.shape(image)[0], image_size, seed=tf.stack([batch_seed, seed]), hole=hole)
        else:
            holes = tf.gather(fixed_masks, batch)
        return (image * (1.0 - holes), holes), image

    dataset = tf.data.Dataset.zip(batches.skip(skip_batches), batch_seeds)
    # to_example and the mask code branch on Python values only: autograph would spend seconds
    # rewriting them (the mask functions' source) in every process that builds a pipeline.
    to_example = tf.autograph.experimental.do_not_convert(to_example)
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
