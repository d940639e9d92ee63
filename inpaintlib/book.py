"""Building the book: execute each chapter with papermill, then render with Jupyter Book.

Chapters are committed without outputs. ``build_book`` copies the book into a
staging folder (``_build/executed/``), executes every notebook there with a
profile's parameters, and runs ``jupyter-book build`` on it with execution off
and warnings as errors, so the HTML lands in ``_build/html/``.

An executed chapter is kept in ``_build/chapters/``, keyed by everything that
shapes its run: the notebook, its parameters, the library's source, the data
it resolves to, and the versions of TensorFlow and Keras. A rebuild that
changes none of them re-renders the chapter without running it again.

The exercises' solutions are cells tagged ``solution`` (collapsed blocks in the
HTML); a classroom edition (``solutions=False``) leaves them out of the pages,
after execution, so both editions share the executed chapters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import yaml

from inpaintlib.errors import ConfigError
from inpaintlib.files import atomic_write
from inpaintlib.profiles import BUILD_OVERRIDES, chapter_parameters, load_profiles, override_targets


#: Parameters a chapter takes from an earlier chapter's run, each with that chapter and the name it glues.
#: Chapters 3 and 4 so compare exactly the U-Net chapter 2 ran and the VAE-GAN chapter 3 ran.
SHARED_MODELS = {"chapter_2_unet": ("02_unet", "unet_config"), "chapter_3_vaegan": ("03_vaegan", "vaegan_config")}


#: The line of a chapter's install cell (its first) that names the commit it installs; the build
#: writes the commit it was built from there, so a page's notebook installs the library it ran.
INSTALL_COMMIT = 'commit = "main"'


#: The tag of a chapter's solution cells, which a classroom edition and ``inpaint assignment`` leave out.
SOLUTION_TAG = "solution"


class ChapterError(RuntimeError):
    """A chapter failed to execute, or the HTML build failed."""


def find_book_root(start: str | Path | None = None) -> Path:
    """The folder holding ``_config.yml`` and ``_toc.yml``: ``start``, the working folder, or the repository."""
    candidates = [Path(start)] if start else [Path.cwd(), Path(__file__).resolve().parents[1]]
    for folder in candidates:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder.resolve()
    where = start or "the working folder"
    raise ConfigError(
        f"no book in {where}: run inpaint book in the inpainting-book folder (it holds _config.yml "
        f"and _toc.yml) or pass --root PATH"
    )


def list_chapters(root: Path) -> list[Path]:
    """The notebooks of the table of contents, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    files.append(toc.get("root"))
    walk(toc.get("parts", toc.get("chapters", [])))
    return [root / f"{name}.ipynb" for name in files if name and (root / f"{name}.ipynb").is_file()]


