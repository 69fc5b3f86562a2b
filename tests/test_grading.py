"""grade.py end to end (the sandbox decides, nbgrader records and writes feedback), on a
generated class: the solution, the blank release, each typical mistake alone, every correct
alternative at once, a missing notebook and a broken one. One grading run serves every test here."""

import csv
import subprocess
import sys

import pytest

from autograder import gradebook, submissions
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT

POINTS_PER_BLANK = 2.0
BLANKS = sorted(submissions.BLANKS)
KOREAN = COURSE.edition(submissions.NOTEBOOK, "ko")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("out")
    solution = submissions.solution_answers()
    expected = {"solution": {b: POINTS_PER_BLANK for b in BLANKS},
                "release": {b: 0.0 for b in BLANKS},
                "alternatives": {b: POINTS_PER_BLANK for b in BLANKS}}
    submissions.write_submission(folder, "solution", solution)
    submissions.write_submission(folder, "release", {})
    submissions.write_submission(folder, "alternatives", {**solution, **submissions.ALTERNATIVES})
    # The Korean edition, filled with the solution: graded exactly as the English one.
    submissions.write_submission(folder, "korean", solution, NOTEBOOKS / KOREAN)
    expected["korean"] = {b: POINTS_PER_BLANK for b in BLANKS}
    for blank in BLANKS:
        submissions.write_submission(folder, f"mistake{blank}",
                                     {**solution, blank: submissions.MISTAKES[blank]})
        expected[f"mistake{blank}"] = {b: 0.0 if b == blank else POINTS_PER_BLANK for b in BLANKS}
    (folder / "missing").mkdir()
    (folder / "missing" / "notes.txt").write_text("forgot the notebook")
    (folder / "broken").mkdir()
    (folder / "broken" / submissions.NOTEBOOK).write_text('{"cells": [ this is not json')
    expected["missing"] = expected["broken"] = {b: 0.0 for b in BLANKS}
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "autograder/grade.py", str(folder), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with open(out / "grades.csv") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"rows": rows, "expected": expected, "out": out, "stdout": done.stdout,
            "unchanged": before == after}


def test_every_student_gets_a_row(graded):
    assert set(graded["rows"]) == set(graded["expected"])


@pytest.mark.parametrize("student", ["solution", "release", "alternatives", "korean",
                                     "missing", "broken",
                                     *[f"mistake{b}" for b in BLANKS]])
def test_points_per_blank(graded, student):
    row = graded["rows"][student]
    got = {b: float(row[f"blank{b}"]) for b in BLANKS}
    assert got == graded["expected"][student], f"{student}: {row}"
    assert float(row["total"]) == sum(got.values())
    assert float(row["max_total"]) == POINTS_PER_BLANK * len(BLANKS)


def test_reasons_are_written_down(graded):
    assert "missing" in graded["rows"]["missing"]["notes"]
    assert "not a readable notebook" in graded["rows"]["broken"]["notes"]
    assert graded["rows"]["solution"]["notes"] == ""
    assert graded["rows"]["korean"]["notes"] == graded["rows"]["korean"]["flags"] == ""


def test_cells_csv_and_feedback(graded):
    out = graded["out"]
    with open(out / "cells.csv") as handle:
        cells = list(csv.DictReader(handle))
    assert set(cells[0]) == {"student_id", "notebook", "grade_id", "points", "max_points"}
    solution = [c for c in cells if c["student_id"] == "solution"]
    assert len(solution) == 2 * len(BLANKS)
    assert all(float(c["points"]) == float(c["max_points"]) for c in solution)
    html = (out / "feedback" / "mistake6" / "sds_assignment.html").read_text()
    assert "sign is flipped" in html, "the student's feedback should carry the check's message"


def test_submissions_are_not_modified(graded):
    assert graded["unchanged"]


def test_nbgrader_gradebook_holds_the_same_points(graded):
    """Check that nbgrader's gradebook agrees with cells.csv for every student."""
    out = graded["out"]
    with open(out / "cells.csv") as handle:
        cells = list(csv.DictReader(handle))
    expected = {}
    for cell in cells:
        expected.setdefault(cell["student_id"], {})[cell["grade_id"]] = float(cell["points"])
    recorded = gradebook.read_gradebook(out / "course", sorted(expected))
    assert recorded == expected
    assert not any("nbgrader could not" in row["flags"] for row in graded["rows"].values())
