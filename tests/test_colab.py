"""A chapter's first cells on a fresh machine (Colab): the install cell installs the commit the
build pinned, and the chapter starts on it.

The fresh virtual environment borrows this one's dependencies through a ``.pth`` line (TensorFlow
is not downloaded again) but not inpaintlib: a ``.pth`` line adds a folder to ``sys.path`` without
running its own ``.pth`` files, and this environment's inpaintlib is an editable install that only
those make importable. So the install cell must install it, from a git URL at the pinned commit,
as on Colab; the URL names this repository on disk instead of GitHub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import venv

import pytest

from conftest import REPO
from inpaintlib.book import INSTALL_COMMIT, book_commit, pin_install_cell

GITHUB = "https://github.com/inpainting-book/inpainting-book"


def head_commit() -> str:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the install cell installs from a git URL")
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: there is no commit to pin")
    return found.stdout.strip()


@pytest.fixture
def fresh_python(tmp_path):
    """A new virtual environment that has every dependency of the book but not inpaintlib."""
    folder = tmp_path / "fresh"
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (folder / site.split(str(folder) + "/")[1] / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    missing = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('inpaintlib'))"],
                             capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert missing == "None", "the fresh environment must start without inpaintlib"
    return python


def chapter_cells(tmp_path, commit: str, count: int) -> str:
    """The first ``count`` code cells of chapter 2 at ``commit`` (as it is there: the library it installs
    is too), pinned as the build pins them, as one script."""
    notebook = tmp_path / "02_unet.ipynb"
    shown = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:book/02_unet.ipynb"], capture_output=True)
    notebook.write_bytes(shown.stdout if shown.returncode == 0 else (REPO / "book" / "02_unet.ipynb").read_bytes())
    pin_install_cell(notebook, commit)
    cells = [cell for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"]
    install = "".join(cells[0]["source"])
    assert f'commit = "{commit}"' in install and INSTALL_COMMIT not in install and GITHUB in install
    script = [install.replace(GITHUB, f"file://localhost{REPO}")] + ["".join(c["source"]) for c in cells[1:count]]
    return "\n\n".join(script)


@pytest.mark.slow
def test_the_first_cells_install_the_pinned_commit_and_start_the_chapter(tmp_path, fresh_python):
    commit = head_commit()
    script = chapter_cells(tmp_path, commit, 3)  # install, parameters, set-up
    script += "\n\nimport inpaintlib; print('inpaintlib from', inpaintlib.__file__)"
    ran = subprocess.run([fresh_python, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "CELEBA_DIR": "", "INPAINTLIB_CACHE": str(tmp_path / "cache")})
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Profile: this cell's values (quick, no GPU found)" in ran.stdout and "Data: synthetic faces" in ran.stdout
    assert f"inpaintlib from {fresh_python.parents[1]}" in ran.stdout, "the installed library, not this checkout"
    installed = next(fresh_python.parents[1].glob("lib/python*/site-packages/inpaintlib-*.dist-info"))
    assert json.loads((installed / "direct_url.json").read_text())["vcs_info"]["commit_id"] == commit


@pytest.mark.slow
def test_an_install_that_fails_says_what_to_do_in_one_line(tmp_path, fresh_python):
    head_commit()
    script = chapter_cells(tmp_path, "HEAD", 1).replace('commit = "HEAD"', f'commit = "{"0" * 40}"')  # not a commit
    ran = subprocess.run([fresh_python, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pip could not install inpaintlib[book] @ git+file://localhost{REPO}@{'0' * 40}: ")
    assert last.endswith(f"pip install 'inpaintlib[book] @ git+file://localhost{REPO}'")


@pytest.mark.parametrize("chapter", ["01_background", "02_unet", "03_vaegan", "04_comparison"])
def test_the_build_pins_the_commit_it_builds_into_each_install_cell(chapter, tmp_path):
    notebook = tmp_path / f"{chapter}.ipynb"
    shutil.copy(REPO / "book" / f"{chapter}.ipynb", notebook)
    pin_install_cell(notebook, "1234abcd" * 5)
    install = "".join(next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")["source"])
    assert f'commit = "{"1234abcd" * 5}"' in install and INSTALL_COMMIT not in install
    assert 'package = f"inpaintlib[book] @ git+{repository}@{commit}"' in install


def test_the_commit_is_the_checkouts_and_a_changed_tree_is_said(tmp_path, capsys):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], check=True,  # noqa: E731
                                       capture_output=True, text=True).stdout.strip()
    assert book_commit(tmp_path) is None
    assert "Not a git checkout" in capsys.readouterr().out
    git("init", "-q")
    (tmp_path / "page.md").write_text("one")
    git("add", "page.md")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert book_commit(tmp_path) == git("rev-parse", "HEAD") and capsys.readouterr().out == ""
    (tmp_path / "page.md").write_text("two")
    assert book_commit(tmp_path) == git("rev-parse", "HEAD")
    assert "lacks this working tree's changes" in capsys.readouterr().out
