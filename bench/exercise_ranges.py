"""Measure the range of each exercise's answers on reference runs, for inpaintlib/exercises.yml.

For each exercise (or those named) and each seed: `inpaint assignment`, papermill at the profile
with that seed, and the answers the run handed in. Prints JSON, one entry per exercise: the
answers' values per seed and the range `inpaint grade` checks (the lowest and highest value,
widened by half their spread and at least 5% of their size); --write puts the ranges into
exercises.yml under expected: PROFILE: DATA.

    CELEBA_DIR= python bench/exercise_ranges.py --profile smoke --seeds 0 1 --write

Seeds can be measured in separate runs (a quick-profile seed takes about two hours on 2 cores):
--also FILE counts the values of an earlier run's JSON output (same profile and data) with this
run's, and --seeds with no seed only merges:

    python bench/exercise_ranges.py --profile quick --seeds 1 --also bench/exercise_values/quick-celeba-0.json --write
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import papermill
import yaml

from inpaintlib.data import parse_data_spec
from inpaintlib.exercises import EXERCISES_FILE, handed_in, load_exercises, write_assignment


def widened(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    margin = max(0.5 * (high - low), 0.05 * max(abs(low), abs(high)), 1e-3)
    return [round(low - margin, 4), round(high + margin, 4)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--also", nargs="*", default=[], metavar="FILE",
                        help="earlier runs' JSON output whose values count too (same profile and data)")
    parser.add_argument("--exercise", nargs="*", help="ids (default: every exercise)")
    parser.add_argument("--write", action="store_true", help="write the ranges into exercises.yml")
    args = parser.parse_args()
    exercises = load_exercises()
    chosen = args.exercise or list(exercises)
    data = parse_data_spec("auto").kind
    earlier, seeds = [], list(args.seeds)
    for path in args.also:
        run = json.loads(Path(path).read_text())
        if (run["profile"], run["data"]) != (args.profile, data):
            parser.error(f"{path} measured the {run['profile']} profile on {run['data']} data, not {args.profile} on {data}")
        earlier.append(run["exercises"])
        seeds += run["seeds"]
    if len(set(seeds)) < len(seeds):
        parser.error(f"a seed is counted twice: {seeds}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for exercise_id in chosen:
            values, started = {}, time.perf_counter()
            for run in earlier:
                for name, measured in run.get(exercise_id, {}).get("values", {}).items():
                    values.setdefault(name, []).extend(measured)
            for seed in args.seeds:
                assignment = write_assignment(exercise_id, Path(folder) / f"{exercise_id}.ipynb")
                executed = Path(folder) / f"{exercise_id}-{seed}.ipynb"
                papermill.execute_notebook(str(assignment), str(executed), parameters={"profile": args.profile,
                                           "seed": seed}, cwd=folder, progress_bar=False, kernel_name="python3")
                exercise, _, answers = handed_in(executed, exercise_id)
                for name in exercise.answers:  # a question's reply is graded by its rule, not a range
                    values.setdefault(name, []).append(answers[name])
            if not values:  # merging only, and no earlier run measured it
                continue
            results[exercise_id] = {"values": values, "range": {name: widened(v) for name, v in values.items()},
                                    "seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps({exercise_id: results[exercise_id]}), file=sys.stderr, flush=True)
    print(json.dumps({"profile": args.profile, "data": data, "seeds": seeds, "exercises": results}, indent=1))
    if args.write:
        text = EXERCISES_FILE.read_text()
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))  # the comments
        entries = yaml.safe_load(text)
        for exercise_id, result in results.items():
            entries[exercise_id].setdefault("expected", {}).setdefault(args.profile, {})[data] = result["range"]
        EXERCISES_FILE.write_text(header + yaml.safe_dump(entries, sort_keys=False, default_flow_style=None, width=200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
