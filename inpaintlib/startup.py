"""TensorFlow's start-up lines, kept out of the command line, the chapters and the book's build log.

On a machine without a GPU, importing TensorFlow prints lines such as
``Could not find cuda drivers on your machine`` and ``failed call to cuInit:
INTERNAL: CUDA error`` before anything else. They come through absl's logging
before it is initialised, which ``TF_CPP_MIN_LOG_LEVEL`` does not reach, so
they bury a user's one-line mistake under four alarming and false ones.

Importing :mod:`.inpaintlib` installs a one-shot import hook: the first
``import tensorflow`` (by the library, by Keras, or by a chapter) runs with
the process's stderr (file descriptor 2) captured, and so does TensorFlow's
first look for a GPU, where CUDA's own lines come from; absl's log lines are
then dropped and anything else that was written is passed on. Afterwards
``TF_CPP_MIN_LOG_LEVEL=3`` keeps TensorFlow's C++ logging quiet too: on a
CPU it logs harmless "errors" while it runs (``oneDNN supports DT_INT32 only
on platforms with AVX-512``, Grappler's ``remapper failed``), and a real
failure reaches Python as an exception anyway.

A user who sets ``TF_CPP_MIN_LOG_LEVEL`` (0 shows everything) asks for
TensorFlow's logging: then nothing is hidden.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
#: The level inpaintlib sets, exported beside it so that a child process (a chapter's kernel)
#: can tell the library's setting from the user's.
_OWN_LEVEL_ENV = "INPAINTLIB_TF_LOG_LEVEL"
_LEVEL = "3"
#: absl's banner, its log lines ("I0000 00:00:1796117837.653447    2114 port.cc:153] ..."), and the
#: second line of TensorFlow's CPU-instructions notice.
_STARTUP_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*"
    r"|To enable the following instructions: .*"
)


def quiet_tensorflow_startup() -> None:
    """Hide TensorFlow's start-up lines from the next ``import tensorflow`` (see the module docstring).

    Does nothing where TensorFlow is imported already, or where the user set
    ``TF_CPP_MIN_LOG_LEVEL``.
    """
    level = os.environ.get(LEVEL_ENV)
    if "tensorflow" in sys.modules or (level is not None and level != os.environ.get(_OWN_LEVEL_ENV)):
        return
    os.environ[LEVEL_ENV] = os.environ[_OWN_LEVEL_ENV] = _LEVEL
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def is_tensorflow_log_line(line: str) -> bool:
    """Whether a line of stderr is TensorFlow's C++ logging (absl's format), as at its start-up.

    Examples
    --------
    >>> is_tensorflow_log_line("E0000 00:00:1796117848.745270    2135 cuda_platform.cc:52] failed call to cuInit")
    True
    >>> is_tensorflow_log_line("inpaint: error: CelebA path /nowhere does not exist")
    False
    """
    return _STARTUP_LINE.fullmatch(line.rstrip("\r\n")) is not None


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as the other finders do, and wraps its loader in :class:`._QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one shot: also keeps find_spec below from finding this finder
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with its start-up lines hidden."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _startup_lines_hidden():
            self._loader.exec_module(module)
            # CUDA speaks when TensorFlow first looks for a GPU, not at import: look now.
            module.config.list_physical_devices("GPU")


@contextlib.contextmanager
def _startup_lines_hidden():
    """Capture file descriptor 2; on exit, pass on what was written there but start-up lines."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_tensorflow_log_line(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
