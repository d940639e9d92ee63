"""Set-up files agree: pyproject is the pip truth, environment.yml lists the same packages,
the README starts with the two commands, CI runs the README's test command, and the wheel
carries the package data the chapters read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
import yaml

from conftest import REPO
from inpaintlib.profiles import load_profiles


def requirement_set(requirements):
    return {re.sub(r"\s+", "", r).lower() for r in requirements}


def test_environment_yml_has_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    listed = [r for r in pip_lists[0] if not r.startswith("-e")]
    assert requirement_set(listed) == requirement_set(wanted)
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert project["requires-python"] == ">=3.10" and python == "python=3.11"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[:8] if line.startswith("make ")]
    assert commands == ["make book", "make test"]
    assert re.search(r"^make test$", (REPO / ".ci" / "run").read_text(), re.M)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: install\n\t\$\(BIN\)/python -m pytest", makefile, re.M)


def test_jupyter_book_1_not_2():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(r.replace(" ", "").startswith("jupyter-book>=1.0.4,<2") for r in project["optional-dependencies"]["book"])


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for notebook in sorted((REPO / "book").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), notebook.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{notebook.name} needs one cell tagged 'parameters'"
        assert "find_spec(\"inpaintlib\")" in "".join(code[0]["source"]), "first cell installs the package when missing"


def test_pages_workflow_builds_with_the_readme_command_and_publishes_the_html():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    assert workflow["concurrency"]["group"]
    build = workflow["jobs"]["build"]
    steps = build["steps"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert str(python["with"]["python-version"]) == "3.11"
    readme_book = next(line.split("#")[0].strip() for line in (REPO / "README.md").read_text().splitlines()
                       if line.startswith("make book"))
    assert steps[-1]["uses"].startswith("actions/upload-pages-artifact") and steps[-1]["with"]["path"] == "_build/html"
    assert steps[-2]["run"] == f'{readme_book} PROFILE="$PROFILE"', "the README's command, at the chosen profile"
    # The profile: the one a pretrained bundle was trained at, else published (sized for the runner).
    assert build["env"]["PROFILE"] == "${{ vars.INPAINTLIB_BOOK_PROFILE || 'published' }}"
    assert "published" in load_profiles() and build["timeout-minutes"] >= 120
    assert build["env"]["INPAINTLIB_PRETRAINED"] == "${{ vars.INPAINTLIB_PRETRAINED }}"
    assert build["env"]["INPAINTLIB_PRETRAINED_SHA256"] == "${{ vars.INPAINTLIB_PRETRAINED_SHA256 }}"
    # CelebA only with the secrets, into CELEBA_DIR for the build step.
    kaggle = next(s for s in steps if "kaggle" in s.get("run", ""))
    assert kaggle["if"] == "env.KAGGLE_USERNAME != '' && env.KAGGLE_KEY != ''"
    assert 'setup_celeba("kaggle")' in kaggle["run"] and "CELEBA_DIR=" in kaggle["run"]
    assert build["env"]["KAGGLE_KEY"] == "${{ secrets.KAGGLE_KEY }}"
    # The model cache, keyed by the digest of the code that trains the models, is where training puts them.
    digest = next(s for s in steps if s.get("id") == "code")
    assert digest["run"] == 'echo "digest=$(.venv/bin/inpaint models digest)" >> "$GITHUB_OUTPUT"'
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["key"].startswith("models-${{ steps.code.outputs.digest }}-")
    assert cache["with"]["restore-keys"].startswith("models-${{ steps.code.outputs.digest }}-")
    assert cache["with"]["path"] == ".inpaintlib-cache/models"
    assert build["env"]["INPAINTLIB_CACHE"] == "${{ github.workspace }}/.inpaintlib-cache"
    assert [s for s in steps if s is digest or s is cache or s is kaggle] == [digest, cache, kaggle], "in this order"
    assert steps.index(kaggle) < len(steps) - 2


def test_the_wheel_carries_the_profiles(tmp_path):
    """A chapter on Colab (pip install from git, no book folder) reads the profiles from the package."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # build a copy: the build leaves build/ and egg-info behind
    shutil.copytree(REPO / "inpaintlib", source / "inpaintlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", f"import sys; {build}", str(tmp_path / "dist")],
                            cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = tmp_path / "dist" / result.stdout.split()[-1]
    assert {"inpaintlib/profiles.yml", "inpaintlib/exercises.yml"} <= set(zipfile.ZipFile(wheel).namelist())
