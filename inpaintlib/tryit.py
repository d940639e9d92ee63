"""The assets of the book's "Try it" page: the chapters' models in ONNX, test faces, the browser runtime.

The page (``book/try_it.md`` and ``book/_static/try_it.js``) lets a reader paint a hole on a face
and fill it with the U-Net and the VAE-GAN, in the browser, with onnxruntime-web's WebAssembly
backend on one thread (GitHub Pages cannot send the cross-origin isolation headers that threads
need). :func:`write_assets` writes what it loads into one folder, ``_static/try/`` of the built
book:

- ``unet.onnx``, ``vaegan.onnx`` and their manifests: the models chapter 4 compared, exported by
  :func:`.export.to_onnx` with half-precision weights (half the download);
- ``faces.json``: the first test faces of the chapters' data, with its label (CelebA, or the
  synthetic stand-in);
- ``ort/``: the pinned onnxruntime-web (:data:`RUNTIME_VERSION`, ``package.json``), copied from
  ``node_modules`` after ``npm ci`` and checked against its pinned hash. Where npm is missing, the page loads the same file from a CDN
  with its Subresource Integrity hash (:data:`RUNTIME_INTEGRITY`), and the build says so;
- ``config.json``: what the page reads first, naming all of the above.

Exports are kept in ``_build/try/`` by model folder (its name is the model's cache key), so a
rebuild exports only models it has not exported before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from inpaintlib.errors import ConfigError
from inpaintlib.files import atomic_write

#: The onnxruntime-web that package.json pins.
RUNTIME_VERSION = "1.17.3"
#: Its single-threaded WebAssembly build, the script and the binary it loads (SIMD).
RUNTIME_FILES = ("ort.wasm-core.min.js", "ort-wasm-simd.wasm")
#: The script's Subresource Integrity hash, so a page that loads it from the CDN runs only this file.
RUNTIME_INTEGRITY = "sha384-aduuBTdLbjSEs6ddSYmvu5W6tqU4il0a64HOrOYMYuvZEKUU+4yV2gsWpHBMZibS"
RUNTIME_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{RUNTIME_VERSION}/dist/"
#: Test faces the page offers ("next face").
FACES = 8


def write_assets(models: dict[str, str | Path], data: str, target: str | Path, root: str | Path,
                 faces: int = FACES) -> dict:
    """Write the page's assets into ``target``; the config the page reads (also ``target/config.json``).

    Parameters
    ----------
    models : dict
        ``{"unet": folder, "vaegan": folder}``: the trained models to offer.
    data : str
        The data spec the chapters ran on; the page shows its first test faces.
    target : path
        The folder the page loads from (``_static/try/`` of the staged book).
    root : path
        The book's folder: ``package.json`` and ``node_modules/`` are there, exports are kept in
        its ``_build/try/``.
    faces : int
        How many test faces the page offers.
    """
    from inpaintlib.data import load_images, parse_data_spec

    root, target = Path(root), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    source = parse_data_spec(data)
    config = {"label": source.label, "models": {}, "runtime": _runtime(root, target)}
    size = None
    for kind, folder in models.items():
        manifest = _exported(Path(folder), root / "_build" / "try", source)
        for name in (manifest["file"], Path(manifest["file"]).with_suffix(".json").name):
            shutil.copy2(Path(manifest["folder"]) / name, target / name)
        size = manifest["image_size"]
        config["models"][kind] = {key: manifest[key] for key in ("file", "inputs", "image_size", "latent_dim",
                                                                 "temperature") if key in manifest}
    images = load_images(source, "test", image_size=size or 64, limit=faces)
    with atomic_write(target / "faces.json") as f:
        f.write(json.dumps({"size": images.shape[1], "label": source.label,
                            "faces": [base64.b64encode(face.tobytes()).decode() for face in images]}).encode())
    config["faces"] = "faces.json"
    with atomic_write(target / "config.json") as f:
        f.write(json.dumps(config, indent=1).encode())
    return config


def _exported(folder: Path, kept: Path, source) -> dict:
    """The model in ``folder`` exported once, into ``kept/<folder's name>/``; its manifest, with its folder."""
    from inpaintlib.data import load_images
    from inpaintlib.export import CHECK_IMAGES, to_onnx

    out = kept / folder.name
    manifests = [json.loads(path.read_text()) for path in out.glob("*.json")]
    if manifests and (out / manifests[0]["file"]).is_file():
        manifest = manifests[0]
    else:
        from inpaintlib.config import read_model_folder

        size = read_model_folder(folder)[0].image_size
        checks = load_images(source, "validation", image_size=size, limit=CHECK_IMAGES)
        manifest = to_onnx(folder, out, checks, float16=True)
        print(f"Try it: exported {folder.name} ({(out / manifest['file']).stat().st_size / 1e6:.1f} MB, within "
              f"{manifest['max_difference']:.1g} of Keras)", flush=True)
    return {**manifest, "folder": str(out)}


def _runtime(root: Path, target: Path) -> dict:
    """Copy the pinned runtime next to the page (installing it with npm first); else name the CDN's."""
    dist = root / "node_modules" / "onnxruntime-web" / "dist"
    if not all((dist / name).is_file() for name in RUNTIME_FILES) and shutil.which("npm") and \
            (root / "package-lock.json").is_file():
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root,
                       check=False, stdout=subprocess.DEVNULL)
    if all((dist / name).is_file() for name in RUNTIME_FILES) and _installed_version(dist) == RUNTIME_VERSION:
        if _integrity(dist / RUNTIME_FILES[0]) != RUNTIME_INTEGRITY:  # the CDN fallback would be refused too
            raise ConfigError(f"{dist / RUNTIME_FILES[0]} is not the script whose hash inpaintlib.tryit pins "
                              f"({RUNTIME_INTEGRITY}): reinstall it with npm ci, or update RUNTIME_INTEGRITY "
                              f"with package.json")
        (target / "ort").mkdir(exist_ok=True)
        for name in RUNTIME_FILES:
            shutil.copy2(dist / name, target / "ort" / name)
        return {"script": f"ort/{RUNTIME_FILES[0]}", "wasm": "ort/", "version": RUNTIME_VERSION}
    print(f"Try it: onnxruntime-web {RUNTIME_VERSION} is not installed (no npm, or npm ci failed): the page "
          f"loads it from {RUNTIME_CDN}", flush=True)
    return {"script": RUNTIME_CDN + RUNTIME_FILES[0], "integrity": RUNTIME_INTEGRITY, "wasm": RUNTIME_CDN,
            "version": RUNTIME_VERSION}


def _integrity(path: Path) -> str:
    """A file's Subresource Integrity hash, as a browser computes it."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def _installed_version(dist: Path) -> str | None:
    try:
        return json.loads((dist.parent / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None


def decode_face(faces_json: dict, index: int) -> np.ndarray:
    """Face ``index`` of a ``faces.json`` as the page reads it: uint8 (S, S, 3)."""
    size = faces_json["size"]
    return np.frombuffer(base64.b64decode(faces_json["faces"][index]), np.uint8).reshape(size, size, 3)