def declared_parameters(notebook: Path) -> set[str]:
    """The names assigned in a notebook's ``parameters`` cell."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def build_book(
    profile: str = "quick",
    data: str | None = None,
    overrides: dict | None = None,
    root: str | Path | None = None,
    html: bool = True,
    rerun: bool = False,
    only: list[str] | None = None,
    solutions: bool = True,
) -> Path:
    """Execute every chapter with a profile's parameters, then build the HTML.

    Parameters
    ----------
    profile : str
        A profile of ``inpaintlib/profiles.yml``; the chapters get its name and its values,
        with ``profile_overrides`` (the ``-p`` values), so they run at that scale on any device.
    data : str, optional
        Data spec for every chapter (default: each chapter's own, ``auto``).
    overrides : dict, optional
        Parameter name -> value, applied to every chapter that declares it.
    root : path, optional
        The book's folder; see :func:`.find_book_root`.
    html : bool
        Build the HTML after executing (False: only execute the chapters).
    rerun : bool
        Execute every chapter, even one whose last run is still current.
    only : list of str, optional
        Chapter names (``"02_unet"``): a book of these chapters alone, with the
        pages that name no other chapter. The profile and the overrides are
        still checked against every chapter.
    solutions : bool
        Keep the exercises' solutions (collapsed blocks); False builds a classroom edition
        without them (:func:`.drop_solutions`).

    Returns
    -------
    Path
        ``_build/html/index.html`` (or the staging folder when ``html`` is False).
    """
    import papermill

    logging.getLogger("papermill").addFilter(_known_parameter)  # once: the same function
    root = find_book_root(root)
    chapters = list_chapters(root)
    declared = {chapter.stem: declared_parameters(chapter) for chapter in chapters}
    parameters = chapter_parameters(load_profiles(), profile, declared, data, overrides)
    for spelled, targets in override_targets(declared, overrides or {}).items():
        print(f"-p {spelled} {overrides[spelled]!r}: sets it in {', '.join(targets)}", flush=True)
    if only is not None:
        unknown = sorted(set(only) - set(declared))
        if unknown:
            raise ConfigError(f"unknown chapter(s) {', '.join(unknown)}: the chapters are {', '.join(declared)}")
        chapters = [chapter for chapter in chapters if chapter.stem in only]

    staging = root / "_build" / "executed"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", staging / "_config.yml")
    left_out = {str(path.relative_to(root).with_suffix("")) for path in list_chapters(root)} - {
        str(chapter.relative_to(root).with_suffix("")) for chapter in chapters}
    # A page that links to a chapter left out (the library page names them all) is left out too.
    left_out |= {str(page.relative_to(root).with_suffix("")) for page in (root / "book").glob("*.md")
                 if any(Path(name).name in page.read_text() for name in left_out)}
    (staging / "_toc.yml").write_text(yaml.safe_dump(_toc_without(yaml.safe_load((root / "_toc.yml").read_text()),
                                                                 left_out), sort_keys=False))
    shutil.copytree(root / "book", staging / "book", ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for page in (staging / "book").glob("*.md"):  # the front page pastes chapter 4's figure
        page.write_text(_without_glue_from(page.read_text(), left_out))

    kept = root / "_build" / "chapters"
    kept.mkdir(parents=True, exist_ok=True)
    commit = book_commit(root)
    ran = {}  # chapter name -> its executed notebook, for the configs later chapters take
    for chapter in chapters:
        target = staging / chapter.relative_to(root)
        for parameter, (source, name) in SHARED_MODELS.items():
            if parameter in declared[chapter.stem] and source in ran:
                parameters[chapter.stem][parameter] = glued(ran[source], name)
        ran[chapter.stem] = target
        executed = kept / f"{chapter.stem}-{run_key(chapter, parameters[chapter.stem])}.ipynb"
        if executed.is_file() and not rerun:
            shutil.copy2(executed, target)
            _publish(target, commit, solutions)
            print(f"{chapter.relative_to(root)}: unchanged since its last run, not executed again", flush=True)
            continue
        print(f"Executing {chapter.relative_to(root)} ({profile} profile) ...", flush=True)
        started = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(chapter), str(target), parameters=parameters[chapter.stem], cwd=str(target.parent),
                kernel_name="python3", progress_bar=False,
                # What the kernel writes on its file descriptors goes to the build log, not into the
                # chapter; and a local kernel need not warn that its local TCP is not encrypted.
                extra_arguments=["--IPKernelApp.capture_fd_output=False", "--IPKernelApp.log_level=ERROR"],
            )
        except papermill.PapermillExecutionError as error:
            raise ChapterError(
                f"{chapter.name} failed in cell {error.exec_count}: {error.ename}: {error.evalue} "
                f"(the executed notebook is {target})"
            ) from None
        for stale in kept.glob(f"{chapter.stem}-*.ipynb"):
            stale.unlink()
        with atomic_write(executed) as out, target.open("rb") as source:  # a killed build leaves no half chapter
            shutil.copyfileobj(source, out)
        _publish(target, commit, solutions)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    if not html:
        return staging
    if "book/try_it" not in left_out:
        _try_it_assets(staging, root, parameters.get("04_comparison", {}).get("data", "auto"))

    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging),
               "--path-output", str(root), "--warningiserror", "--nitpick", "--keep-going"]
    if subprocess.run(command).returncode != 0:
        raise ChapterError("jupyter-book build failed (warnings count as errors); its messages are above")
    _write_glued_images(staging, root / "_build" / "html")
    index = root / "_build" / "html" / "index.html"
    print(f"The book is in {index}")
    return index


def book_commit(root: Path) -> str | None:
    """The commit the book is built from (``git rev-parse HEAD``), None outside a git checkout.
    Prints a line when the working tree has changes that commit lacks."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit, changed = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        print("Not a git checkout: the chapters' install cells keep installing the newest library (main)")
        return None
    if changed:
        print(f"The chapters' install cells name commit {commit[:12]}, which lacks this working tree's changes")
    return commit


def _publish(notebook: Path, commit: str | None, solutions: bool) -> None:
    """Make a staged executed chapter the page a reader gets: its install cell pinned, and, in a
    classroom edition, no solutions."""
    pin_install_cell(notebook, commit)
    if not solutions:
        drop_solutions(notebook)


def drop_solutions(notebook) -> int:
    """Leave out a notebook's solution cells (tagged :data:`SOLUTION_TAG`); ``notebook`` is an
    nbformat notebook, changed in place, or a path, rewritten. Returns how many were left out."""
    import nbformat

    path = None if isinstance(notebook, nbformat.NotebookNode) else Path(notebook)
    chapter = nbformat.read(path, as_version=4) if path else notebook
    kept = [cell for cell in chapter.cells if SOLUTION_TAG not in cell.metadata.get("tags", [])]
    dropped, chapter.cells = len(chapter.cells) - len(kept), kept
    if path:
        nbformat.write(chapter, path)
    return dropped


def pin_install_cell(notebook: Path, commit: str | None) -> None:
    """Write ``commit`` into a chapter's install cell (its first code cell, ``INSTALL_COMMIT``)."""
    import nbformat

    if commit is None:
        return
    chapter = nbformat.read(notebook, as_version=4)
    cell = next(cell for cell in chapter.cells if cell.cell_type == "code")
    if INSTALL_COMMIT not in cell.source:
        raise ChapterError(f"{notebook.name}'s first code cell installs no pinned commit (no line {INSTALL_COMMIT})")
    cell.source = cell.source.replace(INSTALL_COMMIT, f'commit = "{commit}"', 1)
    nbformat.write(chapter, notebook)


def _write_glued_images(staging: Path, html: Path) -> None:
    """Write the images the chapters glued where a page that pastes them from another page links
    them, ``_images/<sha256>.png``: myst-nb 1.4 links such an image (the front page's figure) but
    never writes it."""
    import base64

    import nbformat

    for notebook in (staging / "book").glob("*.ipynb"):
        for cell in nbformat.read(notebook, as_version=4).cells:
            for output in cell.get("outputs", []):
                # glue(display=False) keeps the image under a prefixed MIME type
                prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
                if f"{prefix}image/png" in output.get("data", {}):
                    image = base64.b64decode(output["data"][f"{prefix}image/png"])
                    target = html / "_images" / f"{hashlib.sha256(image).hexdigest()}.png"
                    target.parent.mkdir(exist_ok=True)
                    target.write_bytes(image)


def _without_glue_from(text: str, left_out: set[str]) -> str:
    r"""A page's MyST without its ``{glue}`` blocks that paste from a chapter left out of the book.

    Examples
    --------
    >>> page = "Intro\n```{glue} figure\n:doc: 04_comparison.ipynb\n```\nText"
    >>> _without_glue_from(page, {"book/04_comparison"})
    'Intro\nText'
    """
    def kept(block: re.Match) -> str:
        return "" if f"book/{block['doc']}" in left_out else block[0]

    return re.sub(r"```\{glue\} \S+\n:doc: (?P<doc>\S+)\.ipynb\n```\n", kept, text)


def _known_parameter(record: logging.LogRecord) -> bool:
    """papermill's log without its warning that profile_overrides, the build's own parameter,
    is in no chapter's parameters cell."""
    return BUILD_OVERRIDES not in record.getMessage()


def _try_it_assets(staging: Path, root: Path, data: str) -> None:
    """The Try it page's models (chapter 4's U-Net and VAE-GAN), faces and runtime, into its static folder."""
    from inpaintlib.tryit import write_assets

    models = glued(staging / "book" / "04_comparison.ipynb", "comparison")["models"]
    missing = sorted({"U-Net", "VAE-GAN"} - set(models))
    if missing:
        raise ChapterError(f"chapter 4 compared no model named {' or '.join(missing)} (it compared "
                           f"{', '.join(models)}): the Try it page shows its U-Net and its VAE-GAN")
    write_assets({"unet": models["U-Net"], "vaegan": models["VAE-GAN"]}, data,
                 staging / "book" / "_static" / "try", root)


def glued(notebook: Path, name: str):
    """The value an executed chapter glued under ``name`` (myst-nb's ``glue`` of a JSON string)."""
    import nbformat

    values = glued_values(nbformat.read(notebook, as_version=4))
    if name in values:
        return values[name]
    raise ChapterError(f"{notebook.name} glued nothing named {name!r}")


def glued_values(notebook) -> dict:
    """Every value an executed notebook (an nbformat node) glued as JSON text
    (``glue(name, json.dumps(value))``), by name; the first where a name is glued twice."""
    import ast

    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            # glue(display=False) stores it under a prefixed MIME type, application/papermill.record/...
            text = next((value for key, value in output.get("data", {}).items() if key.endswith("text/plain")), None)
            if name is None or text is None or name in values:
                continue
            try:
                values[name] = json.loads(ast.literal_eval(text))
            except (ValueError, SyntaxError, TypeError):
                continue  # glued as something other than JSON text (a figure, Markdown)
    return values


def _toc_without(node, files: set[str]):
    """A table of contents (its YAML, parsed) without the entries of ``files``."""
    if isinstance(node, list):
        return [_toc_without(item, files) for item in node if not (isinstance(item, dict) and item.get("file") in files)]
    if isinstance(node, dict):
        return {key: _toc_without(value, files) for key, value in node.items()}
    return node


def run_key(chapter: Path, parameters: dict) -> str:
    """A hash of everything that shapes a chapter's run; equal keys, equal chapters (timings aside)."""
    from inpaintlib.data import DataWarning, data_identity
    from inpaintlib.provenance import code_digest, source_digest

    digest = hashlib.sha256(chapter.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    with warnings.catch_warnings():  # the chapter itself says which data it runs on
        warnings.simplefilter("ignore", DataWarning)
        # What the data the chapter will read holds: "auto" follows $CELEBA_DIR.
        digest.update(data_identity(str(parameters.get("data", "auto"))).encode())
    # The library's code and the TensorFlow and Keras it runs on, as the model cache keys them
    # (read without importing TensorFlow into the build process), and the profiles.
    digest.update(code_digest().encode())
    digest.update(source_digest([Path(__file__).with_name("profiles.yml")]).encode())
    return digest.hexdigest()[:16]
