"""Exercises as data: assignments set up for one exercise, hand-ins, and grading (inpaintlib.exercises)."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import REPO
from inpaintlib.book import SOLUTION_TAG, declared_parameters, drop_solutions
from inpaintlib.cli import main
from inpaintlib.exercises import (
    HAND_IN, HAND_IN_TAG, RECIPE_TAG, grade, load_exercises, reference_note, write_assignment
)

EXERCISES = load_exercises()


def test_every_exercise_names_its_chapters_parameters_and_a_range_for_each_answer():
    assert EXERCISES, "the exercises file is not empty"
    for exercise in EXERCISES.values():
        declared = declared_parameters(REPO / "book" / f"{exercise.chapter}.ipynb")
        assert set(exercise.recipe) <= declared, exercise.id
        assert exercise.answers and exercise.expected, exercise.id
        for by_data in exercise.expected.values():
            for ranges in by_data.values():
                assert set(ranges) == set(exercise.answers), exercise.id
                assert all(low <= high for low, high in ranges.values()), exercise.id


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_an_assignment_sets_the_recipe_after_the_profile_and_hands_in_last(exercise_id, tmp_path):
    exercise = EXERCISES[exercise_id]
    out = write_assignment(exercise_id, tmp_path / "a.ipynb")
    chapter = nbformat.read(REPO / "book" / f"{exercise.chapter}.ipynb", as_version=4)
    written = nbformat.read(out, as_version=4)
    nbformat.validate(written)
    solutions = [cell for cell in chapter.cells if SOLUTION_TAG in cell.metadata.get("tags", [])]
    assert solutions, f"{exercise.chapter} has its solutions"
    assert len(written.cells) == len(chapter.cells) - len(solutions) + 3, "the solutions are left out"
    assert written.metadata["inpaintlib"] == {"exercise": exercise_id}
    tags = [cell.metadata.get("tags", []) for cell in written.cells]
    assert not any(SOLUTION_TAG in t for t in tags) and "Solution" not in "".join(c.source for c in written.cells)
    recipe_at = next(i for i, t in enumerate(tags) if RECIPE_TAG in t)
    assert "parameters" in tags[recipe_at - 2] and "select_profile(" in written.cells[recipe_at - 1].source
    for name, value in exercise.recipe.items():
        assert f"{name} = {value!r}" in written.cells[recipe_at].source
    assert HAND_IN_TAG in tags[-1] and f"hand_in({exercise_id!r}, globals())" in written.cells[-1].source
    assert f"Exercise {exercise_id}: {exercise.title}" in written.cells[1].source
    for name, ask in exercise.asks.items():  # a question: the student's reply, set in the hand-in cell
        assert f"{name} = None" in written.cells[-1].source and ask["question"] in written.cells[1].source


def ran(assignment, record: dict, answers: dict, error: bool = False):
    """The assignment as if executed: the hand-in cell's glued outputs (or an error in it)."""
    notebook = nbformat.read(assignment, as_version=4)
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
    hand_in = notebook.cells[-1]
    if error:
        hand_in.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'scores' is not defined",
                                                  traceback=[])]
    else:
        hand_in.outputs = [nbformat.v4.new_output(
            "display_data", data={"application/papermill.record/text/plain": repr(json.dumps(value))},
            metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})
            for name, value in {**answers, HAND_IN: record}.items()]
    nbformat.write(notebook, assignment)
    return assignment


def handed(exercise_id: str, tmp_path, inside: bool = True, replies: dict | None = None, **record):
    """A submission of ``exercise_id`` at the smoke profile on synthetic faces, every answer inside its
    range (or above it), the questions' ``replies``, with the record's fields replaced by ``record``."""
    exercise = EXERCISES[exercise_id]
    ranges = exercise.expected["smoke"]["synthetic"]
    answers = {exercise.answer_name(name): (low + high) / 2 if inside else high + 1
               for name, (low, high) in ranges.items()}
    answers.update({exercise.answer_name(name): reply for name, reply in (replies or {}).items()})
    base = {"id": exercise_id, "parameters": dict(exercise.recipe), "profile": "smoke", "changed": {},
            "data": "synthetic"}
    return ran(write_assignment(exercise_id, tmp_path / "s.ipynb"), {**base, **record}, answers)


