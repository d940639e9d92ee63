"""Model bundles: export from one cache, import into another (a file, or a download that resumes),
and every bad bundle refused in one line with the cache unchanged."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from inpaintlib import bundles, training
from inpaintlib.cli import main
from inpaintlib.training import TrainConfig, train_or_load

TINY = TrainConfig(model="unet", data="synthetic", image_size=16, steps=2, batch_size=4, limit=16,
                   validation_images=4, checkpoint_every=2, model_options={"base_filters": 4, "depth": 1})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, dict]:
    """A bundle of two tiny models (a U-Net and a VAE-GAN) trained into their own cache."""
    cache = tmp_path_factory.mktemp("trained-cache")
    vaegan = TrainConfig(model="vaegan", data="synthetic", image_size=16, steps=2, batch_size=4, limit=16,
                         validation_images=4, checkpoint_every=2,
                         model_options={"latent_dim": 4, "base_filters": 4, "depth": 2})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INPAINTLIB_CACHE", str(cache))
        models = [train_or_load(config, verbose=0) for config in (TINY, vaegan)]
        out = tmp_path_factory.mktemp("bundle") / "models.zip"
        assert main(["models", "export", models[0].config.cache_key()[:6], str(models[1].path), "-o", str(out)]) == 0
    return out, {model.path.name: model for model in models}


def error_line(err: str) -> str:
    """The one error line a command printed, below its download's progress bar if it had one."""
    lines = err.rstrip("\n").split("\n")
    assert err.count("inpaint: error: ") == 1 and lines[-1].startswith("inpaint: error: "), err
    return lines[-1]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")} if folder.exists() else {}


def test_an_imported_model_is_loaded_and_not_trained(bundle, private_cache, monkeypatch, capsys):
    path, trained = bundle
    assert main(["models", "import", str(path)]) == 0
    assert capsys.readouterr().out.count("imported") == 2
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("an imported model was trained again"))
    loaded = train_or_load(TINY, verbose=0)
    assert loaded.path.name in trained and loaded.origin == "imported"
    original = trained[loaded.path.name]
    for name in ("model.keras", "config.json", "history.json", "run.json"):
        assert (loaded.path / name).read_bytes() == (original.path / name).read_bytes()
    faces = training.load_images("synthetic", "test", image_size=16, limit=4) / 255.0
    holes = training.eval_masks("center", 4, 16)
    assert (loaded.inpaint(faces, holes) == original.inpaint(faces, holes)).all()
    # A second import changes nothing, and says so.
    before = snapshot(private_cache)
    assert main(["models", "import", str(path)]) == 0
    assert capsys.readouterr().out.count("already in the cache") == 2 and snapshot(private_cache) == before
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in listed} == set(trained)
    assert all(row["origin"] == f"imported from {path.name}" and row["current"] for row in listed)
    assert all(row["data"].startswith("synthetic") and row["device"].startswith("TensorFlow") for row in listed)


