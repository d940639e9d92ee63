"""Model bundles: trained models in one zip, to carry them from the machine that trained them (a
Colab GPU, a release of the book) to a reader's cache, where the chapters find them and train nothing.

A bundle holds model folders of the cache (``models/<kind>-<key>/``, as :func:`.train_or_load`
names them) and a manifest, ``bundle.json``: for each model its cache key and everything the key
hashes, its config, the data it was trained on (what the data holds, never a path), the device and
wall time of its training, and the sha256 of every file. :func:`.import_bundle` checks all of that
before the cache changes, then places each model with one rename; a model already in the cache is
left as it is.

A cache key covers the library's code and the TensorFlow and Keras it ran on
(:func:`inpaintlib.provenance.code_digest`), so a bundle serves the same version of inpaintlib: a
model trained by other code would be a stale model under a current name, and is refused.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from inpaintlib import __version__
from inpaintlib.config import CONFIG_FILE, MODEL_FILE, ORIGIN_FILE, RUN_FILE, key_of, read_model_folder, read_record
from inpaintlib.data import cache_root
from inpaintlib.errors import InpaintError
from inpaintlib.files import atomic_write
from inpaintlib.provenance import code_digest, library_versions

MANIFEST = "bundle.json"
#: The manifest's layout; a newer one is refused with the fix (upgrade inpaintlib).
FORMAT = 1
#: Where a bundle given by URL is downloaded to, in the cache folder.
DOWNLOADS = "downloads"
#: The environment variable a chapter's ``pretrained = "auto"`` reads, a bundle's path or URL.
PRETRAINED_ENV = "INPAINTLIB_PRETRAINED"
#: Its sha256, checked before anything is imported.
PRETRAINED_SHA256_ENV = "INPAINTLIB_PRETRAINED_SHA256"


class BundleError(InpaintError):
    """A bundle that cannot be made or imported: the message names the problem and the fix."""


def models_folder(cache_dir: str | Path | None = None) -> Path:
    """The cache's folder of trained models, where :func:`.train_or_load` looks first."""
    return cache_root(cache_dir) / "models"


def describe_model(folder: Path) -> dict:
    """What a model folder is, read from its files without loading the network: kind, key, config,
    steps and batch, data, device, training time, size, age, and where it came from."""
    config, history = read_model_folder(folder)
    run = read_record(folder / RUN_FILE)
    origin = read_record(folder / ORIGIN_FILE)
    files = [path for path in folder.rglob("*") if path.is_file()]
    return {
        "name": folder.name, "kind": config.model, "key": run.get("key") or folder.name.split("-", 1)[-1],
        "steps": config.steps, "batch_size": config.batch_size, "mask": config.mask,
        "model_options": config.model_options, "data": run.get("data_label", "unknown"),
        "device": run.get("device", "unknown"),
        "seconds": run.get("seconds", sum(row.get("seconds", 0.0) for row in history)),
        "bytes": sum(path.stat().st_size for path in files),
        "modified": datetime.datetime.fromtimestamp((folder / MODEL_FILE).stat().st_mtime).isoformat(timespec="seconds"),
        "current": run.get("key_values", {}).get("code") == code_digest() if run else None,
        "origin": f"imported from {origin['bundle']}" if origin else "trained here",
    }


def cached_models(cache_dir: str | Path | None = None) -> list[dict]:
    """:func:`.describe_model` of every finished model in the cache, newest first."""
    folder = models_folder(cache_dir)
    found = [path for path in folder.iterdir() if (path / MODEL_FILE).is_file()] if folder.is_dir() else []
    return sorted((describe_model(path) for path in found), key=lambda row: row["modified"], reverse=True)