def test_grading_checks_each_answer_against_its_range(tmp_path, capsys):
    rows = grade(handed("2.2", tmp_path))
    assert [row["passed"] for row in rows] == [True] and rows[0]["check"] == "answer_2_2_psnr_hole"
    assert main(["grade", str(tmp_path / "s.ipynb")]) == 0
    assert capsys.readouterr().out.startswith("pass  answer_2_2_psnr_hole = ")
    handed("2.5", tmp_path, inside=False)
    assert main(["grade", str(tmp_path / "s.ipynb"), "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)
    assert [row["check"] for row in checks] == ["answer_2_5_psnr_hole", "answer_2_5_sharpness"]
    assert not any(row["passed"] for row in checks) and all(row["found"] > row["expected"][1] for row in checks)


def test_a_question_is_graded_by_the_runs_own_interval(tmp_path, capsys):
    """Exercise 4.6 asks whether the U-Net is still clearly ahead: the right reply is what the run's
    paired interval says (its rule), whatever the reference runs said."""
    exercise = EXERCISES["4.6"]
    assert exercise.asks["still_ahead"]["rule"] == "lead_low > 0"
    low = exercise.expected["smoke"]["synthetic"]["lead_low"]
    right = (low[0] + low[1]) / 2 > 0  # what handed() hands in for lead_low, the middle of its range
    rows = grade(handed("4.6", tmp_path, replies={"still_ahead": right}))
    assert [row["check"] for row in rows] == ["answer_4_6_lead_low", "answer_4_6_lead_high", "answer_4_6_still_ahead"]
    assert all(row["passed"] for row in rows) and rows[-1]["expected"] is right
    handed("4.6", tmp_path, replies={"still_ahead": not right})
    assert main(["grade", str(tmp_path / "s.ipynb")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [line for line in out[:2] if line.startswith("pass  ")]
    assert out[2] == f"FAIL  answer_4_6_still_ahead = {not right} (expected {right}: lead_low > 0 in this run)"


def test_a_solution_puts_the_run_beside_the_recipes_reference_runs():
    import pandas as pd

    exercise = EXERCISES["2.2"]
    low, high = exercise.expected["smoke"]["synthetic"]["psnr_hole"]
    trained = type("Model", (), {"name": "U-Net"})()
    run = {"scores": pd.DataFrame({"psnr_hole": [high + 2.0]}, index=["U-Net"]), "trained": trained,
           "profile_name": "smoke", "data": "synthetic", "mask_channel": True}
    note = reference_note("2.2", run)
    assert "the smoke profile, the synthetic faces" in note and "`mask_channel = False`" in note
    assert f"| `psnr_hole` | {high + 2.0:.4g} | {low:.4g} to {high:.4g} | down |" in note
    assert "No reference runs of this recipe at the full profile" in reference_note("2.2", {**run, "profile_name": "full"})
    del run["scores"]  # an answer this run cannot compute: a dash, not an error
    assert "| `psnr_hole` | – |" in reference_note("2.2", run)


def test_a_classroom_edition_leaves_the_solutions_out():
    chapter = nbformat.read(REPO / "book" / "04_comparison.ipynb", as_version=4)
    count = len(chapter.cells)
    dropped = drop_solutions(chapter)
    assert dropped == 1 + 1 + 6, "the glue cell, the note and one solution per exercise"
    assert len(chapter.cells) == count - dropped and "Solution 4.1" not in "".join(c.source for c in chapter.cells)
    assert sum(c.source.startswith(tuple(f"{k}. **" for k in range(1, 7))) for c in chapter.cells) == 6


def chapter_defaults(chapter: str) -> dict:
    """The values a chapter's parameters cell sets (the chapter as it is)."""
    notebook = nbformat.read(REPO / "book" / f"{chapter}.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    values: dict = {}
    exec(cell.source, {}, values)  # noqa: S102 - the book's own cell
    return values


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_the_chapter_as_it_is_fails_each_exercises_recipe_check(exercise_id, tmp_path, capsys):
    """Handed in with the chapter's own values of the recipe's parameters, every exercise is
    refused, naming the first parameter the recipe changes and the value it sets."""
    exercise = EXERCISES[exercise_id]
    defaults = chapter_defaults(exercise.chapter)
    name, value = next(iter(exercise.recipe.items()))
    assert defaults[name] != value, f"exercise {exercise_id} changes {name}"
    handed(exercise_id, tmp_path, parameters={n: defaults[n] for n in exercise.recipe},
           replies={ask: True for ask in exercise.asks})
    assert main(["grade", str(tmp_path / "s.ipynb")]) == 2
    err = capsys.readouterr().err
    assert f"parameters are not exercise {exercise_id}'s recipe: {name} = {defaults[name]!r} (the recipe sets {value!r})" in err


def submission_mistakes():
    def text_file(tmp_path):
        (tmp_path / "s.ipynb").write_text("not json")
        return []

    def not_run(tmp_path):
        write_assignment("2.2", tmp_path / "s.ipynb")
        return []

    def error(tmp_path):
        ran(write_assignment("2.2", tmp_path / "s.ipynb"), {}, {}, error=True)
        return []

    def unmodified(tmp_path):  # the recipe's value put back: the chapter as it is
        handed("2.2", tmp_path, parameters={"mask_channel": True})
        return []

    return {
        "not-a-notebook": (text_file, "s.ipynb is not a notebook (NotJSONError"),
        "not-run": (not_run, "s.ipynb hands nothing in: it was not run; run it, or grade it with --rerun"),
        "ran-with-an-error": (error, "s.ipynb ran with an error, in cell"),
        "another-exercise": (lambda t: handed("2.2", t) and ["--exercise", "2.1"],
                             "s.ipynb hands in exercise 2.2, not 2.1"),
        "unmodified-chapter": (unmodified, "s.ipynb's parameters are not exercise 2.2's recipe: mask_channel = True "
                                           "(the recipe sets False)"),
        "a-profile-value-changed": (lambda t: handed("2.2", t, changed={"steps": 50}) and [],
                                    "s.ipynb ran the smoke profile with steps = 50, which exercise 2.2 does not change"),
        "no-range-for-its-profile": (lambda t: handed("2.2", t, profile="full") and [],
                                     "exercise 2.2 has no reference range for the full profile on synthetic data"),
        "a-question-unanswered": (lambda t: handed("4.6", t, replies={"still_ahead": None}) and [],
                                  "s.ipynb does not answer still_ahead (Is the U-Net still clearly ahead of the best "
                                  "classical method on centre holes of the larger size?): set still_ahead = True or "
                                  "False in its last cell"),
        "unknown-exercise": (lambda t: handed("2.2", t) and ["--exercise", "9.9"], "no exercise '9.9': the exercises are 2.1"),
    }


@pytest.mark.parametrize("case", list(submission_mistakes()))
def test_a_submission_that_cannot_be_graded_is_one_line_and_exit_2(case, tmp_path, capsys):
    make, expected = submission_mistakes()[case]
    extra = make(tmp_path)
    assert main(["grade", str(tmp_path / "s.ipynb"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("inpaint: error: ") and expected in err, err


def test_assignment_mistakes_are_one_line(tmp_path, capsys):
    assert main(["assignment", "9.9", "-o", str(tmp_path / "a.ipynb")]) == 2
    assert "no exercise '9.9': the exercises are 2.1, 2.2" in capsys.readouterr().err
    assert main(["assignment", "2.1", "-o", str(tmp_path / "absent" / "a.ipynb")]) == 2
    assert f"the folder {tmp_path / 'absent'} does not exist" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "absent.ipynb")]) == 2
    assert "absent.ipynb does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a.ipynb").exists()
    (tmp_path / "s.ipynb").write_text("not json")
    assert main(["grade", str(tmp_path / "s.ipynb"), "--profile", "smoke"]) == 2
    assert "--profile sets the profile of a rerun: add --rerun" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "s.ipynb"), "--rerun"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s.ipynb is not a notebook papermill can run" in err, err
