"""Streaming: a split too large for memory decoded inside tf.data, chosen by the memory budget."""

from __future__ import annotations

import fcntl
import json
import warnings

import numpy as np
import pytest
from conftest import face_like, jpeg_bytes, write_celeba, zip_folder

from inpaintlib.data import (DataWarning, ImageStream, default_memory_budget, load_images, make_dataset, open_images,
                             streaming)
from inpaintlib.errors import DataError

PARTITIONS = [0, 0, 1, 0, 2, 0, 0, 2, 0, 0, 0, 0]  # 9 train, 1 validation, 2 test
ODD_FILES = {"000004.jpg": jpeg_bytes(face_like(3), fmt="PNG"), "000006.jpg": jpeg_bytes(face_like(5), mode="L")}


@pytest.fixture
def celeba(tmp_path):
    return write_celeba(tmp_path / "celeba", PARTITIONS, files=ODD_FILES)


def stream_of(path, **kwargs) -> ImageStream:
    stream = open_images(f"celeba:{path}", "train", image_size=kwargs.pop("image_size", 16), mode="stream", **kwargs)
    assert isinstance(stream, ImageStream)
    return stream


def all_images(dataset) -> np.ndarray:
    return np.stack(list(dataset.as_numpy_iterator()))


def as_set(images: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() for image in images)


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_streamed_images_equal_the_in_memory_decode(tmp_path, celeba, layout):
    path = celeba if layout == "folder" else zip_folder(celeba, tmp_path / "celeba.zip")
    in_memory = load_images(f"celeba:{path}", "train", image_size=24)
    stream = stream_of(path, image_size=24)
    assert len(stream) == len(in_memory) == 9
    # The same decoder runs on each file: equal to the byte, in file order.
    np.testing.assert_array_equal(all_images(stream.dataset()), in_memory)


@pytest.mark.parametrize("stream_cache", [True, False])
def test_shuffled_passes_are_seeded_permutations_of_the_split(celeba, stream_cache):
    in_memory = load_images(f"celeba:{celeba}", "train", image_size=16)
    stream = stream_of(celeba, stream_cache=stream_cache)
    passes = [all_images(stream.dataset(shuffle=True, seed=seed)) for seed in (1, 1, 2)]
    assert all(as_set(images) == as_set(in_memory) for images in passes)
    np.testing.assert_array_equal(passes[0], passes[1])
    assert not np.array_equal(passes[0], passes[2])


def test_auto_mode_switches_at_the_memory_budget(celeba, capsys):
    spec, decoded = f"celeba:{celeba}", 9 * 16 * 16 * 3
    at_budget = open_images(spec, "train", image_size=16, memory_budget=decoded)
    assert isinstance(at_budget, np.ndarray) and len(at_budget) == 9
    assert "in memory" in capsys.readouterr().err
    over = open_images(spec, "train", image_size=16, memory_budget=decoded - 1)
    assert isinstance(over, ImageStream)
    (line,) = capsys.readouterr().err.splitlines()
    assert "streamed from the files" in line and "INPAINTLIB_MEMORY_BUDGET" in line
    # A limit shrinks the estimate: the first 4 images fit where 9 did not.
    assert isinstance(open_images(spec, "train", image_size=16, limit=4, memory_budget=decoded - 1), np.ndarray)
    assert isinstance(open_images(spec, "train", image_size=16, mode="memory", memory_budget=0), np.ndarray)


@pytest.mark.parametrize("text, expected", [("0", 0), ("4096", 4096), ("500M", 500 << 20), ("2.5G", int(2.5 * 2**30)),
                                            ("1 GiB", 1 << 30), ("3gb", 3 << 30)])
def test_memory_budget_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("INPAINTLIB_MEMORY_BUDGET", text)
    assert default_memory_budget() == expected


def test_default_memory_budget_is_a_share_of_the_memory(monkeypatch):
    monkeypatch.delenv("INPAINTLIB_MEMORY_BUDGET", raising=False)
    assert 0 < default_memory_budget() <= streaming._available_memory()


