"""Masks: kinds, coverage, shape, dtype, determinism, PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaintlib.errors import MaskError
from inpaintlib.masks import MASK_KINDS, draw_masks, eval_masks, load_mask


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("size", [32, 64, 128])
def test_shape_dtype_and_binary_values(kind, size):
    masks = eval_masks(kind, 6, image_size=size)
    assert masks.shape == (6, size, size, 1) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert (masks.mean(axis=(1, 2, 3)) > 0).all(), "every mask hides something"
    assert (masks.mean(axis=(1, 2, 3)) < 1).all(), "every mask keeps something"


def test_center_is_the_central_half_square():
    mask = eval_masks("center", 1, image_size=64)[0, ..., 0]
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 47, 16, 47)
    assert mask.sum() == 32 * 32
    assert eval_masks("center", 1, image_size=64, hole=0.25)[0].sum() == 16 * 16


def test_random_boxes_are_single_rectangles_of_the_promised_size():
    masks = eval_masks("random-box", 300, image_size=64)[..., 0]
    for mask in masks:
        rows, cols = np.nonzero(mask)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert mask.sum() == height * width, "one filled rectangle"
        assert 16 <= height <= 32 and 16 <= width <= 32
    # Positions vary over the whole image, corners included.
    tops = np.array([np.nonzero(m)[0].min() for m in masks])
    assert tops.min() == 0 and tops.max() >= 30


def test_free_form_strokes_vary_and_scale_with_hole():
    small = eval_masks("free-form", 200, image_size=64, hole=0.25).mean(axis=(1, 2, 3))
    large = eval_masks("free-form", 200, image_size=64, hole=0.5).mean(axis=(1, 2, 3))
    assert 0.03 < small.mean() < large.mean() < 0.4
    assert large.std() > 0.03, "strokes differ in size from mask to mask"
    assert len({m.tobytes() for m in eval_masks("free-form", 50, image_size=64)}) == 50


@pytest.mark.parametrize("kind", ["random-box", "free-form"])
def test_masks_are_reproducible_from_the_seed(kind):
    np.testing.assert_array_equal(eval_masks(kind, 20, 32, seed=5), eval_masks(kind, 20, 32, seed=5))
    assert not np.array_equal(eval_masks(kind, 20, 32, seed=5), eval_masks(kind, 20, 32, seed=6))
    a = draw_masks(kind, 4, 32, seed=(1, 2)).numpy()
    assert not np.array_equal(a, draw_masks(kind, 4, 32, seed=(1, 3)).numpy())


def test_unknown_kind_and_bad_hole():
    with pytest.raises(MaskError, match="unknown mask kind 'square': use one of center, random-box, free-form"):
        eval_masks("square", 1)
    with pytest.raises(MaskError, match="between 0 and 1"):
        eval_masks("center", 1, hole=1.5)


def test_mask_from_png(tmp_path):
    pixels = np.zeros((32, 32), np.uint8)
    pixels[4:10, 20:30] = 255
    pixels[0, 0] = 1  # any non-zero value is missing
    Image.fromarray(pixels).save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png", 32)
    assert mask.shape == (32, 32, 1) and mask.dtype == np.float32
    assert mask.sum() == 6 * 10 + 1
    Image.fromarray(np.stack([pixels] * 3, -1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "rgb.png", 32), mask)


def test_mask_png_of_the_wrong_size_or_unreadable(tmp_path):
    Image.fromarray(np.zeros((50, 40), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(MaskError, match="is 40x50 but the images are 64x64: draw the mask at 64x64"):
        load_mask(tmp_path / "m.png", 64)
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(MaskError, match="cannot read the mask .*bad.png"):
        load_mask(tmp_path / "bad.png", 64)
    with pytest.raises(MaskError, match="cannot read the mask"):
        load_mask(tmp_path / "absent.png", 64)


def test_mixed_draws_every_kind_in_its_proportion_over_a_range_of_sizes():
    from inpaintlib.masks import mask_proportions

    masks = eval_masks("mixed:center=1,random-box=1,free-form=2", 2000, image_size=64)[..., 0]
    is_square = np.array([_centred_square(m) for m in masks])
    is_box = np.array([_one_rectangle(m) for m in masks]) & ~is_square
    # Three kinds, in the asked proportions (binomial noise on 2000 draws is about 1%).
    assert abs(is_square.mean() - 0.25) < 0.04 and abs(is_box.mean() - 0.25) < 0.04
    assert abs((~is_square & ~is_box).mean() - 0.5) < 0.04, "the rest are strokes"
    sides = np.sqrt(masks[is_square].sum(axis=(1, 2)))
    assert sides.min() >= 16 and sides.max() <= 32 and len(np.unique(sides)) >= 10, "sizes from hole/2 to hole"
    assert mask_proportions("mixed") == pytest.approx(dict.fromkeys(MASK_KINDS, 1 / 3))
    centred = eval_masks("mixed:center=1", 50, image_size=64)[..., 0]
    assert all(_centred_square(m) for m in centred), "a kind left out is never drawn"
    np.testing.assert_array_equal(eval_masks("mixed", 30, 32, seed=4), eval_masks("mixed", 30, 32, seed=4))
    assert not np.array_equal(eval_masks("mixed", 30, 32, seed=4), eval_masks("mixed", 30, 32, seed=5))


@pytest.mark.parametrize("spec, fragment", [
    ("mixed:circle=1", "names the unknown mask kind 'circle'"),
    ("mixed:center=-1", "gives center the weight '-1'"),
    ("mixed:center=a", "gives center the weight 'a'"),
    ("mixed:center=0", "draws no mask"),
    ("mixes", "unknown mask kind 'mixes': use one of center, random-box, free-form or mixed"),
])
def test_bad_mixed_specs_name_the_problem(spec, fragment):
    from inpaintlib.masks import check_mask_kind

    with pytest.raises(MaskError, match=fragment):
        check_mask_kind(spec)


def _one_rectangle(mask) -> bool:
    rows, cols = np.nonzero(mask)
    return mask.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def _centred_square(mask) -> bool:
    rows, cols = np.nonzero(mask)
    side = rows.max() - rows.min() + 1
    return (_one_rectangle(mask) and side == cols.max() - cols.min() + 1
            and rows.min() == cols.min() == (mask.shape[0] - side) // 2)
