"""grade.py on a generated class of messy, broken and hostile submissions (autograder/corpus.py):
each gets the points its code earned and the flag that says what was odd. One grading run
(--jobs 2) serves every test here; runaway cases are cut short by a small time limit."""

import csv
import hashlib
import os
import subprocess
import sys

import pytest

from autograder import corpus, sandbox
from sdskit.paths import REFERENCES, ROOT

EXPECTED_CASES = 41


def _column(unit) -> str:
    """grades.csv's column of a blank (5 -> blank5) or of an experiment ("exp1")."""
    return f"blank{unit}" if isinstance(unit, int) else unit


def grade(folder, out):
    env = {**os.environ, "SDSKIT_BLANK_TIMEOUT_S": "8", "SDSKIT_BLANK_CPU_S": "8"}
    done = subprocess.run([sys.executable, "autograder/grade.py", str(folder), "--out", str(out),
                           "--jobs", "2"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "grades.csv") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}, done.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("out")
    expected = corpus.write_corpus(folder)
    if sandbox.sandbox_kind() == "none":
        # Without bubblewrap the write reaches the file: the grader puts it back and gives
        # that student nothing (with bubblewrap the write fails and only blank 7 is lost).
        expected["write_references"] = ({u: 0.0 for u in corpus.UNITS}, "tampering")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    references = hashlib.sha256(REFERENCES.read_bytes()).hexdigest()
    rows, _ = grade(folder, out)
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return {"folder": folder, "out": out, "rows": rows, "expected": expected,
            "unchanged": before == after,
            "references_kept": hashlib.sha256(REFERENCES.read_bytes()).hexdigest() == references}


def test_corpus_is_complete(graded):
    assert len(graded["expected"]) >= EXPECTED_CASES
    assert set(graded["rows"]) == set(graded["expected"])




def test_points_and_flags(graded):
    wrong = []
    for student, (points, flag) in graded["expected"].items():
        row = graded["rows"][student]
        got = {b: float(row[_column(b)]) for b in points}
        if got != points:
            wrong.append(f"{student}: points {got}, expected {points}")
        for part in (flag,) if isinstance(flag, str) else flag:
            if part and part not in row["flags"]:
                wrong.append(f"{student}: flags {row['flags']!r} should mention {part!r}")
        if not flag and row["flags"]:
            wrong.append(f"{student}: unexpected flags {row['flags']!r}")
        if float(row["total"]) != sum(got.values()):
            wrong.append(f"{student}: total {row['total']}")
    assert not wrong, "\n".join(wrong)


def test_lost_labels_are_not_called_edited_tests(graded):
    flags = graded["rows"]["metadata_lost"]["flags"]
    assert "labels missing" in flags and "edited" not in flags, flags


def test_flags_reach_the_students_feedback(graded):
    html = (graded["out"] / "feedback" / "patch_allclose" / "sds_assignment.html").read_text()
    assert "tampering" in html
    html = (graded["out"] / "feedback" / "renamed_paren" / "sds_assignment.html").read_text()
    assert "notebook renamed" in html


def test_nothing_is_lost_or_modified(graded):
    assert graded["unchanged"], "grading must never modify the submissions"
    assert graded["references_kept"], "a submission changed assets/references.pt"


def test_class_report(graded):
    out = graded["out"]
    assert (out / "class_report.png").stat().st_size > 1000
    with open(out / "class_report.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["blank"] for r in rows} == {_column(u) for u in corpus.UNITS}
    assert all(0 <= float(r["pass_rate"]) <= 1 for r in rows)
    assert any(r["failure_message"] for r in rows)


def test_rerun_is_idempotent_and_resumes(graded):
    out = graded["out"]
    first = (out / "grades.csv").read_text()
    (out / "results" / "solution.json").unlink()  # as if the batch stopped before it
    rows, stdout = grade(graded["folder"], out)
    assert "grading solution ..." in stdout
    graded_again = [line for line in stdout.splitlines() if line.startswith("grading ")]
    assert graded_again == ["grading solution ..."], stdout
    assert (out / "grades.csv").read_text() == first
