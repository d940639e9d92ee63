"""The book's library page (book/library.md) stays true to the code: it documents every module, and
its table of which chapter uses which function is the one the chapters' code gives.

``python tests/test_library_page.py`` prints that table, to paste into the page after a change.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "library.md"
CHAPTERS = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))


def library_modules() -> list[str]:
    """Every module of the package, as dotted names, packages included."""
    package = REPO / "inpaintlib"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def public_members() -> dict[str, object]:
    """Public functions and classes by their dotted name, ``inpaintlib.data.loading.load_images``,
    each under the module that defines it (not the ones that re-export it)."""
    members = {}
    for name in library_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            if getattr(value, "__module__", None) == name:
                members[f"{name}.{attribute}"] = value
    return members


def names_used(source: str) -> set[str]:
    """The dotted names of library objects that a chapter's code uses: imported from inpaintlib,
    or reached as attributes of an imported inpaintlib module."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    modules, objects = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("inpaintlib"):
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                target = modules if _is_module(dotted) else None
                if target is not None:
                    target[alias.asname or alias.name] = dotted
                else:
                    objects.add(dotted)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("inpaintlib"):
                    modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            objects.add(f"{modules[node.value.id]}.{node.attr}")
    return objects


def _is_module(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
        return True
    except ImportError:
        return False


def chapter_uses() -> dict[str, list[str]]:
    """Each public function or class (by its defining module) -> the chapters whose code uses it."""
    members = public_members()
    defining = {id(value): name for name, value in members.items()}
    uses = {name: [] for name in members}
    for chapter in CHAPTERS:
        cells = nbformat.read(chapter, as_version=4).cells
        source = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
        for dotted in names_used(source):
            module, _, attribute = dotted.rpartition(".")
            value = getattr(importlib.import_module(module), attribute, None)
            if id(value) in defining and chapter.stem not in uses[defining[id(value)]]:
                uses[defining[id(value)]].append(chapter.stem)
    return uses


def usage_table() -> str:
    """The page's table: one row per public function or class, with the chapters that use it."""
    rows = ["| function or class | used in |", "| --- | --- |"]
    for name, chapters in chapter_uses().items():
        where = ", ".join(f"{{doc}}`{chapter[:2].lstrip('0')} <{chapter}>`" for chapter in chapters) or "—"
        rows.append(f"| {{py:obj}}`~{name}` | {where} |")
    return "\n".join(rows)


def test_the_page_documents_every_module_of_the_package():
    text = PAGE.read_text()
    documented = re.findall(r"^\.\. automodule:: (\S+)$", text, re.M)
    assert sorted(documented) == sorted(library_modules())


def test_the_pages_table_says_which_chapter_uses_each_function():
    assert usage_table() in PAGE.read_text(), "regenerate the table: python tests/test_library_page.py"


def test_the_usage_finder_sees_imports_and_module_attributes():
    source = ("from inpaintlib import data as datalib, masks\nfrom inpaintlib.metrics import evaluate\n"
              "%matplotlib inline\ndatalib.load_images('synthetic')\nmasks.draw_masks\n")
    assert names_used(source) == {"inpaintlib.metrics.evaluate", "inpaintlib.data.load_images",
                                  "inpaintlib.masks.draw_masks"}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(usage_table())
