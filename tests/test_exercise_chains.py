"""Every exercise, as an instructor sets it: inpaint assignment, papermill at the smoke profile on
synthetic faces, inpaint grade; a chapter left as it is, run by inpaint grade --rerun, refused for
the recipe it lacks; and the README's -p examples, built. About 10 to 25 minutes on 2 cores, so not
part of make test: run by make test-exercises, and by CI after make test. A failure after a change
to the models means their smoke ranges moved: measure them again (bench/exercise_ranges.py
--profile smoke --write)."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from inpaintlib.exercises import HAND_IN_TAG, RECIPE_TAG, load_exercises

EXERCISES = load_exercises()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One model cache for the chains: the models an exercise leaves as they are train once."""
    return tmp_path_factory.mktemp("exercise-cache")


def answered(assignment, exercise) -> None:
    """Reply to the exercise's questions as a student who reads the run would: each question's
    reply computed, in the hand-in cell, from the run's own answers."""
    notebook = nbformat.read(assignment, as_version=4)
    cell = notebook.cells[-1]
    assert HAND_IN_TAG in cell.metadata["tags"]
    for name, ask in exercise.asks.items():
        values = ", ".join(f"{answer!r}: {expression}" for answer, expression in exercise.answers.items())
        cell.source = cell.source.replace(f"{name} = None", f"{name} = bool(eval({ask['rule']!r}, {{{values}}}))")
    nbformat.write(notebook, assignment)


@pytest.mark.chains
@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_exercise_set_run_at_the_smoke_profile_and_graded_passes(exercise_id, shared_cache, tmp_path):
    exercise = EXERCISES[exercise_id]
    env = {**os.environ, "CELEBA_DIR": "", "INPAINTLIB_CACHE": str(shared_cache)}
    cli = [sys.executable, "-m", "inpaintlib.cli"]
    subprocess.run([*cli, "assignment", exercise_id, "-o", str(tmp_path / "a.ipynb")], check=True, env=env,
                   capture_output=True)
    answered(tmp_path / "a.ipynb", exercise)
    run = subprocess.run([sys.executable, "-m", "papermill", "a.ipynb", "a-run.ipynb", "-p", "profile", "smoke",
                          "--no-progress-bar"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    graded = subprocess.run([*cli, "grade", "a-run.ipynb"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert graded.stdout.count("pass  ") == len(exercise.answers) + len(exercise.asks), graded.stdout


@pytest.mark.chains
@pytest.mark.parametrize("exercise_id", ["2.3"])  # depth: a value the smoke profile sets too
def test_an_unmodified_chapter_run_by_inpaint_grade_rerun_fails_the_recipe_check(exercise_id, tmp_path):
    """inpaint assignment, then papermill at the smoke profile, then inpaint grade: passes. The same
    chapter without the recipe's cell (the chapter as it is), run by inpaint grade --rerun, fails
    the recipe's check."""
    env = {**os.environ, "CELEBA_DIR": "", "INPAINTLIB_CACHE": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "inpaintlib.cli"]
    subprocess.run([*cli, "assignment", exercise_id, "-o", str(tmp_path / "a.ipynb")], check=True, env=env)
    unmodified = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    unmodified.cells = [cell for cell in unmodified.cells if RECIPE_TAG not in cell.metadata.get("tags", [])]
    nbformat.write(unmodified, tmp_path / "u.ipynb")
    subprocess.run([sys.executable, "-m", "papermill", "a.ipynb", "a-run.ipynb", "-p", "profile", "smoke",
                    "--no-progress-bar"], check=True, env=env, cwd=tmp_path, capture_output=True)
    graded = subprocess.run([*cli, "grade", "a-run.ipynb"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert graded.stdout.count("pass  ") == len(EXERCISES[exercise_id].answers)
    # the unmodified chapter, executed by inpaint grade itself
    graded = subprocess.run([*cli, "grade", "u.ipynb", "--rerun", "--profile", "smoke"], env=env, cwd=tmp_path,
                            capture_output=True, text=True)
    name, value = next(iter(EXERCISES[exercise_id].recipe.items()))
    assert (tmp_path / "u-graded.ipynb").is_file(), "the rerun is kept beside the submission"
    assert graded.returncode == 2 and f"parameters are not exercise {exercise_id}'s recipe: {name} = " in graded.stderr
    assert f"(the recipe sets {value!r})" in graded.stderr


@pytest.mark.chains
def test_the_readmes_parameter_examples_change_what_they_say_in_the_executed_chapters(shared_cache, tmp_path):
    """The README's `-p mask_channel false -p depth 2` sets chapter 2's mask channel and the depth of
    both chapters that have one (chapter 3's VAE-GAN too); its `-p 02_unet:depth 2` chapter 2's depth
    alone. Read from the chapters as the build executed them, and from the models they trained."""
    from conftest import REPO, build, copy_book, glued, injected

    from inpaintlib.book import declared_parameters
    from inpaintlib.profiles import chapter_parameters, load_profiles

    chapters = ["02_unet", "03_vaegan"]
    declared = {path.stem: declared_parameters(path) for path in sorted((REPO / "book").glob("*.ipynb"))}
    as_they_are = chapter_parameters(load_profiles(), "smoke", declared)
    passed_on = {"profile_overrides", "chapter_2_unet"}  # what the build records and passes from chapter 2
    unset = object()
    root = copy_book(tmp_path)
    for overrides, changed in (
        (["-p", "mask_channel", "false", "-p", "depth", "2"],
         {"02_unet": {"mask_channel": False, "depth": 2}, "03_vaegan": {"depth": 2}}),
        (["-p", "mask_channel", "false", "-p", "02_unet:depth", "2"],
         {"02_unet": {"mask_channel": False, "depth": 2}, "03_vaegan": {}}),
    ):
        build(root, {"CELEBA_DIR": "", "INPAINTLIB_CACHE": str(shared_cache)}, "--no-html",
              *(f"--chapter={name}" for name in chapters), *overrides)
        executed = root / "_build" / "executed" / "book"
        for name in chapters:
            ran = injected(executed / f"{name}.ipynb")
            differs = {key: value for key, value in ran.items()
                       if key not in passed_on and value != as_they_are[name].get(key, unset)}
            # (the smoke profile's U-Net is 2 deep already: there, only the mask channel differs)
            assert differs == {key: value for key, value in changed[name].items()
                               if value != as_they_are[name].get(key, unset)}, (overrides, name, differs)
            assert ran["profile_overrides"] == changed[name], (overrides, name)
        unet = glued(executed / "02_unet.ipynb", "unet_config")["model_options"]
        vaegan = glued(executed / "03_vaegan.ipynb", "vaegan_config")["model_options"]
        assert unet["depth"] == 2 and unet["mask_channel"] is False, overrides
        assert vaegan["depth"] == (2 if changed["03_vaegan"] else 4), overrides
