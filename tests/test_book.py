"""The book's smoke build: papermill executes the chapters, Jupyter Book renders them (-W)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import build, copy_book, execute_chapter, glued, injected

pytestmark = pytest.mark.slow


def chapter_html(root, name="01_background"):
    return (root / "_build" / "html" / "book" / f"{name}.html").read_text()


def assert_images_render(root, html):
    images = re.findall(r'<img [^>]*src="([^"]+\.png)"', html)
    assert len(images) >= 3, "the face grid, the mask kinds and a batch"
    for src in images:
        assert (root / "_build" / "html" / "book" / src).stat().st_size > 2000, src


def test_smoke_build_on_synthetic_faces_labels_them(smoke_book):
    root = smoke_book  # built once per session (conftest.py), with CELEBA_DIR set empty
    assert (root / "_build" / "html" / "index.html").is_file()
    html = chapter_html(root)
    assert "synthetic faces (a stand-in for CelebA, not real photos)" in html
    assert "CELEBA_DIR is not set" in html, "auto data says it fell back to synthetic faces"
    assert "Traceback" not in html
    assert_images_render(root, html)
    # The source shown is the library's own, not a copy.
    text = re.sub(r"<[^>]+>", "", html)
    assert "def make_dataset(" in text and "def draw_masks(" in text
    # The executed notebook is in the staging folder; the committed one has no outputs.
    assert (root / "_build" / "executed" / "book" / "01_background.ipynb").is_file()
    # Four chapter kernels started and ran TensorFlow, and none of its C++ log lines reached the log.
    from inpaintlib.startup import is_tensorflow_log_line

    log = (root / "build-stderr.log").read_text().splitlines()
    assert not [line for line in log if is_tensorflow_log_line(line)], "\n".join(log[:20])

    unet = chapter_html(root, "02_unet")
    assert "Traceback" not in unet
    unet_text = re.sub(r"<[^>]+>", "", unet)
    assert "def build_unet(" in unet_text, "the model's code, from the library"
    for method in ("telea", "navier-stokes", "biharmonic", "mean", "psnr_hole", "sharpness"):
        assert method in unet_text, f"the metrics table has {method}"
    assert "synthetic faces (a stand-in" in unet_text
    assert_images_render(root, unet)  # training curve and the fills for each mask kind

    vaegan = chapter_html(root, "03_vaegan")
    assert "Traceback" not in vaegan
    vaegan_text = re.sub(r"<[^>]+>", "", vaegan)
    assert "def train_step(" in vaegan_text and "def _loss_terms(" in vaegan_text, "the model's code, from the library"
    for column in ("VAE-GAN", "U-Net", "biharmonic", "diversity", "sharpness", "identity", "ffd_floor"):
        assert column in vaegan_text
    assert re.search(r"Its diversity is \d\.\d+", vaegan_text), "the verdict is computed"
    assert re.search(r"gives draws \S+ times as diverse as the first design.s", vaegan_text), "both designs, measured"
    assert re.search(r"the VAE-GAN.s Fréchet face distance is \d\.\d{3}", vaegan_text), "face scores, computed"
    assert_images_render(root, vaegan)  # loss curves, fills, draws

    comparison = chapter_html(root, "04_comparison")
    comparison_text = re.sub(r"<[^>]+>", "", comparison)
    assert "Traceback" not in comparison
    models = Path((root / "build-cache.txt").read_text()) / "models"
    trained = sorted(folder.name.split("-")[0] for folder in models.iterdir() if folder.is_dir())
    assert trained == ["unet", "unet", "vaegan", "vaegan"], \
        "chapters 2 and 3's models (the VAE-GAN's two designs), and chapter 4's specialist: no other"
    assert "A network knows the holes it saw" in comparison_text, "the specialist against the generalist"
    assert re.search(r"center 0\.5: .+? fills best \(\d+\.\d dB\)", comparison_text), "the verdicts are computed"
    assert re.search(r"The draws have [\d.]+ times the squared error of the mean", comparison_text), "the toy"
    assert re.search(r"One VAE-GAN draw scores \d+\.\d\d dB", comparison_text), "the perception-distortion plane"
    # Realism on every condition: the networks' and the best classical method's face distance.
    realism = glued(root / "_build" / "executed" / "book" / "04_comparison.ipynb", "realism")
    assert [row["index"] for row in realism] == ["center 0.5", "random-box 0.5", "free-form 0.5"]
    for row in realism:
        assert row["best classical"] in ("telea", "navier-stokes", "biharmonic", "mean")
        scores = [row["its FFD"], row["U-Net FFD"], row["VAE-GAN FFD"], row["floor"]]
        assert all(math.isfinite(value) and value >= 0 for value in scores), row
        for network in ("U-Net", "VAE-GAN"):  # the paired interval of its FFD minus the classical method's
            assert row[f"{network} minus it, low"] <= row[f"{network} minus it, high"], row
    assert re.search(r"VAE-GAN.s fills are more face-like than the best classical method.s on \d of the 3 "
                     r"conditions.*, less face-like on \d.*, and within the noise on \d", comparison_text), \
        "the realism verdict is computed, each condition by its paired interval"
    assert_images_render(root, comparison)  # interval bars and the side-by-side fills


def test_a_chapter_run_with_changed_parameters_changes_its_results_and_keeps_them_valid(smoke_book, tmp_path,
                                                                                      private_cache):
    # An assignment: chapter 2 without the mask channel, trained on random boxes, scored as before.
    changed = execute_chapter("02_unet", tmp_path, profile="smoke", mask_channel=False, mask="random-box")
    before = {row["method"]: row for row in glued(smoke_book / "_build" / "executed" / "book" / "02_unet.ipynb",
                                                  "unet_scores")}
    after = {row["method"]: row for row in glued(changed, "unet_scores")}
    assert set(after) == set(before) == {"U-Net before training", "U-Net", "telea", "navier-stokes", "biharmonic",
                                         "mean"}
    # The chapter trained the model the parameters describe (its cache is this test's): the
    # network sees the masked image alone, 3 input channels where the default has 4.
    from inpaintlib.training import load_trained

    (folder,) = (private_cache / "models").glob("unet-*")
    trained = load_trained(folder)
    assert trained.config.mask == "random-box" and trained.config.model_options["mask_channel"] is False
    assert trained.model.get_layer("down0_conv0").kernel.shape[2] == 3
    for method in ("telea", "navier-stokes", "biharmonic", "mean"):  # same faces and holes: same scores
        for metric in ("psnr_hole", "ssim", "l1_hole", "sharpness"):
            assert after[method][metric] == pytest.approx(before[method][metric], abs=1e-9), (method, metric)
    for row in after.values():
        assert row["n"] == before["U-Net"]["n"]
        assert 0 < row["psnr_hole"] < 100 and -1 <= row["ssim"] <= 1 and 0 <= row["l1_hole"] <= 1
        assert math.isfinite(row["sharpness"]) and row["sharpness"] >= 0
    # The chapter said which parameters it ran with.
    text = changed.read_text()
    assert "Profile: smoke" in text and "mask_channel = False" in text


def test_a_rebuild_runs_only_the_chapters_whose_inputs_changed(smoke_book, tmp_path):
    root = copy_book(tmp_path)
    shutil.copytree(smoke_book / "_build" / "chapters", root / "_build" / "chapters")
    env = {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(tmp_path / "cache")}
    again = build(root, env, "--classroom").stdout  # the classroom edition: the same runs, no solutions
    assert again.count("unchanged since its last run, not executed again") == 4, again
    assert "Executing" not in again
    assert "synthetic faces (a stand-in" in chapter_html(root), "the kept run is rendered"
    for name, count in {"02_unet": 5, "03_vaegan": 10, "04_comparison": 6}.items():
        html = chapter_html(root, name)
        assert f'<ol class="arabic simple" start="{count}">' in html and "Solution" not in html, name
    changed = build(root, env, "-p", "01_background:n_faces", "4", "--no-html").stdout
    assert "-p 01_background:n_faces 4: sets it in 01_background" in changed
    assert "Executing book/01_background.ipynb" in changed and changed.count("not executed again") == 3, changed


def test_each_exercise_has_its_solution_collapsed_with_this_runs_values_beside_the_references(smoke_book):
    for name, count in {"02_unet": 5, "03_vaegan": 10, "04_comparison": 6}.items():
        html = chapter_html(smoke_book, name)
        number = name[1]
        solutions = re.findall(r'<div class="([^"]*)">\s*<p class="admonition-title">Solution (\d\.\d+)</p>', html)
        assert [eid for _, eid in solutions] == [f"{number}.{k}" for k in range(1, count + 1)], name
        assert all("dropdown" in classes for classes, _ in solutions), "collapsed (sphinx-togglebutton)"
        assert html.count("the recipe&#x2019;s reference runs") + html.count("the recipe’s reference runs") == \
            count - (name == "04_comparison"), f"{name}: a table for each graded exercise (4.4 asks for code)"
        assert "No reference runs" not in html and "the smoke profile, the synthetic faces" in html, name


def glued_markdown(notebook: Path, name: str) -> str:
    """The Markdown an executed chapter glued under ``name`` (``glue(name, Markdown(...))``)."""
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return "".join(next(text for kind, text in output["data"].items() if kind.endswith("text/markdown")))
    raise AssertionError(f"{notebook.name} glued no {name}")


def test_every_chapter_states_its_scale_and_the_front_page_shows_the_models(smoke_book):
    """Each result names the profile it ran at (smoke, never "cell"), each model's steps, training
    time, device and origin; a note at the top of each chapter says how far that is from the full
    recipe; the front page shows chapter 4's fills with the same line."""
    executed = smoke_book / "_build" / "executed" / "book"
    parameters = lambda name: injected(executed / f"{name}.ipynb")  # noqa: E731
    assert "Profile: smoke, as inpaint book set it" in printed(executed / "01_background.ipynb")
    for name, models in {"02_unet": ["U-Net"], "03_vaegan": ["VAE-GAN", "VAE-GAN, first design", "U-Net"],
                         "04_comparison": ["U-Net", "U-Net, center only", "VAE-GAN"]}.items():
        assert (parameters(name)["profile"], parameters(name)["profile_overrides"]) == ("smoke", {}), name
        note = glued_markdown(executed / f"{name}.ipynb", "scale_note")
        assert re.match(r":::\{admonition\} These results come from (less than a minute|one minute|\d+ minutes) of "
                        r"training on the CPU \(\d+ cores, no GPU\)\n:class: attention\nThe \*\*smoke\*\* profile\. ", note)
        for model in models:
            assert re.search(rf"(^|; |\. ){re.escape(model)}: 20 steps of 8, \d+\.\d min on the CPU", note), (name, model)
        assert "The full recipe trains " in note and "4000 steps of 128, base_filters = 32" in note
        html = chapter_html(smoke_book, name)
        text = re.sub(r"<[^>]+>", "", html)
        assert 'class="attention admonition"' in html and html.index("These results come from") < html.index("Set-up."), \
            f"{name}: the note opens the chapter"
        assert "profile = &quot;cell&quot;" not in html and "profile = \"cell\"" not in text
        # under its tables, figures and verdicts
        assert text.count("Scale: smoke profile; ") >= 3, name
    intro = (smoke_book / "_build" / "html" / "book" / "intro.html").read_text()
    (front,) = re.findall(r'<img [^>]*src="([^"]+\.png)"', intro)
    assert (smoke_book / "_build" / "html" / "book" / front).stat().st_size > 10_000, "the front page's figure"
    caption = re.sub(r"<[^>]+>", "", intro[intro.index(front):])
    assert re.search(r"filled by chapter 2.s U-Net and chapter 3.s VAE-GAN\. Data: synthetic faces \(a stand-in "
                     r"for CelebA, not real photos\)\. Scale: smoke profile; U-Net: 20 steps of 8", caption)