def test_bad_budget_and_mode_name_the_fix(celeba, monkeypatch):
    monkeypatch.setenv("INPAINTLIB_MEMORY_BUDGET", "lots")
    with pytest.raises(DataError, match="INPAINTLIB_MEMORY_BUDGET='lots' is not a size.*4G or 500M"):
        open_images(f"celeba:{celeba}")
    with pytest.raises(DataError, match="unknown data mode 'disk': use one of auto, memory, stream"):
        open_images(f"celeba:{celeba}", mode="disk")


def test_synthetic_faces_stay_in_memory(capsys):
    images = open_images("synthetic", "test", image_size=16, limit=5, mode="stream")
    assert isinstance(images, np.ndarray) and images.shape == (5, 16, 16, 3)
    assert "in memory (generated, never streamed)" in capsys.readouterr().err


def test_limit_takes_the_first_files_of_the_split(celeba):
    stream = stream_of(celeba, limit=3)
    assert stream.names == ["000001.jpg", "000002.jpg", "000004.jpg"]
    np.testing.assert_array_equal(all_images(stream.dataset()), load_images(f"celeba:{celeba}", "train", 16, limit=3))


def test_a_corrupt_file_is_skipped_named_and_warned_about_once(tmp_path):
    good = jpeg_bytes(face_like(1))
    files = {"000002.jpg": good[: len(good) // 3], "000005.jpg": b"", "000007.jpg": b"not an image"}
    root = write_celeba(tmp_path / "c", [0] * 8, files=files)
    with pytest.warns(DataWarning, match="skipped 3 of 8"):
        in_memory = load_images(f"celeba:{root}", "train", image_size=16)
    stream = stream_of(root, stream_cache=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # every pass decodes again: the same files, still one warning
            np.testing.assert_array_equal(all_images(stream.dataset()), in_memory)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "could not be decoded" in messages[0] and "ImageStream.skipped" in messages[0]
    assert sorted(stream.skipped) == ["000002.jpg", "000005.jpg", "000007.jpg"]


def test_a_split_of_only_corrupt_files_stops_with_the_reason(tmp_path):
    root = write_celeba(tmp_path / "c", [0, 0], files={"000001.jpg": b"x", "000002.jpg": b""})
    with pytest.warns(DataWarning), pytest.raises(Exception, match="none of the train images .* could be decoded"):
        all_images(stream_of(root, stream_cache=False).dataset())


@pytest.mark.parametrize("kind", ["center", "random-box", "free-form"])
def test_batches_match_the_in_memory_pipeline_in_shape_and_dtype(celeba, kind):
    in_memory = load_images(f"celeba:{celeba}", "train", image_size=16)
    streamed = make_dataset(stream_of(celeba), mask=kind, batch_size=4, seed=1)
    reference = make_dataset(in_memory, mask=kind, batch_size=4, seed=1)
    assert streamed.element_spec == reference.element_spec
    for (masked, mask), target in streamed.take(5).as_numpy_iterator():  # past the end of the first pass
        assert masked.shape == (4, 16, 16, 3) and mask.shape == (4, 16, 16, 1) and target.shape == (4, 16, 16, 3)
        assert masked.dtype == mask.dtype == target.dtype == np.float32
        np.testing.assert_array_equal(masked, target * (1 - mask))
        as_uint8 = np.round(target * 255).astype(np.uint8)
        assert all(any(np.array_equal(image, face) for face in in_memory) for image in as_uint8)


def test_a_stream_takes_no_fixed_masks(celeba):
    with pytest.raises(DataError, match="fixed masks go with an array of images"):
        make_dataset(stream_of(celeba), mask=np.zeros((9, 16, 16, 1), np.float32))


def cache_folder(private_cache):
    (folder,) = (private_cache / "stream").iterdir()
    return folder


def test_the_disk_cache_is_written_by_a_first_pass_and_read_after(celeba, private_cache, monkeypatch):
    expected = as_set(load_images(f"celeba:{celeba}", "train", image_size=16))
    assert as_set(all_images(stream_of(celeba).dataset(shuffle=True))) == expected
    assert (cache_folder(private_cache) / "images.index").is_file()
    # A later run reads the cache, whatever its seed, and decodes nothing.
    monkeypatch.setattr(ImageStream, "_decode", lambda *a: pytest.fail("decoded again instead of reading the cache"))
    assert as_set(all_images(stream_of(celeba).dataset(shuffle=True, seed=9))) == expected


def test_what_a_killed_writer_left_is_cleared(celeba, private_cache):
    all_images(stream_of(celeba).dataset(shuffle=True))
    folder = cache_folder(private_cache)
    for path in folder.glob("images*"):
        path.unlink()
    # As SIGKILL leaves them: tf.data's lock file (which alone would refuse every later run) and partial data.
    (folder / "images_0.lockfile").write_text("Created at: 1")
    (folder / "images_0.data-00000-of-00001.tempstate123").write_bytes(b"partial")
    assert len(all_images(stream_of(celeba).dataset(shuffle=True))) == 9
    assert sorted(path.name for path in folder.glob("images*")) == ["images.data-00000-of-00001", "images.index"]


def test_a_cache_another_pipeline_is_writing_is_left_alone(celeba, private_cache):
    list(stream_of(celeba).dataset(shuffle=True).take(1))
    folder = cache_folder(private_cache)
    with open(folder / "writer.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (folder / "images_0.lockfile").write_text("the other writer's")
        with pytest.warns(DataWarning, match="not cached on disk .*another pipeline is writing it now"):
            assert len(all_images(stream_of(celeba).dataset(shuffle=True))) == 9
        assert (folder / "images_0.lockfile").exists(), "the live writer's files are not touched"


def test_training_streams_when_the_split_is_over_the_budget(celeba, tmp_path, monkeypatch, capsys):
    from inpaintlib.training import TrainConfig, train

    monkeypatch.setenv("INPAINTLIB_MEMORY_BUDGET", "0")
    # The train split must not be loaded whole; training's own load_images (the validation split) still works.
    monkeypatch.setattr(streaming, "load_images", lambda *a, **k: pytest.fail("loaded the train split into memory"))
    config = TrainConfig(data=f"celeba:{celeba}", image_size=16, batch_size=4, steps=6, checkpoint_every=2,
                         validation_images=1, model_options={"base_filters": 4, "depth": 1})
    trained = train(config, tmp_path / "run", verbose=0)
    assert "streamed from the files" in capsys.readouterr().err
    rows = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["step"] for row in rows] == [2, 4, 6] and all(np.isfinite(row["loss"]) for row in rows)
    assert (tmp_path / "run" / "model.keras").exists() and trained.history == rows


def test_real_sample_streams_like_it_loads(celeba_sample):
    spec = f"celeba:{celeba_sample}"
    stream = open_images(spec, "test", image_size=64, limit=300, mode="stream", stream_cache=False)
    np.testing.assert_array_equal(all_images(stream.dataset()), load_images(spec, "test", image_size=64, limit=300))


@pytest.mark.parametrize("stream_cache", [True, False])
def test_a_stream_skips_into_the_same_batches(celeba, stream_cache):
    """A resumed run's stream (skip=k) continues the uninterrupted one from batch k, across passes."""
    stream = stream_of(celeba, stream_cache=stream_cache)
    whole = make_dataset(stream, "random-box", batch_size=4, seed=7)
    expected = [batch for _, batch in zip(range(8), whole.as_numpy_iterator())][5:]
    resumed = make_dataset(stream, "random-box", batch_size=4, seed=7, skip=5)
    got = [batch for _, batch in zip(range(3), resumed.as_numpy_iterator())]
    for (masked_a, masks_a), targets_a in expected:
        (masked_b, masks_b), targets_b = got.pop(0)
        np.testing.assert_array_equal(targets_b, targets_a)
        np.testing.assert_array_equal(masks_b, masks_a)
