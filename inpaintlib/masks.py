"""Masks: where pixels are missing.

A mask is float32 (H, W, 1) with 1 for a missing pixel and 0 for a known one.
Three kinds, drawn with TensorFlow ops so that a tf.data pipeline draws them
itself, and seeded statelessly so the same seed gives the same holes (the
module imports TensorFlow only when it draws, so that checking a mask kind
on the command line stays instant):

- ``center``: a central square, ``hole`` times the image side (half by default);
- ``random-box``: one rectangle per image, each side uniform in
  [hole / 2, hole] times the image side, anywhere inside the image (the
  original U-Net recipe's random blank box);
- ``free-form``: random brush strokes, polylines of varying width, whose size
  grows with ``hole``;
- ``mixed``: each image's hole drawn from the three kinds above, its size
  uniform in [hole / 2, hole]: the distribution to train a network on that
  must fill whatever hole a user draws. ``mixed:center=1,random-box=2,free-form=2``
  sets the proportions of the kinds (they need not sum to 1; a kind left out
  is never drawn); plain ``mixed`` draws the three equally often.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image

from inpaintlib.errors import MaskError

#: The single kinds; a ``mixed`` spec (see :func:`.mask_proportions`) draws from them.
MASK_KINDS = ("center", "random-box", "free-form")
MIXED = "mixed"
#: Seed of the evaluation masks, so that every method is scored on the same holes.
EVAL_SEED = 2016
# Free-form brush: up to this many strokes per mask, each with up to this many segments.
_MAX_STROKES = 4
_MAX_SEGMENTS = 6


def check_mask_kind(kind: str) -> str:
    """Return ``kind`` if it names a mask kind or a ``mixed`` spec, else raise :class:`.MaskError`."""
    mask_proportions(kind)  # raises, naming the problem
    return kind


def is_mask_kind(spec) -> bool:
    """Whether ``spec`` names masks to draw (a kind or a ``mixed`` spec) rather than a mask file."""
    return isinstance(spec, str) and (spec in MASK_KINDS or spec.split(":")[0] == MIXED)


def mask_proportions(spec: str) -> dict[str, float]:
    """The share of each single kind a mask spec draws, summing to 1.

    Examples
    --------
    >>> mask_proportions("mixed:center=1,free-form=3")
    {'center': 0.25, 'random-box': 0.0, 'free-form': 0.75}
    >>> mask_proportions("random-box")
    {'center': 0.0, 'random-box': 1.0, 'free-form': 0.0}
    """
    if spec in MASK_KINDS:
        return {kind: float(kind == spec) for kind in MASK_KINDS}
    name, _, listed = spec.partition(":") if isinstance(spec, str) else (spec, "", "")
    if name != MIXED:
        raise MaskError(f"unknown mask kind {spec!r}: use one of {', '.join(MASK_KINDS)} or {MIXED}")
    if not listed:
        return {kind: 1 / len(MASK_KINDS) for kind in MASK_KINDS}
    weights = dict.fromkeys(MASK_KINDS, 0.0)
    example = f"{MIXED}:center=1,random-box=2,free-form=2"
    for item in listed.split(","):
        kind, _, weight = item.partition("=")
        if kind not in MASK_KINDS:
            raise MaskError(f"{spec!r} names the unknown mask kind {kind!r}: give weights of "
                            f"{', '.join(MASK_KINDS)}, as in {example}")
        try:
            weights[kind] = float(weight)
        except ValueError:
            weights[kind] = -1.0
        if not weights[kind] >= 0:
            raise MaskError(f"{spec!r} gives {kind} the weight {weight!r}: weights are numbers, 0 or more, "
                            f"as in {example}")
    total = sum(weights.values())
    if total <= 0:
        raise MaskError(f"{spec!r} draws no mask: give at least one kind a positive weight, as in {example}")
    return {kind: weight / total for kind, weight in weights.items()}


def draw_masks(kind: str, n, image_size: int = 64, seed=(0, 0), hole: float = 0.5):
    """Draw ``n`` masks of one kind.

    Parameters
    ----------
    kind : {"center", "random-box", "free-form"} or a ``mixed`` spec
    n : int or scalar int tensor
        How many masks.
    image_size : int
        Side of the square masks.
    seed : pair of ints or int tensor of shape (2,)
        Stateless seed: the same seed gives the same masks.
    hole : float
        Size of the hole as a fraction of the image side, in (0, 1); the
        largest size for ``mixed``.

    Returns
    -------
    tf.Tensor
        float32 (n, image_size, image_size, 1); 1 marks a missing pixel.

    Examples
    --------
    >>> masks = draw_masks("center", 2, image_size=8)
    >>> float(masks.numpy().mean())
    0.25
    """
    import tensorflow as tf

    check_mask_kind(kind)
    check_hole(hole)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if kind in MASK_KINDS:
        return _draw(kind, n, image_size, tf.fill(tf.reshape(n, [1]), float(hole)), seed)
    return _mixed(kind, n, image_size, hole, seed)


def _draw(kind: str, n, image_size: int, holes, seed):
    """Masks of one kind, each with its own size ``holes`` (n,) float32."""
    if kind == "center":
        return _center(n, image_size, holes)
    if kind == "random-box":
        return _random_boxes(n, image_size, holes, seed)
    return _free_form(n, image_size, holes, seed)


def _mixed(spec: str, n, image_size: int, hole: float, seed):
    """Each image's kind drawn with the spec's proportions, its size uniform in [hole / 2, hole]."""
    import tensorflow as tf

    shares = mask_proportions(spec)
    kind_seed, size_seed, *draw_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2 + len(shares)))
    logits = tf.math.log([list(shares.values())])
    kinds = tf.random.stateless_categorical(logits, n, kind_seed)[0]
    holes = tf.random.stateless_uniform(tf.reshape(n, [1]), size_seed, hole / 2, hole)
    masks = tf.zeros(tf.stack([n, image_size, image_size, 1]))
    for index, (kind, share) in enumerate(shares.items()):
        if share > 0:  # every kind is drawn for the whole batch, then each image keeps its own
            chosen = tf.equal(kinds, index)[:, None, None, None]
            masks = tf.where(chosen, _draw(kind, n, image_size, holes, draw_seeds[index]), masks)
    return masks


def eval_masks(kind: str, n: int, image_size: int = 64, seed: int = EVAL_SEED, hole: float = 0.5) -> np.ndarray:
    """The fixed masks every method is evaluated on, as a NumPy array (n, S, S, 1).

    Examples
    --------
    >>> a = eval_masks("free-form", 3, image_size=16)
    >>> bool((a == eval_masks("free-form", 3, image_size=16)).all())
    True
    """
    return draw_masks(kind, n, image_size, seed=(seed, 0), hole=hole).numpy()


def check_hole(hole: float) -> float:
    """Return ``hole`` if it is a usable hole size (a fraction of the image side), else raise MaskError."""
    if isinstance(hole, bool) or not isinstance(hole, (int, float, np.number)) or not 0 < hole < 1:
        raise MaskError(f"hole must be a fraction of the image side between 0 and 1, not {hole!r}")
    return hole


def load_mask(path: str | Path, image_size: int) -> np.ndarray:
    """Read a mask from an image file: non-zero pixels are missing.

    Returns float32 (image_size, image_size, 1). A file that cannot be read or
    whose size differs from ``image_size`` raises :class:`.MaskError`.
    """
    if not Path(path).exists():
        raise MaskError(
            f"cannot read the mask {path} (no such file): name a mask kind ({', '.join(MASK_KINDS)}) "
            f"or a PNG whose non-zero pixels mark the hole"
        )
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError) as error:
        raise MaskError(f"cannot read the mask {path} ({error}): give a PNG whose non-zero pixels mark the hole") from None
    if pixels.shape != (image_size, image_size):
        height, width = pixels.shape
        raise MaskError(
            f"the mask {path} is {width}x{height} but the images are {image_size}x{image_size}: "
            f"draw the mask at {image_size}x{image_size} (non-zero = missing)"
        )
    return (pixels > 0).astype(np.float32)[..., None]


def _sides(holes, image_size: int):
    """Hole sizes (n,) as whole pixels, at least 1 (round half to even, as Python's round)."""
    import tensorflow as tf

    return tf.maximum(1, tf.cast(tf.round(holes * image_size), tf.int32))


def _center(n, image_size: int, holes):
    import tensorflow as tf

    side = _sides(holes, image_size)[:, None]
    start = (image_size - side) // 2
    grid = tf.range(image_size)[None]
    line = (grid >= start) & (grid < start + side)  # (n, S)
    return tf.cast(line[:, :, None, None] & line[:, None, :, None], tf.float32)


def _random_boxes(n, image_size: int, holes, seed):
    import tensorflow as tf

    size_seed, position_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    largest = _sides(holes, image_size)[:, None]
    smallest = tf.maximum(1, largest // 2)
    # Each side uniform over the whole pixels smallest..largest.
    spread = tf.cast(largest - smallest + 1, tf.float32)
    sides = smallest + tf.cast(tf.random.stateless_uniform(tf.stack([n, 2]), size_seed) * spread, tf.int32)
    corners = tf.cast(
        tf.random.stateless_uniform(tf.stack([n, 2]), position_seed) * tf.cast(image_size - sides + 1, tf.float32),
        tf.int32,
    )
    grid = tf.range(image_size)
    rows = (grid[None] >= corners[:, :1]) & (grid[None] < corners[:, :1] + sides[:, :1])
    cols = (grid[None] >= corners[:, 1:]) & (grid[None] < corners[:, 1:] + sides[:, 1:])
    boxes = tf.cast(rows[:, :, None] & cols[:, None, :], tf.float32)
    return boxes[..., None]


def _free_form(n, image_size: int, holes, seed):
    """Brush strokes: random walks of line segments with a round brush."""
    import tensorflow as tf

    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    strokes, segments = _MAX_STROKES, _MAX_SEGMENTS
    uniform = lambda shape, s, low=0.0, high=1.0: tf.random.stateless_uniform(  # noqa: E731
        tf.concat([[n], shape], 0), s, low, high
    )
    scale = holes[:, None, None] * image_size  # lengths and widths grow with the hole size
    start = uniform([strokes, 1, 2], seeds[0], 0.2 * image_size, 0.8 * image_size)
    heading = uniform([strokes, 1], seeds[1], 0.0, 2 * math.pi) + tf.cumsum(
        uniform([strokes, segments], seeds[2], -0.6 * math.pi, 0.6 * math.pi), axis=2
    )
    length = uniform([strokes, segments], seeds[3], 0.15, 0.4) * scale
    steps = tf.stack([tf.cos(heading), tf.sin(heading)], -1) * length[..., None]
    points = tf.clip_by_value(tf.concat([start, start + tf.cumsum(steps, axis=2)], 2), 0.0, image_size - 1.0)
    radius = uniform([strokes], seeds[4], 0.05, 0.14) * scale[:, :, 0]
    # Each mask has 1..strokes strokes: a stroke that is not drawn gets radius -1.
    count = tf.floor(uniform([1], seeds[5], 1.0, strokes + 1.0))
    radius = tf.where(tf.range(strokes, dtype=tf.float32)[None] < count, radius, -1.0)
    # Segments as (n, strokes * segments, 2) start and end points, each with its stroke's radius.
    starts = tf.reshape(points[:, :, :-1], tf.stack([n, strokes * segments, 2]))
    ends = tf.reshape(points[:, :, 1:], tf.stack([n, strokes * segments, 2]))
    radii = tf.repeat(radius, segments, axis=1)
    return _segment_painter()(starts, ends, radii, image_size)


@functools.cache
def _segment_painter():
    """:func:`._paint_segments` compiled with XLA, which fuses the distance computation into one
    loop: 30x faster on a CPU, which keeps free-form masks from slowing the training pipeline."""
    import tensorflow as tf

    return tf.function(_paint_segments, jit_compile=True, autograph=False)  # its loop is tf.while_loop already


def _paint_segments(starts, ends, radii, image_size: int):
    """Paint every pixel within ``radii`` of a segment: (n, S, S, 1) masks."""
    import tensorflow as tf

    grid = tf.range(image_size, dtype=tf.float32)
    pixels = tf.reshape(tf.stack(tf.meshgrid(grid, grid, indexing="ij"), -1), [1, -1, 2])  # (1, S*S, 2)
    n = tf.shape(starts)[0]

    def paint_one(j, painted):
        a, b, radius = starts[:, j][:, None], ends[:, j][:, None], radii[:, j][:, None]
        ab = b - a
        t = tf.reduce_sum((pixels - a) * ab, -1) / tf.maximum(tf.reduce_sum(ab * ab, -1), 1e-6)
        nearest = a + tf.clip_by_value(t, 0.0, 1.0)[..., None] * ab
        inside = tf.reduce_sum(tf.square(pixels - nearest), -1) <= tf.square(radius) * tf.sign(radius)
        return j + 1, tf.maximum(painted, tf.cast(inside, tf.float32))

    # A loop over segments keeps memory at one (n, S*S) map and the compiled program small.
    _, painted = tf.while_loop(
        lambda j, _: j < tf.shape(starts)[1], paint_one, (0, tf.zeros(tf.stack([n, image_size * image_size])))
    )
    return tf.reshape(painted, tf.stack([n, image_size, image_size, 1]))
