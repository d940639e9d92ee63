"""Exercises as data: what each one changes, what a submission hands in, and how it is graded.

``inpaintlib/exercises.yml`` holds, for each exercise (``"2.1"``), its chapter, its *recipe* (the
parameters it changes), its *answers* (expressions over the chapter's variables, evaluated at its
end) and the range each answer fell in on reference runs, by profile and data, with the command
that measured them. ``inpaint assignment 2.1 -o a.ipynb`` writes the chapter set up for it: the
recipe in its parameters cell, and a hand-in cell at its end that glues the answers
(:func:`.hand_in`). ``inpaint grade a.ipynb`` reads them back from the executed notebook and
checks each one against its range (:func:`.grade`). An exercise may also *ask* questions the
student answers True or False in the hand-in cell, each graded by a rule over the run's own answers
(chapter 4's capstone: is the U-Net still clearly ahead, by the run's paired interval?).

Each chapter's solutions are collapsed blocks under its exercises, tagged ``solution`` (left out of
assignments and of a classroom edition); :func:`.glue_solutions` gives them this run's values of
the answers beside the recipe's reference ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from inpaintlib.book import drop_solutions, find_book_root, glued_values
from inpaintlib.errors import ConfigError, InpaintError

#: Package data, beside profiles.yml.
EXERCISES_FILE = Path(__file__).with_name("exercises.yml")
#: The name the hand-in cell glues the exercise's id, parameters, profile and data under.
HAND_IN = "exercise"
#: The tag of the cell inpaint assignment adds to set the recipe.
RECIPE_TAG = "exercise-recipe"
#: The tag of the hand-in cell, the last one inpaint assignment adds.
HAND_IN_TAG = "hand-in"


class SubmissionError(InpaintError):
    """A submission that cannot be graded: not a notebook, not run, run with an error, an answer
    missing, another exercise, or parameters that are not the recipe's."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of :data:`EXERCISES_FILE`."""

    id: str
    chapter: str
    title: str
    recipe: dict
    answers: dict
    #: profile -> data ("synthetic" or "celeba") -> answer -> [low, high]
    expected: dict
    #: question name -> its question and its rule (an expression over the answers that gives the right reply)
    asks: dict

    def answer_name(self, answer: str) -> str:
        """The name the hand-in cell glues an answer under: ``answer_2_1_psnr_hole``."""
        return f"answer_{self.id.replace('.', '_')}_{answer}"


def load_exercises(path: str | Path = EXERCISES_FILE) -> dict[str, Exercise]:
    """Every exercise of the exercises file, by id."""
    try:
        entries = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the exercises file {path}: {error}") from None
    return {str(key): Exercise(id=str(key), chapter=entry["chapter"], title=entry["title"],
                               recipe=entry.get("recipe") or {}, answers=entry["answers"],
                               expected=entry.get("expected") or {}, asks=entry.get("asks") or {})
            for key, entry in entries.items()}


def get_exercise(exercise_id: str, exercises: dict | None = None) -> Exercise:
    """The exercise with this id; a :class:`.ConfigError` naming the ids there are otherwise."""
    exercises = load_exercises() if exercises is None else exercises
    if str(exercise_id) not in exercises:
        raise ConfigError(f"no exercise {exercise_id!r}: the exercises are {', '.join(exercises)}")
    return exercises[str(exercise_id)]


