"""Metrics on hand-made arrays with known answers, and evaluate's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from inpaintlib.errors import DataError
from inpaintlib.metrics import (
    FACE_KEYS,
    PSNR_CAP,
    RESULT_KEYS,
    bootstrap_interval,
    composite,
    diversity,
    evaluate,
    l1_hole,
    paired_bootstrap_interval,
    psnr,
    psnr_hole,
    sharpness,
    ssim,
    ssim_hole,
)

N, S = 4, 32


@pytest.fixture
def images():
    """Float images in [0, 1]: smooth shading plus fine stripes (period 4 pixels) that a blur removes."""
    y, x = np.mgrid[0:S, 0:S] / S
    base = np.stack([np.sin(7 * x + 3 * y), np.cos(5 * y - 2 * x), np.sin(4 * x * y + 1)], -1)
    stripes = np.sin(2 * np.pi * (x + y) * S / 4)[..., None]
    return np.stack([0.5 + 0.3 * np.roll(base, 3 * i, axis=1) + 0.1 * stripes for i in range(N)])


@pytest.fixture
def masks():
    """A square hole in the middle of every image."""
    masks = np.zeros((N, S, S, 1), np.float32)
    masks[:, 8:24, 8:24] = 1
    return masks


def test_identical_images_score_perfectly(images, masks):
    assert (psnr(images, images) == PSNR_CAP).all()
    assert (psnr_hole(images, images, masks) == PSNR_CAP).all()
    np.testing.assert_allclose(ssim(images, images), 1.0)
    np.testing.assert_allclose(ssim_hole(images, images, masks), 1.0)
    assert (l1_hole(images, images, masks) == 0).all()
    for result in (psnr(images, images), ssim(images, images), ssim_hole(images, images, masks),
                   l1_hole(images, images, masks)):
        assert result.shape == (N,) and result.dtype == np.float64


def test_a_constant_error_gives_the_exact_psnr(images, masks):
    targets = np.full((N, S, S, 3), 0.25)
    np.testing.assert_allclose(psnr(targets + 0.1, targets), 20.0)  # MSE 0.01
    np.testing.assert_allclose(psnr(targets + 0.5, targets), 10 * np.log10(4))
    np.testing.assert_allclose(psnr_hole(targets + 0.01, targets, masks), 40.0)
    np.testing.assert_allclose(l1_hole(targets - 0.2, targets, masks), 0.2)


def camera_and_noisy_copy():
    """scikit-image's camera and the noisy copy its IPOL tests make, as (1, 512, 512, 3) uint8.

    As in skimage/metrics/tests/test_simple_metrics.py: ``np.random.seed(5)``, Gaussian noise of
    sigma 20 grey levels, clipped to 0..255 and cast back to uint8 (a seeded RandomState draws
    the same numbers without touching NumPy's global one). The grey image is repeated into the
    three channels: identical channels give the single-channel value.
    """
    from skimage import data

    camera = data.camera()
    noise = 20.0 * np.random.RandomState(5).randn(*camera.shape)
    noisy = np.clip(camera + noise, 0, 255).astype(camera.dtype)
    return tuple(np.repeat(image[None, ..., None], 3, axis=-1) for image in (camera, noisy))


def test_psnr_matches_ipol_imdiff():
    # IPOL's independent imdiff tool (https://www.ipol.im/pub/art/2011/g_lmii/) on these two images,
    # the value and tolerance of scikit-image's test_PSNR_vs_IPOL (decimal=4).
    camera, noisy = camera_and_noisy_copy()
    assert psnr(noisy, camera)[0] == pytest.approx(22.409353363576034, abs=1.5e-4)


def test_ssim_matches_ipol_imdiff():
    # `imdiff -m mssim` on the same pair: the value and tolerance of scikit-image's
    # test_gaussian_structural_similarity_vs_IPOL, which Wang et al.'s settings must reproduce.
    camera, noisy = camera_and_noisy_copy()
    assert ssim(noisy, camera)[0] == pytest.approx(0.357959091663361, abs=1.5e-3)


def test_ssim_hole_is_the_mean_of_the_ssim_map_over_the_hole(images, masks):
    from skimage.metrics import structural_similarity

    damaged = images.copy()
    damaged[:, 8:24, 8:24] = 0.5  # a flat grey hole
    scores = ssim_hole(damaged, images, masks)
    assert (scores < 0.5).all() and (scores < ssim(damaged, images)).all()
    garbage = np.where(masks == 1, damaged, 1.0 - images)  # what a method writes outside the hole does not count
    np.testing.assert_allclose(ssim_hole(garbage, images, masks), scores)

    # By hand on one small image: skimage's full map, averaged over the channels, over the hole pixels.
    target = np.random.default_rng(0).random((16, 16, 3))
    output = np.clip(target + 0.2 * np.random.default_rng(1).standard_normal(target.shape), 0, 1)
    hole = np.zeros((16, 16), bool)
    hole[2:7, 3:14] = True
    output[~hole] = target[~hole]
    _, full_map = structural_similarity(output, target, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0, channel_axis=-1, full=True)
    expected = full_map.mean(axis=-1)[hole].mean()
    assert ssim_hole(output[None], target[None], hole[None, ..., None])[0] == pytest.approx(expected, rel=1e-12)


def test_uint8_images_are_scaled_to_0_1():
    targets = np.zeros((1, 8, 8, 3), np.uint8)
    np.testing.assert_allclose(psnr(targets + 51, targets), 20 * np.log10(5))  # error 0.2


def test_hole_metrics_ignore_pixels_outside_the_hole(images, masks):
    off = images.copy()
    off[:, 8:24, 8:24] = np.clip(off[:, 8:24, 8:24] + 0.1, 0, 1)  # error only inside the hole
    garbage = np.where(masks == 1, off, 1.0 - images)  # and large errors outside it
    for metric in (psnr_hole, l1_hole, sharpness):
        np.testing.assert_allclose(metric(garbage, images, masks), metric(off, images, masks))
    assert (psnr(garbage, images) < psnr(off, images)).all(), "the whole-image PSNR does see them"


def test_hole_metrics_average_over_each_image_own_hole(masks):
    targets = np.full((N, S, S, 3), 0.5)
    masks = masks.copy()
    masks[1] = 0
    masks[1, :2, :4] = 1  # a hole of 8 pixels in a corner
    outputs = targets.copy()
    outputs[1, :2, :4, 0] += 0.3  # one channel of three off by 0.3
    assert psnr_hole(outputs, targets, masks)[1] == pytest.approx(10 * np.log10(1 / (0.09 / 3)))
    assert l1_hole(outputs, targets, masks)[1] == pytest.approx(0.1)
    np.testing.assert_array_equal(psnr_hole(outputs, targets, masks)[[0, 2, 3]], PSNR_CAP)


def test_composite_keeps_the_known_pixels(images, masks):
    fills = np.random.default_rng(0).random(images.shape)
    result = composite(fills, images, masks)
    assert result.shape == images.shape and result.dtype == np.float32
    known = np.broadcast_to(masks == 0, images.shape)
    np.testing.assert_allclose(result[known], images[known], atol=1e-7)
    np.testing.assert_allclose(result[~known], fills[~known], atol=1e-7)


def test_sharpness_is_one_for_real_and_low_for_blur_and_flat(images, masks):
    np.testing.assert_allclose(sharpness(images, images, masks), 1.0)
    blurred = composite(uniform_filter(images, size=(1, 5, 5, 1)), images, masks)
    assert (sharpness(blurred, images, masks) < 0.8).all()
    flat = composite(np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape), images, masks)
    # Only the seam at the hole's border has a gradient.
    assert (sharpness(flat, images, masks) < 0.4).all()
    assert (sharpness(flat, images, masks) < sharpness(blurred, images, masks)).all()


def test_sharpness_of_a_flat_hole_does_not_divide_by_zero(masks):
    grey = np.full((N, S, S, 3), 0.5)
    np.testing.assert_allclose(sharpness(grey, grey, masks), 1.0)
    noisy = np.clip(grey + 0.1 * np.random.default_rng(0).standard_normal(grey.shape), 0, 1)
    assert np.isfinite(sharpness(noisy, grey, masks)).all()


def test_diversity(images, masks):
    same = np.stack([images] * 3)
    assert (diversity(same, masks) == 0).all()
    shifted = np.stack([np.full_like(images, 0.1), np.full_like(images, 0.4), np.full_like(images, 0.5)])
    # Pairs differ by 0.3, 0.4 and 0.1 everywhere: mean 0.8 / 3.
    np.testing.assert_allclose(diversity(shifted, masks), 0.8 / 3)
    outside = shifted.copy()
    outside[:, :, :4] = np.random.default_rng(0).random(outside[:, :, :4].shape)  # outside the hole
    np.testing.assert_allclose(diversity(outside, masks), 0.8 / 3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda i, m: psnr(i, i[:, :16]), "same shape"),
        (lambda i, m: psnr(i * 255, i), r"\[0, 1\]"),
        (lambda i, m: psnr(i.astype(np.int32), i), "uint8"),
        (lambda i, m: psnr(i[0], i[0]), r"\(N, H, W, 3\)"),
        (lambda i, m: psnr_hole(i, i, m * 0.5), "only 0"),
        (lambda i, m: l1_hole(i, i, m[:, :8]), "shape"),
        (lambda i, m: l1_hole(i, i, np.zeros_like(m)), "hide no pixel"),
        (lambda i, m: diversity(i[None], m), "K >= 2"),
        (lambda i, m: ssim(i[:, :10, :10], i[:, :10, :10]), "at least 11x11"),
        (lambda i, m: ssim_hole(i[:, :10], i[:, :10], m[:, :10]), "at least 11x11"),
    ],
)
def test_bad_input_raises_data_error(images, masks, call, message):
    with pytest.raises(DataError, match=message):
        call(images, masks)


# --- evaluate -------------------------------------------------------------


class Truth:
    """A deterministic method that knows the answer (the test gives it the real images)."""

    name = "truth"

    def __init__(self, truth, outside=None):
        self.truth, self.outside = truth, outside

    def inpaint(self, images, masks):
        rows = [self._row(image, mask) for image, mask in zip(images, masks)]
        return np.stack(rows)

    def _row(self, image, mask):
        # Recognise the image by its known pixels.
        i = int(np.argmin(np.abs(self.truth * (1 - mask) - image).sum(axis=(1, 2, 3))))
        if self.outside is None:
            return self.truth[i]
        return np.where(mask == 1, self.truth[i], self.outside[i])


class NoisyFill:
    """Grey plus fresh noise: a method with a random ``sample``."""

    name = "noisy"

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def inpaint(self, images, masks):
        return np.clip(0.5 + 0.1 * self.rng.standard_normal(images.shape), 0, 1)

    def sample(self, images, masks, k):
        return np.stack([self.inpaint(images, masks) for _ in range(k)])


def test_evaluate_returns_the_promised_keys_as_plain_values(images, masks):
    result = evaluate(NoisyFill(), images, masks, batch_size=3)
    assert tuple(result) == RESULT_KEYS
    assert json.loads(json.dumps(result)) == result
    assert result["method"] == "noisy" and result["n"] == N
    # The face scores are asked for (face_images): by default they are not computed, and None.
    assert all(result[key] is None for key in FACE_KEYS)
    assert all(type(result[key]) is float for key in RESULT_KEYS[2:] if key not in FACE_KEYS)
    assert result["seconds_per_image"] > 0


def test_evaluate_averages_per_image_values(images, masks):
    method = NoisyFill()
    fills = np.clip(0.5 + 0.1 * np.random.default_rng(0).standard_normal(images.shape), 0, 1)
    result = evaluate(method, images, masks, batch_size=N)  # one batch: the same draw as fills
    outputs = composite(fills, images, masks)
    assert result["psnr"] == pytest.approx(psnr(outputs, images).mean())
    assert result["psnr_hole"] == pytest.approx(psnr_hole(outputs, images, masks).mean())
    assert result["ssim"] == pytest.approx(ssim(outputs, images).mean())
    assert result["ssim_hole"] == pytest.approx(ssim_hole(outputs, images, masks).mean())
    assert result["l1_hole"] == pytest.approx(l1_hole(outputs, images, masks).mean())
    assert result["sharpness"] == pytest.approx(sharpness(outputs, images, masks).mean())


def test_evaluate_composites_so_outside_the_hole_cannot_count(images, masks):
    honest = evaluate(Truth(images), images, masks, batch_size=3)
    garbage = np.random.default_rng(1).random(images.shape)
    cheat = evaluate(Truth(images, outside=garbage), images, masks, batch_size=3)
    for key in ("psnr", "psnr_hole", "ssim", "ssim_hole", "l1_hole", "sharpness", "diversity"):
        assert cheat[key] == pytest.approx(honest[key]), key
    assert honest["psnr"] == PSNR_CAP and honest["l1_hole"] == 0.0


def test_evaluate_hides_the_hole_from_the_method(images, masks):
    seen = []

    class Spy:
        name = "spy"

        def inpaint(self, batch, batch_masks):
            seen.append((batch.copy(), batch_masks.copy()))
            return batch

    evaluate(Spy(), images, masks, batch_size=3)
    for batch, batch_masks in seen:
        assert batch.dtype == np.float32 and batch_masks.shape == batch.shape[:3] + (1,)
        assert (batch[np.broadcast_to(batch_masks == 1, batch.shape)] == 0).all()


def test_evaluate_measures_diversity(images, masks):
    assert evaluate(Truth(images), images, masks)["diversity"] == 0.0
    assert evaluate(NoisyFill(), images, masks)["diversity"] > 0.05

    class RandomInpaintOnly(NoisyFill):
        sample = None  # no sample(): diversity comes from two inpaint calls

    assert evaluate(RandomInpaintOnly(), images, masks)["diversity"] > 0.05


def test_evaluate_checks_the_method_and_its_output(images, masks):
    class WrongShape:
        name = "wrong"

        def inpaint(self, batch, batch_masks):
            return batch[:, :8]

    class WrongScale(WrongShape):
        def inpaint(self, batch, batch_masks):
            return batch * 2 - 1

    with pytest.raises(TypeError, match="inpaint"):
        evaluate(object(), images, masks)
    with pytest.raises(DataError, match="'wrong'.inpaint must have the shape"):
        evaluate(WrongShape(), images, masks)
    with pytest.raises(DataError, match=r"'wrong'.inpaint must lie in \[0, 1\]"):
        evaluate(WrongScale(), images, masks)
    with pytest.raises(DataError, match="batch_size"):
        evaluate(Truth(images), images, masks, batch_size=0)
    with pytest.raises(DataError, match="diversity_samples"):
        evaluate(NoisyFill(), images, masks, diversity_samples=1)
    with pytest.raises(DataError, match="face_images must be an integer of at least 0"):
        evaluate(NoisyFill(), images, masks, face_images=-1)
    with pytest.raises(DataError, match="face scores need at least 4 images"):
        evaluate(NoisyFill(), images, masks, face_images=2)


def test_score_images_gives_what_evaluate_averages():
    from inpaintlib.metrics import score_images

    images = np.random.default_rng(1).random((6, 16, 16, 3))
    masks = np.zeros((6, 16, 16, 1))
    masks[:, 4:12, 4:12] = 1
    from inpaintlib.baselines import get_baseline

    method = get_baseline("biharmonic")
    scores, means = score_images(method, images, masks), evaluate(method, images, masks)
    assert scores["psnr_hole"].shape == (6,) and scores["outputs"].shape == images.shape
    for key in ("psnr", "psnr_hole", "ssim", "ssim_hole", "l1_hole", "sharpness", "diversity"):
        assert np.mean(scores[key]) == pytest.approx(means[key]), key
    assert all(scores[key] is None and means[key] is None for key in FACE_KEYS)
    np.testing.assert_array_equal(scores["outputs"][masks[..., 0] == 0], images[masks[..., 0] == 0])


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    few, many = rng.normal(10, 2, 50), rng.normal(10, 2, 2000)
    low, high = bootstrap_interval(few)
    assert low < few.mean() < high
    wide, narrow = high - low, np.subtract(*bootstrap_interval(many)[::-1])
    assert narrow < wide / 4, "the interval shrinks like 1/sqrt(n)"
    assert bootstrap_interval(few, seed=3) == bootstrap_interval(few, seed=3)
    with pytest.raises(DataError, match="finite"):
        bootstrap_interval([1.0, np.nan])


def test_paired_bootstrap_interval_agrees_with_scipy():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(0)
    faces = rng.normal(18, 3, 300)
    a, b = faces + rng.normal(0.4, 1.0, 300), faces + rng.normal(0, 1.0, 300)
    ours = paired_bootstrap_interval(a, b, resamples=4000, seed=1)
    theirs = bootstrap((a, b), statistic=lambda x, y: np.mean(x - y), paired=True, method="percentile",
                       n_resamples=4000, confidence_level=0.95, rng=np.random.default_rng(2)).confidence_interval
    # Different random draws, so not equal: each end moves by about 1% of the width between seeds.
    np.testing.assert_allclose(ours, (theirs.low, theirs.high), atol=0.1 * (theirs.high - theirs.low))


def test_a_paired_interval_sees_a_small_consistent_difference_that_unpaired_ones_miss():
    rng = np.random.default_rng(0)
    faces = rng.normal(20, 3, 200)  # faces vary far more than the methods do
    a, b = faces + 0.3 + rng.normal(0, 0.1, 200), faces
    (a_low, a_high), (b_low, b_high) = bootstrap_interval(a), bootstrap_interval(b)
    assert a_low < b_high and b_low < a_high, "the unpaired intervals overlap"
    low, high = paired_bootstrap_interval(a, b)
    assert 0 < low < 0.3 < high, "the paired one excludes 0 and covers the true difference"
    assert paired_bootstrap_interval(b, a) == pytest.approx((-high, -low))


def test_paired_bootstrap_interval_rejects_unpaired_or_non_finite_scores():
    with pytest.raises(DataError, match="same images.*3 and 2"):
        paired_bootstrap_interval([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DataError, match="b holds 1 non-finite.*image 1"):
        paired_bootstrap_interval([1.0, 2.0], [1.0, np.inf])