def export_bundle(models, out: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Write trained models and their manifest into one zip, atomically.

    Parameters
    ----------
    models : list of str or Path
        Each a model folder (of the cache, or written by ``inpaint train``), or a cache key
        (its first characters are enough when only one model starts with them).
    out : path
        The zip to write (``.zip``); it is replaced only once whole.

    Returns
    -------
    dict
        The manifest written as ``bundle.json``.
    """
    folders = [_find_model(str(reference), cache_dir) for reference in models]
    if not folders:
        raise BundleError("no model to export: name model folders or cache keys (see inpaint models list)")
    out = Path(out)
    if out.is_dir():
        raise BundleError(f"{out} is a folder: give the bundle's file name, such as {out / 'models.zip'}")
    if not out.parent.is_dir():
        raise BundleError(f"the folder {out.parent} does not exist: create it, or write the bundle elsewhere")
    entries = [_manifest_entry(folder) for folder in folders]
    manifest = {"format": FORMAT, "inpaintlib": __version__, "libraries": library_versions(),
                "code": code_digest(), "created": datetime.datetime.now().isoformat(timespec="seconds"),
                "models": entries}
    with atomic_write(out) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for folder, entry in zip(folders, entries):
            for name in entry["files"]:
                archive.write(folder / name, f"models/{entry['folder']}/{name}")
    return manifest


def import_bundle(source: str | Path, sha256: str | None = None, cache_dir: str | Path | None = None,
                  progress: bool = True) -> list[dict]:
    """Check a bundle (a zip's path, or an http(s) URL, downloaded first) and place its models in
    the cache.

    Every check runs before the cache changes: the zip's sha256 (when given), its manifest, every
    file's sha256, and that each model's key is the one this install would compute (the same
    inpaintlib code, TensorFlow and Keras). Each model then lands with one rename, so the cache
    holds it whole or not at all; a model the cache already holds is kept.

    Returns
    -------
    list of dict
        Per model: its folder name and ``"imported"`` or ``"already in the cache"``.
    """
    source = str(source)
    path = download(source, cache_dir, sha256, progress) if _is_url(source) else Path(source)
    if not path.is_file():
        raise BundleError(f"{path} is not a file: give a bundle written by inpaint models export, or its URL")
    if sha256 and not _is_url(source):
        _check_sha256(path, sha256, source)
    manifest = _read_manifest(path)
    models = models_folder(cache_dir)
    models.mkdir(parents=True, exist_ok=True)
    results, placed = [], []
    with zipfile.ZipFile(path) as archive:
        for entry in manifest["models"]:
            target = models / entry["folder"]
            if (target / MODEL_FILE).is_file():
                results.append({"folder": entry["folder"], "result": "already in the cache"})
                continue
            staging = Path(tempfile.mkdtemp(prefix=f".import-{entry['folder']}-", dir=models))
            try:
                for name in entry["files"]:
                    destination = staging / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(f"models/{entry['folder']}/{name}") as member, destination.open("wb") as out:
                        shutil.copyfileobj(member, out)
                (staging / ORIGIN_FILE).write_text(json.dumps(
                    {"bundle": Path(source).name if not _is_url(source) else source, "imported": _now(),
                     "manifest": {k: v for k, v in entry.items() if k != "files"}}, indent=1))
                os.replace(staging, target)
            except OSError as error:
                shutil.rmtree(staging, ignore_errors=True)
                for folder in placed:  # all or nothing: a bundle half imported would mix two versions
                    shutil.rmtree(folder, ignore_errors=True)
                raise BundleError(f"could not write {target} ({error.strerror}): free some space in "
                                  f"{models}, or set $INPAINTLIB_CACHE to a writable folder") from None
            placed.append(target)
            results.append({"folder": entry["folder"], "result": "imported"})
    return results


def download(url: str, cache_dir: str | Path | None = None, sha256: str | None = None, progress: bool = True) -> Path:
    """Download a bundle into the cache's ``downloads/`` folder, with a progress bar.

    A download cut off part-way resumes where it stopped when the server serves byte ranges, and
    starts again when it does not; the file keeps its final name only once whole (and, when
    ``sha256`` is given, once its hash matches). A finished download is not fetched again.
    """
    name = PurePosixPath(urllib.parse.urlparse(url).path).name or "bundle.zip"
    folder = cache_root(cache_dir) / DOWNLOADS
    folder.mkdir(parents=True, exist_ok=True)
    final, partial = folder / name, folder / f"{name}.part"
    if final.is_file() and (not sha256 or _sha256(final) == sha256.lower()):
        return final
    from tqdm.auto import tqdm

    done = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if response.status != 206:  # the server sent the whole file: start again
                done = 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length else None
            with partial.open("ab" if done else "wb") as out, tqdm(
                    total=total, initial=done, unit="B", unit_scale=True, desc=f"Downloading {name}",
                    disable=not progress) as bar:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except http.client.IncompleteRead as cut:  # the connection closed early: keep what came
                        out.write(cut.partial)
                        break
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise BundleError(f"could not download {url} ({reason}): check the URL and the network, then run "
                          f"the same command again (it resumes)") from None
    if total is not None and partial.stat().st_size != total:
        raise BundleError(f"the download of {url} stopped at {partial.stat().st_size:,} of {total:,} bytes: "
                          f"run the same command again (it resumes)")
    if sha256:
        try:
            _check_sha256(partial, sha256, url)
        except BundleError:
            partial.unlink()  # a wrong file is not resumed, it is fetched again
            raise
    os.replace(partial, final)
    return final


def pretrained_source(pretrained: str | None) -> tuple[str | None, str | None]:
    """The bundle (path or URL) and sha256 a chapter's ``pretrained`` parameter names: ``"auto"`` reads
    ``$INPAINTLIB_PRETRAINED`` (and ``$INPAINTLIB_PRETRAINED_SHA256``), ``None`` or ``"none"`` names none."""
    if pretrained in (None, "", "none"):
        return None, None
    if pretrained == "auto":
        return os.environ.get(PRETRAINED_ENV) or None, os.environ.get(PRETRAINED_SHA256_ENV) or None
    return str(pretrained), None


def use_pretrained(pretrained: str | None = "auto", cache_dir: str | Path | None = None) -> list[dict]:
    """What a chapter's set-up cell calls: import the bundle ``pretrained`` names (see
    :func:`.pretrained_source`), so the chapter loads its models instead of training them. Prints one line."""
    source, sha256 = pretrained_source(pretrained)
    if source is None:
        how = f"${PRETRAINED_ENV} is not set" if pretrained == "auto" else "pretrained = None"
        print(f"Pretrained models: none ({how}); each model comes from the cache or is trained here")
        return []
    results = import_bundle(source, sha256, cache_dir)
    imported = sum(row["result"] == "imported" for row in results)
    print(f"Pretrained models: {len(results)} in {source} ({imported} imported, "
          f"{len(results) - imported} already in the cache); a chapter whose model is among them trains nothing")
    return results


# --- checks ----------------------------------------------------------------------------------

def _find_model(reference: str, cache_dir) -> Path:
    path = Path(reference).expanduser()
    if path.is_dir():
        read_model_folder(path)  # a folder without a model says so
        return path
    models = models_folder(cache_dir)
    key = reference.split("-", 1)[-1] if reference.startswith(("unet-", "vaegan-")) else reference
    matches = [folder for folder in models.iterdir() if (folder / MODEL_FILE).is_file()
               and folder.name.split("-", 1)[-1].startswith(key)] if models.is_dir() and key else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BundleError(f"no model folder or cached model {reference!r}: see inpaint models list for the keys")
    raise BundleError(f"{reference!r} names {len(matches)} cached models ({', '.join(m.name for m in matches)}): "
                      f"give more of the key")


def _manifest_entry(folder: Path) -> dict:
    config, history = read_model_folder(folder)
    run = read_record(folder / RUN_FILE)
    if not run.get("key_values"):
        raise BundleError(f"{folder} has no {RUN_FILE} (it was trained before inpaintlib recorded its runs): "
                          f"train it again to export it")
    names = sorted(str(path.relative_to(folder).as_posix()) for path in folder.rglob("*")
                   if path.is_file() and not path.name.startswith(".") and path.name not in (ORIGIN_FILE, "train.lock"))
    return {"folder": f"{config.model}-{run['key']}", "key": run["key"], "kind": config.model,
            "key_values": run["key_values"], "config": config.to_dict(), "data": run.get("data_label"),
            "device": run.get("device"), "seconds": run.get("seconds"), "trained": run.get("finished"),
            "steps": config.steps, "batch_size": config.batch_size,
            "files": {name: _sha256(folder / name) for name in names}}


def _read_manifest(path: Path) -> dict:
    """The manifest of a bundle, once every check has passed; BundleError naming the first that fails."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleError(f"{path} is not a readable zip ({error}): it may be cut short; download it again") from None
    with archive:
        if MANIFEST not in archive.namelist():
            raise BundleError(f"{path} is not an inpaintlib model bundle (no {MANIFEST}): make one with "
                              f"inpaint models export")
        try:
            manifest = json.loads(archive.read(MANIFEST))
            entries = manifest["models"]
            if not isinstance(manifest.get("format"), int) or not isinstance(entries, list):
                raise TypeError("format and models")
        except (json.JSONDecodeError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise BundleError(f"{path} has a damaged {MANIFEST} ({error}): export the bundle again") from None
        if manifest["format"] > FORMAT:
            raise BundleError(f"{path} is a bundle of format {manifest['format']}, newer than this inpaintlib "
                              f"{__version__} reads ({FORMAT}): upgrade inpaintlib")
        here = code_digest()
        for entry in entries:
            _check_entry(path, archive, entry, here)
    return manifest


def _check_entry(path: Path, archive: zipfile.ZipFile, entry: dict, here: str) -> None:
    try:
        folder, key, key_values, files = entry["folder"], entry["key"], entry["key_values"], entry["files"]
    except (KeyError, TypeError):
        raise BundleError(f"{path} has a damaged {MANIFEST} (a model without folder, key or files): "
                          f"export the bundle again") from None
    names = [str(folder), *map(str, files)]
    if any(name.startswith(("/", "\\")) or ".." in PurePosixPath(name).parts for name in names):
        raise BundleError(f"{path} names files outside its models' folders ({folder}): it is not a bundle "
                          f"inpaint models export wrote; do not import it")
    if key_of(key_values) != key:
        raise BundleError(f"{path}: the manifest's key {key} of {folder} is not the hash of what it says the "
                          f"model is: export the bundle again")
    if key_values.get("code") != here:
        raise BundleError(
            f"{path}: {folder} was trained by other inpaintlib code (code {key_values.get('code')}; this install's "
            f"is {here}, inpaintlib {__version__} with {library_versions()}), so its cache key no longer "
            f"matches. Install the inpaintlib commit that made the bundle, or let the chapters train")
    for name, digest in files.items():
        member = f"models/{folder}/{name}"
        try:
            with archive.open(member) as handle:
                found = hashlib.file_digest(handle, "sha256").hexdigest()
        except KeyError:
            raise BundleError(f"{path} lacks {member}, which its manifest lists: export the bundle again") from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise BundleError(f"{path} is damaged ({member}: {error}): download or export it again") from None
        if found != digest:
            raise BundleError(f"{path}: {member} does not match its sha256 in the manifest: the bundle was "
                              f"altered or damaged; download or export it again")
    if not {MODEL_FILE, CONFIG_FILE} <= set(files):
        raise BundleError(f"{path}: {folder} lacks {MODEL_FILE} or {CONFIG_FILE}: export the bundle again")


def _check_sha256(path: Path, expected: str, named: str) -> None:
    found = _sha256(path)
    if found != expected.strip().lower():
        raise BundleError(f"{named} has sha256 {found}, not the {expected.strip()} given: it is another file, "
                          f"or cut short; download it again (or check the hash)")


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https")


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