def test_the_manifest_says_what_each_model_is(bundle):
    path, trained = bundle
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("bundle.json"))
        names = set(archive.namelist())
    assert {entry["folder"] for entry in manifest["models"]} == set(trained)
    for entry in manifest["models"]:
        assert entry["key"] == trained[entry["folder"]].config.cache_key()
        assert entry["steps"] == 2 and entry["seconds"] > 0 and entry["data"].startswith("synthetic")
        assert not any("/" in name or "\\" in name for name in [entry["folder"]])
        for name, digest in entry["files"].items():
            assert f"models/{entry['folder']}/{name}" in names
            assert digest == hashlib.sha256((trained[entry["folder"]].path / name).read_bytes()).hexdigest()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves byte ranges (as a release's server does), and cuts a response short when asked."""

    cut_after: int | None = None

    def do_GET(self):
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if RangeHandler.cut_after is not None:
            body, RangeHandler.cut_after = body[:RangeHandler.cut_after], None
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(folder: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_download_cut_short_resumes_and_is_checked(bundle, private_cache, capsys):
    path, trained = bundle
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with serving(path.parent) as url:
        RangeHandler.cut_after = path.stat().st_size // 2
        assert main(["models", "import", f"{url}/{path.name}", "--sha256", digest]) == 2
        error = error_line(capsys.readouterr().err)
        assert "stopped at" in error and "again" in error
        assert not (private_cache / "models").exists()
        assert main(["models", "import", f"{url}/{path.name}", "--sha256", digest]) == 0
    assert {p.name for p in (private_cache / "models").iterdir()} == set(trained)
    assert (private_cache / "downloads" / path.name).read_bytes() == path.read_bytes()


def test_a_download_with_the_wrong_hash_is_refused_and_fetched_again_next_time(bundle, private_cache, capsys):
    path, _ = bundle
    with serving(path.parent) as url:
        assert main(["models", "import", f"{url}/{path.name}", "--sha256", "0" * 64]) == 2
    assert "sha256" in error_line(capsys.readouterr().err)
    assert not list((private_cache / "downloads").iterdir()) and not (private_cache / "models").exists()


def rewritten(source: Path, target: Path, change) -> Path:
    """A copy of a bundle whose manifest ``change`` edited."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            if name == "bundle.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            new.writestr(name, data)
    return target


def other_code(manifest):
    """What a bundle made by another inpaintlib looks like: other code, its key consistent with it."""
    for entry in manifest["models"]:
        entry["key_values"]["code"] = "0123456789abcdef"
        entry["key"] = hashlib.sha256(json.dumps(entry["key_values"], sort_keys=True).encode()).hexdigest()[:16]


def altered_file(manifest):
    entry = manifest["models"][0]
    entry["files"]["model.keras"] = "f" * 64


def escaping(manifest):
    manifest["models"][0]["folder"] = "../../outside"


@pytest.mark.parametrize("case", ["wrong hash", "truncated", "not a zip", "foreign zip", "other code",
                                  "altered file", "escaping path", "newer format", "missing"])
def test_a_bad_bundle_is_one_line_and_leaves_the_cache_unchanged(case, bundle, private_cache, tmp_path, capsys):
    path, _ = bundle
    extra = []
    if case == "wrong hash":
        bad, extra = path, ["--sha256", "ab" * 32]
    elif case == "truncated":
        bad = tmp_path / "cut.zip"
        bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "not a zip":
        bad = tmp_path / "notes.zip"
        bad.write_text("not a zip\n")
    elif case == "foreign zip":
        bad = tmp_path / "photos.zip"
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("img.jpg", b"\xff\xd8")
    elif case == "missing":
        bad = tmp_path / "absent.zip"
    else:
        change = {"other code": other_code, "altered file": altered_file, "escaping path": escaping,
                  "newer format": lambda m: m.update(format=99)}[case]
        bad = rewritten(path, tmp_path / "edited.zip", change)
    (private_cache / "models").mkdir()
    before = snapshot(private_cache)
    assert main(["models", "import", str(bad), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith("inpaint: error: ") and error.count("\n") == 1, error  # nothing downloaded: no bar
    expected = {"wrong hash": "sha256", "truncated": "not a readable zip", "not a zip": "not a readable zip",
                "foreign zip": "not an inpaintlib model bundle", "other code": "other inpaintlib code",
                "altered file": "does not match its sha256", "escaping path": "outside",
                "newer format": "upgrade inpaintlib", "missing": "not a file"}[case]
    assert expected in error
    assert snapshot(private_cache) == before


def test_export_refuses_what_it_cannot_bundle(tmp_path, capsys):
    assert main(["models", "export", "feedface", "-o", str(tmp_path / "b.zip")]) == 2
    assert "inpaint models list" in capsys.readouterr().err
    assert main(["models", "export", str(tmp_path), "-o", str(tmp_path / "b.zip")]) == 2
    assert "holds no trained model" in capsys.readouterr().err
    assert not (tmp_path / "b.zip").exists()


def test_export_into_a_missing_folder_or_onto_a_folder_is_one_line(bundle, tmp_path, capsys):
    _, trained = bundle
    model = next(iter(trained.values())).path
    assert main(["models", "export", str(model), "-o", str(tmp_path / "absent" / "b.zip")]) == 2
    assert "does not exist: create it" in capsys.readouterr().err
    assert main(["models", "export", str(model), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


def test_pretrained_auto_reads_the_environment(bundle, private_cache, monkeypatch, capsys):
    path, trained = bundle
    monkeypatch.delenv(bundles.PRETRAINED_ENV, raising=False)
    assert bundles.use_pretrained("auto") == []
    assert "not set" in capsys.readouterr().out
    monkeypatch.setenv(bundles.PRETRAINED_ENV, str(path))
    monkeypatch.setenv(bundles.PRETRAINED_SHA256_ENV, hashlib.sha256(path.read_bytes()).hexdigest())
    assert [row["result"] for row in bundles.use_pretrained("auto")] == ["imported"] * len(trained)
    monkeypatch.setenv(bundles.PRETRAINED_SHA256_ENV, "1" * 64)
    with pytest.raises(bundles.BundleError, match="sha256"):
        bundles.use_pretrained("auto")


def test_export_all_bundles_every_model_of_this_code_and_digest_names_that_code(bundle, private_cache, capsys):
    """What a maintainer runs after a full build on a GPU: inpaint models export --all."""
    from inpaintlib.provenance import code_digest

    path, models = bundle
    assert main(["models", "import", str(path)]) == 0
    stale = private_cache / "models" / "unet-0123456789abcdef"  # a model of other code stays out
    stale.mkdir()
    for name in ("model.keras", "config.json", "history.json"):
        (stale / name).write_bytes((next(iter(models.values())).path / name).read_bytes())
    (stale / "run.json").write_text(json.dumps({"key": "0123456789abcdef", "key_values": {"code": "old"}}))
    capsys.readouterr()
    out = private_cache / "all.zip"
    assert main(["models", "export", "--all", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("bundle.json"))
    assert sorted(entry["folder"] for entry in manifest["models"]) == sorted(models)
    assert main(["models", "digest"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == code_digest() == manifest["code"]
    assert main(["models", "export", "--all", next(iter(models)), "-o", str(out)]) == 2
    assert "name the models (cache keys or folders) or pass --all, not both" in error_line(capsys.readouterr().err)
