"""What made a result: digests of the code and the libraries, for the caches' keys.

Three caches reuse work only while the code that made it is unchanged: the
decoded images (keyed by the decoding code), the trained models and the
executed chapters (both keyed by :func:`.code_digest`, the whole package and
the TensorFlow and Keras it ran on). A classroom exercise that edits any of
it, a mask function say, retrains what the edit could change.

Nothing here imports TensorFlow: the versions are read from the installed
packages' metadata.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_digest(paths) -> str:
    """A short hash of files' names (relative to the package) and bytes.

    Examples
    --------
    >>> len(source_digest([PACKAGE / "provenance.py"]))
    16
    """
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        name = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
        digest.update(f"{name}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def package_sources() -> list[Path]:
    """Every Python source of the package, its subpackages included, in a fixed order."""
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


@functools.cache
def module_version(module: str) -> str:
    """The installed version of the distribution that provides an importable module.

    ``module_version("tensorflow")`` finds ``tensorflow``, ``tensorflow-cpu``,
    ``tf-nightly`` or whichever distribution installed the ``tensorflow``
    package; "not installed" where none did.

    Examples
    --------
    >>> module_version("numpy") == metadata.version("numpy")
    True
    """
    names = metadata.packages_distributions().get(module, [])
    for name in [module, *names]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> str:
    """The TensorFlow and Keras that compute here, e.g. ``"tensorflow 2.21.0, keras 3.15.1"``."""
    return ", ".join(f"{module} {module_version(module)}" for module in ("tensorflow", "keras"))


def code_digest() -> str:
    """A short hash of everything in the package's code and libraries that can shape a result:
    every source file (walked recursively) and the TensorFlow and Keras versions."""
    digest = hashlib.sha256(source_digest(package_sources()).encode())
    digest.update(library_versions().encode())
    return digest.hexdigest()[:16]
