"""The chapters the session's smoke build executed ran whole: every code cell, in order, in one
kernel, without an error. Papermill stops at a failing cell, so this also shows that nothing was
skipped (outputs are not compared: training on a CPU is not bit-for-bit repeatable).

What nbval-lax checked by running the executed chapters a second time, read from the one run
papermill already made.
"""

from __future__ import annotations

import nbformat
import pytest

pytestmark = pytest.mark.slow


def test_every_code_cell_of_every_executed_chapter_ran_in_order_without_an_error(smoke_book):
    executed = sorted((smoke_book / "_build" / "executed" / "book").glob("*.ipynb"))
    assert [path.stem for path in executed] == ["01_background", "02_unet", "03_vaegan", "04_comparison"]
    for path in executed:
        cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        counts = [cell.execution_count for cell in cells]
        assert counts == list(range(1, len(cells) + 1)), f"{path.name}: cells ran as {counts}"
        errors = [output for cell in cells for output in cell.outputs if output.output_type == "error"]
        assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
        # papermill's own record: no cell failed, and each one finished.
        assert all(cell.metadata.papermill.get("exception") is False for cell in cells), path.name
        assert all(cell.metadata.papermill.get("end_time") for cell in cells), path.name