def printed(notebook: Path) -> str:
    """Everything an executed chapter printed (its stream outputs), in order."""
    cells = json.loads(notebook.read_text())["cells"]
    return "".join("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream")


def test_a_book_rebuilt_from_an_imported_bundle_trains_nothing(smoke_book, tmp_path):
    """The bundle of a smoke build's models, imported into an empty model cache through
    $INPAINTLIB_PRETRAINED: the chapters load every model, say so, and train none."""
    cache = Path((smoke_book / "build-cache.txt").read_text())
    env = {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(cache)}
    cli = [sys.executable, "-m", "inpaintlib.cli", "models"]
    listed = subprocess.run([*cli, "list", "--json"], capture_output=True, text=True, env={**os.environ, **env})
    keys = [row["key"] for row in json.loads(listed.stdout)]
    assert len(keys) >= 4, "chapter 2's U-Net, chapter 3's two VAE-GANs, chapter 4's specialist"
    bundle = tmp_path / "smoke-models.zip"
    subprocess.run([*cli, "export", "--all", "-o", str(bundle)], check=True, env={**os.environ, **env})
    # The decoded faces and face descriptors are kept: an empty *model* cache is what is tested.
    fresh = shutil.copytree(cache, tmp_path / "cache", ignore=shutil.ignore_patterns("models"))
    root = copy_book(tmp_path / "book")
    chapters = ["04_comparison"]  # it loads both kinds of model, and its own specialist
    build(root, {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(fresh), "INPAINTLIB_PRETRAINED": str(bundle)},
          "--no-html", *(f"--chapter={name}" for name in chapters))
    for name in chapters:
        text = printed(root / "_build" / "executed" / "book" / f"{name}.ipynb")
        assert f"Pretrained models: {len(keys)} in {bundle}" in text, name
        assert "Epoch 1/" not in text and "trained in this run" not in text, f"{name} trained a model"
        assert f"imported from the bundle {bundle.name} (trained 20" in text, name
        note = glued_markdown(root / "_build" / "executed" / "book" / f"{name}.ipynb", "scale_note")
        assert f"imported from {bundle.name}" in note and "trained in this run" not in note, name
    assert sorted(path.name.split("-", 1)[1] for path in (fresh / "models").iterdir() if not path.name.startswith(".")) \
        == sorted(keys)


