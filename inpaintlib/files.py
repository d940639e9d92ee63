"""Files written whole or not at all (caches, checkpoints' history, outputs, executed chapters),
and locks that keep two processes from writing the same thing at once.

A process killed while writing (Ctrl-C, a lost Colab runtime, SIGKILL) must never leave a
half-written file under the final name, because the next run would read it as complete; nor
a lock that outlives it, which would block the next run forever.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | Path):
    """Write ``path`` through a binary file that replaces it only once fully written.

    The file is a hidden ``.NAME...tmp`` beside ``path`` (the same file system, so the final
    rename is atomic); an exception removes it, and a killed process leaves only it behind,
    never a partial ``path``. The result is readable by all, like a file ``open`` makes.

    Examples
    --------
    >>> import json, tempfile
    >>> target = Path(tempfile.mkdtemp()) / "history.json"
    >>> with atomic_write(target) as f:
    ...     f.write(json.dumps({"step": 1}).encode())
    11
    >>> json.loads(target.read_text())
    {'step': 1}
    """
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
        try:
            yield f.file  # the plain file object: some writers (PIL, NumPy) check its type
            f.flush()
            os.fsync(f.fileno())  # the data on disk before the name points at it
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.chmod(f.name, 0o644)  # temporary files are private; the result need not be
    os.replace(f.name, path)


def hold_lock(path: str | Path, wait: bool = False):
    """Open ``path`` (created if absent) and hold an exclusive lock on it; the open file.

    A kernel lock (``flock``): closing the file releases it, and so does the death of its
    holder, so a killed process blocks no one. Raises ``BlockingIOError`` where another
    process holds the lock and ``wait`` is False, and ``ImportError`` where the system has
    no ``flock`` (it is POSIX only).
    """
    import fcntl

    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        handle.close()
        raise
    return handle