def write_assignment(exercise_id: str, out: str | Path, root: str | Path | None = None) -> Path:
    """Write the chapter of an exercise set up for it: a cell after the set-up cell that sets the
    recipe (after the profile, so that no profile undoes it, papermill's ``-p profile smoke``
    included), a note at the top that says so, and a last cell that hands in the answers.

    Returns the path written (atomically).
    """
    import nbformat

    from inpaintlib.files import atomic_write

    exercise = get_exercise(exercise_id)
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: the folder {out.parent} does not exist")
    chapter = find_book_root(root) / "book" / f"{exercise.chapter}.ipynb"
    notebook = nbformat.read(chapter, as_version=4)
    drop_solutions(notebook)
    cells = notebook.cells
    set_up = 1 + next(i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", []))
    recipe = "\n".join(f"{name} = {value!r}" for name, value in exercise.recipe.items())
    cells.insert(set_up + 1, nbformat.v4.new_code_cell(
        f"# Exercise {exercise.id}: its recipe, set after the profile so that no profile undoes it.\n{recipe}",
        metadata={"tags": [RECIPE_TAG]}))
    answers = "\n".join(f"- `{exercise.answer_name(name)}`: `{expression}`" for name, expression in exercise.answers.items())
    answers += "".join(f"\n- `{name}`, your answer, `True` or `False`: {ask['question']}"
                       for name, ask in exercise.asks.items())
    changes = ", ".join(f"`{name} = {value!r}`" for name, value in exercise.recipe.items())
    cells.insert(1, nbformat.v4.new_markdown_cell(
        f"**Exercise {exercise.id}: {exercise.title}.** This notebook is set up for it: the cell after the "
        f"set-up sets its recipe ({changes}). Its last cell hands in, computed from the run:\n\n{answers}\n\n"
        f"Run the whole notebook, then grade it with `inpaint grade {Path(out).name}`."))
    questions = "".join(f"# {ask['question']} True or False:\n{name} = None\n" for name, ask in exercise.asks.items())
    cells.append(nbformat.v4.new_code_cell(
        (f"# Exercise {exercise.id}: your answers, then what you hand in (inpaint grade reads both).\n"
         f"{questions}\n" if questions else
         f"# Exercise {exercise.id}: what you hand in (inpaint grade reads it). Leave it as it is.\n")
        + f"from inpaintlib.exercises import hand_in\n\nhand_in({exercise.id!r}, globals())",
        metadata={"tags": [HAND_IN_TAG]}))
    for index, cell in enumerate(cells):  # nbformat 4.5 wants every cell to have an id
        cell.setdefault("id", f"exercise-{index}")
    notebook.metadata["inpaintlib"] = {"exercise": exercise.id}
    with atomic_write(out) as stream:
        stream.write(nbformat.writes(notebook).encode())
    return out


def hand_in(exercise_id: str, namespace: dict) -> dict:
    """Glue an exercise's answers, evaluated in the chapter's variables, for :func:`.grade`, with
    what it needs to pick their range: the values of the recipe's parameters, the profile, any
    value of that profile the run changed, and the data. Prints the answers."""
    from myst_nb import glue

    exercise = get_exercise(exercise_id)
    answers = {name: float(eval(expression, namespace)) for name, expression in exercise.answers.items()}  # noqa: S307
    # a reply computed with NumPy (numpy.bool_) is handed in as the plain bool it stands for
    replies = {name: getattr(namespace.get(name), "item", lambda: namespace.get(name))() for name in exercise.asks}
    for name, value in {**answers, **replies}.items():
        glue(exercise.answer_name(name), json.dumps(value, default=str), display=False)
    profile, changed, data = _run_of(exercise, namespace)
    record = {"id": exercise.id, "parameters": {name: namespace.get(name) for name in exercise.recipe},
              "profile": profile, "changed": changed, "data": data}
    glue(HAND_IN, json.dumps(record, default=str), display=False)
    for name, value in answers.items():
        print(f"{exercise.answer_name(name)} = {value:.4g}")
    for name, value in replies.items():
        print(f"{exercise.answer_name(name)} = {value!r}")
    return {**answers, **replies}


def _run_of(exercise: Exercise, namespace: dict) -> tuple[str, dict, str]:
    """A chapter run's profile, the values of it the run changed (other than the recipe's), and its data."""
    from inpaintlib.data import parse_data_spec
    from inpaintlib.profiles import changed_values, load_profiles

    # select_profile's label, "quick" or "quick with steps = 50": its profile, and what differs from it
    profile = str(namespace.get("profile_name", "quick")).split(" with ")[0]
    values = (load_profiles().get(profile) or {}).get(exercise.chapter) or {}
    changed = {name: value for name, value in changed_values(values, namespace).items() if name not in exercise.recipe}
    return profile, changed, parse_data_spec(namespace.get("data", "auto")).kind


def handed_in(submission: str | Path, exercise_id: str | None = None) -> tuple[Exercise, dict, dict]:
    """Read an executed submission: its exercise, its hand-in record and its answers.

    Raises :class:`.SubmissionError`, naming the problem and the fix, for a submission that cannot
    be graded: not a notebook, run with an error or not run, nothing handed in, another exercise
    than ``exercise_id``, parameters that are not the recipe's, a profile's value changed, or an
    answer missing.
    """
    import nbformat

    path = Path(submission)
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises whatever its JSON and schema readers raise
        raise SubmissionError(f"{path} is not a notebook ({type(error).__name__}: {error})") from None
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [(cell, output) for cell in code for output in cell.get("outputs", []) if output.output_type == "error"]
    if errors:
        cell, error = errors[0]
        raise SubmissionError(f"{path.name} ran with an error, in cell {cell.execution_count}: {error.ename}: "
                              f"{error.evalue} (fix it and run the notebook again)")
    glued = glued_values(notebook)
    if HAND_IN not in glued:
        ran = any(cell.get("execution_count") for cell in code)
        raise SubmissionError(f"{path.name} hands nothing in: " + (
            "run its last cell, the hand-in cell that inpaint assignment writes" if ran
            else "it was not run; run it, or grade it with --rerun"))
    record = glued[HAND_IN]
    exercise = get_exercise(exercise_id or record["id"])
    if record["id"] != exercise.id:
        raise SubmissionError(f"{path.name} hands in exercise {record['id']}, not {exercise.id}")
    wrong = {name: value for name, value in record["parameters"].items() if value != exercise.recipe[name]}
    if wrong:
        raise SubmissionError(f"{path.name}'s parameters are not exercise {exercise.id}'s recipe: " + ", ".join(
            f"{name} = {value!r} (the recipe sets {exercise.recipe[name]!r})" for name, value in wrong.items()))
    if record["changed"]:
        raise SubmissionError(f"{path.name} ran the {record['profile']} profile with " + ", ".join(
            f"{name} = {value!r}" for name, value in record["changed"].items())
            + f", which exercise {exercise.id} does not change: its reference ranges hold for the profile "
            f"and the recipe alone")
    missing = [exercise.answer_name(name) for name in [*exercise.answers, *exercise.asks]
               if exercise.answer_name(name) not in glued]
    if missing:
        raise SubmissionError(f"{path.name} does not hand in {', '.join(missing)}: run its hand-in cell again")
    return exercise, record, {name: glued[exercise.answer_name(name)] for name in [*exercise.answers, *exercise.asks]}


def grade(submission: str | Path, exercise_id: str | None = None) -> list[dict]:
    """Grade an executed submission: each answer against its range for the run's profile and data.

    Returns one row per answer, ``{"check", "passed", "expected", "found"}`` (expected: its range),
    then one per question, whose expected reply is what its ``rule`` gives on the run's answers (and
    ``"rule"``); a submission that cannot be graded raises :class:`.SubmissionError` (see
    :func:`.handed_in`).
    """
    exercise, record, answers = handed_in(submission, exercise_id)
    for name, ask in exercise.asks.items():
        if not isinstance(answers[name], bool):
            raise SubmissionError(f"{Path(submission).name} does not answer {name} ({ask['question']}): set "
                                  f"{name} = True or False in its last cell, then run that cell again")
    profile, data = record["profile"], record["data"]
    ranges = exercise.expected.get(profile, {}).get(data)
    if ranges is None:
        measured = ", ".join(f"the {p} profile on {d} data" for p, by_data in exercise.expected.items()
                             for d in by_data) or "none yet"
        raise SubmissionError(f"exercise {exercise.id} has no reference range for the {profile} profile on {data} "
                              f"data (measured: {measured}): run it as one of those")
    rows = [{"check": exercise.answer_name(name), "passed": ranges[name][0] <= answers[name] <= ranges[name][1],
             "expected": ranges[name], "found": answers[name]} for name in exercise.answers]
    values = {name: answers[name] for name in exercise.answers}
    for name, ask in exercise.asks.items():  # graded by the run's own answers, not by a range
        right = bool(eval(ask["rule"], {}, values))  # noqa: S307
        rows.append({"check": exercise.answer_name(name), "passed": answers[name] is right, "expected": right,
                     "found": answers[name], "rule": ask["rule"]})
    return rows


def rerun(submission: str | Path, profile: str | None = None, timeout: int = 1800) -> Path:
    """Execute a submission with papermill (at ``profile`` when given), each cell within
    ``timeout`` seconds, into ``<name>-graded.ipynb`` beside it; that path."""
    import papermill
    from nbclient.exceptions import CellTimeoutError

    path = Path(submission)
    out = path.with_name(f"{path.stem}-graded.ipynb")
    try:
        papermill.execute_notebook(str(path), str(out), parameters={"profile": profile} if profile else {},
                                   cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                                   execution_timeout=timeout)
    except papermill.PapermillExecutionError as error:
        raise SubmissionError(f"{path.name} failed when run again, in cell {error.exec_count}: {error.ename}: "
                              f"{error.evalue} (the run is in {out})") from None
    except CellTimeoutError:
        raise SubmissionError(f"a cell of {path.name} ran longer than {timeout} s: raise --timeout, or run it "
                              f"at a smaller profile (--profile smoke)") from None
    except Exception as error:  # papermill's readers: a file that is not a notebook
        raise SubmissionError(f"{path} is not a notebook papermill can run ({type(error).__name__}: {error})") from None
    return out


DATA_NAMES = {"celeba": "CelebA", "synthetic": "the synthetic faces"}


def reference_note(exercise_id: str, namespace: dict) -> str:
    """Markdown for an exercise's solution: this run's values of its answers (the chapter's own
    settings) beside the range its recipe's reference runs handed in at this run's profile and
    data, and which way the recipe moved each; an answer this run cannot compute (a condition only
    the recipe adds) shows a dash."""
    exercise = get_exercise(exercise_id)
    profile, changed, data = _run_of(exercise, namespace)
    ranges = exercise.expected.get(profile, {}).get(data)
    values = {}
    for name, expression in exercise.answers.items():
        try:
            values[name] = float(eval(expression, namespace))  # noqa: S307
        except Exception:  # an answer of a condition or a model only the recipe makes
            values[name] = None
    where = f"the {profile} profile, {DATA_NAMES.get(data, data)}"
    if ranges is None:
        return (f"No reference runs of this recipe at {where} yet; `python bench/exercise_ranges.py "
                f"--profile {profile} --exercise {exercise.id}` measures them.")
    lines = [f"| answer | this run | the recipe's reference runs | the recipe moves it |", "|---|---|---|---|"]
    for name, value in values.items():
        low, high = ranges[name]
        shown = "–" if value is None else f"{value:.4g}"
        moved = ("–" if value is None else "up" if low > value else "down" if high < value
                 else "within the reference spread")
        lines.append(f"| `{name}` | {shown} | {low:.4g} to {high:.4g} | {moved} |")
    note = (f"This run, with the chapter's own settings, beside the runs of the recipe "
            f"({', '.join(f'`{n} = {v!r}`' for n, v in exercise.recipe.items()) or 'no change'}) at {where}:\n\n"
            + "\n".join(lines))
    for name, ask in exercise.asks.items():
        if None not in values.values():
            reply = bool(eval(ask["rule"], {}, values))  # noqa: S307
            note += (f"\n\nThe question ({ask['question']}) is answered by `{ask['rule']}` on a run's own "
                     f"answers: in this run, `{name} = {reply}`.")
    if changed:
        note += ("\n\nThis run changed " + ", ".join(f"`{n} = {v!r}`" for n, v in changed.items())
                 + ": the reference runs did not, so the columns compare different scales.")
    return note


def glue_solutions(chapter: str, namespace: dict) -> list[str]:
    """Glue :func:`.reference_note` for each of a chapter's graded exercises, as
    ``solution_2_1`` and so on, for its solution blocks; the names glued."""
    from IPython.display import Markdown
    from myst_nb import glue

    names = []
    for exercise in load_exercises().values():
        if exercise.chapter == chapter:
            names.append(f"solution_{exercise.id.replace('.', '_')}")
            glue(names[-1], Markdown(reference_note(exercise.id, namespace)), display=False)
    return names
