"""The inpaint command line: user mistakes are one line on stderr and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import write_celeba

from inpaintlib.cli import main


def run_inpaint(*args, env=None):
    return subprocess.run([sys.executable, "-m", "inpaintlib.cli", *args], capture_output=True, text=True, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("inpaint")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_data_command_reports_split_sizes(tmp_path, capsys):
    root = write_celeba(tmp_path / "c", [0, 0, 0, 1, 2, 2])
    assert main(["data", "--data", f"celeba:{root}", "--image-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "CelebA" in out and "train            3" in out and "validation       1" in out and "test             2" in out


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["data", "--data", "celeba:/no/such/folder"], ["does not exist", "celeba:PATH"]),
        (["data", "--data", "flickr"], ["unknown data spec 'flickr'"]),
        (["data", "--image-size", "4", "--data", "synthetic"], ["image_size must be an integer of at least 8"]),
        (["data", "--image-size", "big"], ["invalid int value: 'big'", "--help"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["book", "--profile", "enormous", "--no-html"], ["unknown profile 'enormous'", "smoke, quick, full"]),
        (["book", "--profile", "smoke", "-p", "n_faeces", "3", "--no-html"], ["unknown parameter 'n_faeces'", "n_faces"]),
    ],
)
def test_mistakes_are_one_line_and_exit_2(args, fragments):
    assert_one_line_error(run_inpaint(*args), *fragments)


def test_book_outside_a_book_folder_says_where_to_run(tmp_path):
    assert_one_line_error(run_inpaint("book", "--root", str(tmp_path)), "no book in", "--root")
