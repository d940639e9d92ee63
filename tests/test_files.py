"""inpaintlib.files: atomic_write (the final name holds the old content or the new, never a part), hold_lock."""

from __future__ import annotations

import pytest

from inpaintlib.files import atomic_write, hold_lock


def test_atomic_write_replaces_the_file_readable_by_all(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old", "the final name changes only at the end"
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(tmp_path.iterdir()) == [target], "no temporary file left"


def test_atomic_write_interrupted_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_held_lock_refuses_another_holder_until_it_is_released(tmp_path):
    held = hold_lock(tmp_path / "run.lock")
    with pytest.raises(BlockingIOError):
        hold_lock(tmp_path / "run.lock")  # another open file of it: as another process would be
    held.close()
    hold_lock(tmp_path / "run.lock").close()
