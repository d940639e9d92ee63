"""Shared fixtures: tiny CelebA layouts written on the fly, and the real sample when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker per core already keeps every core busy: one thread each for TensorFlow and oneDNN,
    # here and in the kernels and commands the tests start, instead of each worker's threads
    # fighting the others' for the same cores (make test ran a fifth faster on 2 cores).
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
SAMPLE = Path(os.environ.get("CELEBA_SAMPLE", REPO.parent / "shared" / "data" / "celeba-sample"))


#: The test modules that use the session's smoke book (built in about a minute): one worker runs them all.
SMOKE_BOOK_MODULES = {"tests/test_book.py", "tests/test_browser.py", "tests/test_executed_notebooks.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Spread the tests over the xdist workers one by one, but the smoke book's all to one worker, so
    that it is built once. (xdist's own grouping, --dist loadgroup, renames node ids, which pytest 9
    no longer lets it do.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SmokeBookOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return "smoke book" if module in SMOKE_BOOK_MODULES else nodeid

    return SmokeBookOnOneWorker(config, log)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test caches into its own folder, never the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("INPAINTLIB_CACHE", str(cache))
    monkeypatch.delenv("CELEBA_DIR", raising=False)
    return cache


@pytest.fixture
def celeba_sample() -> Path:
    """The 8,000 real CelebA images in ../shared, or a skip that says why."""
    if not (SAMPLE / "list_eval_partition.txt").is_file():
        pytest.skip(f"the real CelebA sample is not at {SAMPLE} (set CELEBA_SAMPLE to use another)")
    return SAMPLE


def copy_book(target: Path) -> Path:
    """Copy the book's sources (chapters, _config.yml, _toc.yml, the pinned browser runtime's
    package.json and lock) into ``target``."""
    shutil.copytree(REPO / "book", target / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("_config.yml", "_toc.yml", "package.json", "package-lock.json"):
        shutil.copy2(REPO / name, target / name)
    return target


def build(root: Path, env_update: dict, *args: str) -> subprocess.CompletedProcess:
    """``inpaint book --profile smoke`` on the book in ``root``; fails the test with the log's tail."""
    env = {**os.environ, **env_update}
    command = [sys.executable, "-m", "inpaintlib.cli", "book", "--profile", "smoke", "--root", str(root), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def glued(notebook: Path, name: str):
    """The value a chapter glued under ``name``; fails the test when it glued nothing so named."""
    from inpaintlib.book import ChapterError
    from inpaintlib.book import glued as read_glued

    try:
        return read_glued(notebook, name)
    except ChapterError as error:
        raise AssertionError(str(error)) from None


def injected(notebook: Path) -> dict:
    """The parameters papermill injected into an executed notebook, as its metadata records them."""
    import json

    return json.loads(notebook.read_text())["metadata"]["papermill"]["parameters"]


def execute_chapter(name: str, target: Path, **parameters) -> Path:
    """Run one chapter with papermill, as a reader changing its parameters would; the executed copy."""
    import papermill

    output = target / f"{name}.ipynb"
    papermill.execute_notebook(str(REPO / "book" / f"{name}.ipynb"), str(output), parameters=parameters,
                               cwd=str(target), kernel_name="python3", progress_bar=False)
    return output


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """The smoke book on synthetic faces, built once per test session; its root folder.

    ``_build/html/`` holds the site, ``_build/executed/book/`` the executed chapters,
    ``build-stderr.log`` what the build printed on stderr, ``build-cache.txt`` the path of
    the cache it trained its models into.
    """
    root = copy_book(tmp_path_factory.mktemp("smoke-book"))
    cache = tmp_path_factory.mktemp("smoke-book-cache")
    result = build(root, {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(cache)})
    (root / "build-stderr.log").write_text(result.stderr)
    (root / "build-cache.txt").write_text(str(cache))
    return root


def face_like(index: int, width: int = 178, height: int = 218) -> np.ndarray:
    """A deterministic RGB test picture, different for every index."""
    rng = np.random.default_rng(index)
    x = np.arange(width)
    stripes = 30 * np.sin(x / (5 + index % 7))[None, :, None]
    picture = rng.integers(40, 220, size=3) + np.zeros((height, 1, 1)) + stripes
    return np.clip(picture, 0, 255).astype(np.uint8)


def jpeg_bytes(picture: np.ndarray, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(picture).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def write_celeba(
    root: Path,
    partitions: list[int],
    csv: bool = False,
    kaggle: bool = False,
    files: dict[str, bytes] | None = None,
    extra_lines: list[str] = (),
) -> Path:
    """Write a CelebA folder: images 000001.jpg ... with the given partitions, and the partition file.

    ``files`` replaces or adds image files by name (corrupt ones, PNGs...); ``extra_lines`` are
    appended to the partition file.
    """
    image_dir = root / "img_align_celeba"
    if kaggle:
        image_dir = image_dir / "img_align_celeba"
    image_dir.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(partitions))]
    contents = {name: jpeg_bytes(face_like(i)) for i, name in enumerate(names)}
    contents.update(files or {})
    for name, data in contents.items():
        (image_dir / name).write_bytes(data)
    lines = [f"{name},{p}" if csv else f"{name} {p}" for name, p in zip(names, partitions)] + list(extra_lines)
    if csv:
        (root / "list_eval_partition.csv").write_text("image_id,partition\n" + "\n".join(lines) + "\n")
    else:
        (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """Zip a folder's content, each member under ``prefix`` (JPEGs stored, as CelebA zips do)."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + str(path.relative_to(folder)))
    return target


@pytest.fixture(scope="session")
def tiny_unet(tmp_path_factory) -> Path:
    """A U-Net folder trained once per session (4 steps at 32x32), for tests that use a model."""
    from inpaintlib.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("tiny-unet") / "unet"
    config = TrainConfig(model="unet", data="synthetic", image_size=32, steps=4, batch_size=4, limit=16,
                         validation_images=4, checkpoint_every=2, model_options={"base_filters": 4, "depth": 2})
    with pytest.MonkeyPatch.context() as patch:  # its own cache, as every test has
        patch.setenv("INPAINTLIB_CACHE", str(folder.parent / "cache"))
        train(config, folder, verbose=0)
    return folder


@pytest.fixture(scope="session")
def tiny_vaegan(tmp_path_factory) -> Path:
    """A VAE-GAN folder trained once per session (4 steps at 32x32): for tests that use a model,
    not for those of training itself."""
    from inpaintlib.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("tiny-vaegan") / "vaegan"
    config = TrainConfig(model="vaegan", data="synthetic", image_size=32, steps=4, batch_size=4, limit=16,
                         validation_images=4, checkpoint_every=2,
                         # No smooth start: from its zero-initialised correction, 4 steps would leave
                         # every draw the same to the grey level.
                         model_options={"latent_dim": 8, "base_filters": 4, "smooth_start": False})
    with pytest.MonkeyPatch.context() as patch:  # its own cache, as every test has
        patch.setenv("INPAINTLIB_CACHE", str(folder.parent / "cache"))
        train(config, folder, verbose=0)
    return folder