def test_chapters_3_and_4_compare_the_models_chapters_2_and_3_ran(smoke_book):
    """Whatever an assignment changes in chapter 2 or 3, the later chapters take that exact model:
    the build passes the configs the earlier chapters glued, and each later chapter trains from them."""
    executed = smoke_book / "_build" / "executed" / "book"
    ran = lambda name: injected(executed / f"{name}.ipynb")  # noqa: E731
    unet, vaegan = glued(executed / "02_unet.ipynb", "unet_config"), glued(executed / "03_vaegan.ipynb", "vaegan_config")
    assert ran("03_vaegan")["chapter_2_unet"] == unet
    assert ran("04_comparison")["chapter_2_unet"] == unet and ran("04_comparison")["chapter_3_vaegan"] == vaegan
    from inpaintlib.config import TrainConfig

    folders = {path.name for path in (Path((smoke_book / "build-cache.txt").read_text()) / "models").iterdir()}
    as_built = {"data": "synthetic"}  # what "auto" was in the build, which set CELEBA_DIR empty
    assert f"unet-{TrainConfig.from_dict({**unet, **as_built}).cache_key()}" in folders
    assert f"vaegan-{TrainConfig.from_dict({**vaegan, **as_built}).cache_key()}" in folders
    # Chapter 2's U-Net, chapter 3's VAE-GAN and its first design, chapter 4's specialist: nothing else.
    assert len([name for name in folders if not name.startswith(".")]) == 4, folders
