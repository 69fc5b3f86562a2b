"""grade.py end to end (the sandbox decides, nbgrader records and writes feedback), on a
generated class handed in the way an LMS exports it: one flat .zip of notebooks named as Canvas
and Moodle name them, or <student_id>.ipynb. The class: the solution, the blank release, a
partly wrong notebook, each typical mistake alone, every correct alternative at once, a
student with no notebook, a broken one, and files with no student id. One grading run serves
every test here; the plain nbgrader recipe of the README is run on three of its students."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import collection, grade, gradebook, lms, locate, submissions
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT

POINTS_PER_BLANK = 2.0
BLANKS = sorted(submissions.BLANKS)
UNITS = submissions.graded_units()  # the blanks, then Part 7's experiments ("exp1" ...)


def _column(unit) -> str:
    return f"blank{unit}" if isinstance(unit, int) else unit
# The three students of the plain nbgrader recipe, as Canvas names their files.
CANVAS = {"1001": "completeann_1001_5001_sds_assignment.ipynb",
          "1002": "late_partlybo_1002_5002_sds_assignment.ipynb",
          "1003": "blankcy_1003_5003_sds_assignment.ipynb"}
UNASSIGNED = ("Copy of sds_assignment.ipynb", "readme.txt")
# A student who did the Korean edition (Canvas naming): graded exactly as the English one.
KOREAN = f"kimmin_1010_5010_{COURSE.edition(submissions.NOTEBOOK, 'ko')}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    flat = tmp_path_factory.mktemp("flat")
    out = tmp_path_factory.mktemp("out")
    solution = submissions.solution_answers()
    partly = {**solution, 5: submissions.MISTAKES[5], 7: submissions.MISTAKES[7], 3: None}
    answers = {CANVAS["1001"]: solution, CANVAS["1002"]: partly, CANVAS["1003"]: {},
               "alternatives.ipynb": {**solution, **submissions.ALTERNATIVES}}
    answers["alternatives.ipynb"].update(submissions.EXPERIMENT_ALTERNATIVES)
    expected = {"1001": {b: POINTS_PER_BLANK for b in UNITS},
                "1002": {b: 0.0 if b in (3, 5, 7) else POINTS_PER_BLANK for b in UNITS},
                "1003": {b: 0.0 for b in UNITS},
                "alternatives": {b: POINTS_PER_BLANK for b in UNITS}}
    for blank in BLANKS:
        name = f"mistake{blank}.ipynb"
        if blank == 7:  # one student from Moodle
            name = "Mo Seven_1007_assignsubmission_file_sds_assignment.ipynb"
        answers[name] = {**solution, blank: submissions.MISTAKES[blank]}
        expected["1007" if blank == 7 else f"mistake{blank}"] = {
            b: 0.0 if b == blank else POINTS_PER_BLANK for b in UNITS}
    if len(UNITS) > len(BLANKS):  # Part 7 released: one student with each experiment wrong
        answers["expmistakes.ipynb"] = {**solution, **submissions.EXPERIMENT_MISTAKES}
        expected["expmistakes"] = {b: POINTS_PER_BLANK if b in BLANKS else 0.0 for b in UNITS}
    for name, filled in answers.items():
        (flat / name).write_text(json.dumps(submissions.fill(filled), indent=1))
    korean = submissions.fill(solution, NOTEBOOKS / COURSE.edition(submissions.NOTEBOOK, "ko"))
    (flat / KOREAN).write_text(json.dumps(korean, indent=1, ensure_ascii=False))
    expected["1010"] = {b: POINTS_PER_BLANK for b in UNITS}
    (flat / "missingmo_1009_5009_notes.txt").write_text("forgot the notebook")
    (flat / "broken.ipynb").write_text('{"cells": [ this is not json')
    expected["1009"] = expected["broken"] = {b: 0.0 for b in UNITS}
    (flat / UNASSIGNED[0]).write_text(json.dumps(submissions.fill(solution)))
    (flat / UNASSIGNED[1]).write_text("not a submission")
    archive = tmp_path_factory.mktemp("zip") / "class.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(flat.iterdir()):
            handle.write(path, path.name)
    before = archive.read_bytes()
    done = subprocess.run([sys.executable, "autograder/grade.py", str(archive), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "grades.csv") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"rows": rows, "expected": expected, "out": out, "stdout": done.stdout,
            "stderr": done.stderr, "unchanged": before == archive.read_bytes(),
            "archive": archive}


def test_every_student_gets_a_row(graded):
    assert set(graded["rows"]) == set(graded["expected"])


@pytest.mark.parametrize("student", ["1001", "1002", "1003", "1007", "1009", "1010",
                                     "alternatives", "broken",
                                     *[f"mistake{b}" for b in BLANKS[:-1]],
                                     *(["expmistakes"] if len(UNITS) > len(BLANKS) else [])])
def test_points_per_blank(graded, student):
    row = graded["rows"][student]
    got = {b: float(row[_column(b)]) for b in UNITS}
    assert got == graded["expected"][student], f"{student}: {row}"
    assert float(row["total"]) == sum(got.values())
    assert float(row["max_total"]) == POINTS_PER_BLANK * len(UNITS)


def test_reasons_are_written_down(graded):
    assert "missing" in graded["rows"]["1009"]["notes"]
    assert "not a readable notebook" in graded["rows"]["broken"]["notes"]
    for student in ("1001", "1010"):  # the English solution and the Korean one
        assert graded["rows"][student]["notes"] == "" and graded["rows"][student]["flags"] == ""


def test_cells_csv_and_feedback(graded):
    out = graded["out"]
    with open(out / "cells.csv") as handle:
        cells = list(csv.DictReader(handle))
    assert set(cells[0]) == {"student_id", "notebook", "grade_id", "points", "max_points"}
    solution = [c for c in cells if c["student_id"] == "1001"]
    assert len(solution) == 2 * len(UNITS)
    assert all(float(c["points"]) == float(c["max_points"]) for c in solution)
    html = (out / "feedback" / "mistake6" / "sds_assignment.html").read_text()
    assert "sign is flipped" in html, "the student's feedback should carry the check's message"


def test_feedback_page_names_blanks_and_hides_hidden_tests(graded):
    html = (graded["out"] / "feedback" / "mistake6" / "sds_assignment.html").read_text()
    assert "Blank 6: hidden test" in html and "Your answer to blanks 1 and 2" in html
    assert "Test cell" not in html and "Grade cell" not in html
    assert "HIDDEN TESTS" not in html and '"hidden"' not in html and "&quot;hidden&quot;" not in html
    assert "white-space: pre-wrap" in html, "long messages must wrap"
    assert "table.points th, table.points td { border: 1px solid" in html


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
    written = locate.written_cells()  # graded by hand in nbgrader; not in cells.csv
    recorded = {student: {gid: score for gid, score in scores.items() if gid not in written}
                for student, scores in recorded.items()}
    assert recorded == expected
    assert not any("nbgrader could not" in row["flags"] for row in graded["rows"].values())


def test_class_report_counts_students_per_whole_message(graded):
    out = graded["out"]
    with open(out / "class_report.csv") as handle:
        rows = list(csv.DictReader(handle))
    results = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    failures = [r for r in rows if r["failure_message"]]
    assert failures and any(re.search(r"\d", r["failure_message"]) for r in failures)
    for row in failures:
        messages = [" ".join(r["messages"].get(f"{row['blank']}_{cases}", "").split())
                    for r in results for cases in ("visible", "hidden")]
        for part in row["failure_message"].split(" / "):  # every word kept, none cut
            assert any(part in message for message in messages), part
        having = {r["student_id"] for r in results for cases in ("visible", "hidden")
                  if grade._message_kind(r["messages"].get(f"{row['blank']}_{cases}", ""))
                  == row["failure_message"]}
        assert int(row["students"]) == len(having), row
    for row in rows:
        passing = sum(all(p == m for _, gid, p, m in r["cells"] if gid.startswith(row["blank"]))
                      for r in results)
        assert int(row["students_passing"]) == passing
        assert float(row["pass_rate"]) == pytest.approx(passing / len(results), abs=1e-3)


def test_unassigned_files_are_reported(graded):
    with open(graded["out"] / "unassigned_files.csv") as handle:
        listed = {row["file"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(listed) == set(UNASSIGNED)
    assert "no student id" in listed["Copy of sds_assignment.ipynb"]
    assert all(name in graded["stderr"] for name in UNASSIGNED)
    assert "unassigned_files.csv" in graded["stdout"]


@pytest.mark.parametrize("name, student, file", [
    ("smithjane_12345_678901_sds_assignment.ipynb", "12345", "sds_assignment.ipynb"),
    ("late_smithjane_12345_678901_sds_assignment.ipynb", "12345", "sds_assignment.ipynb"),
    ("smithjane_late_12345_678901_sds_assignment-1.ipynb", "12345", "sds_assignment-1.ipynb"),
    ("Jane Q Smith_4242_assignsubmission_file_sds_assignment.ipynb", "4242", "sds_assignment.ipynb"),
    ("Jane_Smith_4242_assignsubmission_file_Copy of sds_assignment.ipynb", "4242",
     "Copy of sds_assignment.ipynb"),
    ("js123.ipynb", "js123", "sds_assignment.ipynb"),
    ("sds_assignment.ipynb", None, "named like the assignment"),
    ("Jane Smith.ipynb", None, "no student id"),
    ("a_1_2_x_3_assignsubmission_file_y.ipynb", None, "ambiguous"),
])
def test_student_id_rules(name, student, file):
    got, got_file, reason = collection.read_name(name, collection.compile_rules(None))
    assert got == student
    assert (got_file if student else reason).startswith(file)


def test_id_pattern_replaces_the_rules(tmp_path):
    rules = collection.compile_rules(r"(?P<student_id>[a-z]+)_\d+_\d+_(?P<file>.+)")
    assert collection.read_name("smithjane_1_2_sds_assignment.ipynb", rules)[:2] == (
        "smithjane", "sds_assignment.ipynb")
    assert collection.read_name("js123.ipynb", rules)[0] is None
    with pytest.raises(SystemExit, match="student_id"):
        collection.compile_rules(r"(?P<id>\d+)")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "smithjane_1_2_sds_assignment.ipynb").write_text("{}")
    (tmp_path / "flat" / "notes.txt").write_text("")
    students, unassigned = collection.gather(tmp_path / "flat", tmp_path / "work",
                                             r"(?P<student_id>[a-z]+)_\d+_\d+_(?P<file>.+)")
    assert [p.name for p in students] == ["smithjane"]
    assert (students[0] / "sds_assignment.ipynb").read_text() == "{}"
    assert [u.file for u in unassigned] == ["notes.txt"]


# The README's recipe for a plain nbgrader course ("Plain nbgrader"), step by step. The
# zip_collect settings are the README's own lines (the test checks they are there).
RECIPE_CONFIG = [
    'c.CourseDirectory.course_id = "sds-course"',
    'c.ZipCollectApp.archive_directory = "archive"',
    r'c.FileNameCollectorPlugin.named_regexp = r".*/(?:late_)?[^/_]+_(?:late_)?'
    r'(?P<student_id>\d+)_\d+_(?P<file_id>sds_assignment\.ipynb)$"',
]


def test_plain_nbgrader_recipe_gives_the_same_marks(graded, tmp_path):
    """An instructor's own nbgrader course (no sandbox, no PYTHONPATH: the kit is installed
    with `pip install -e .`) gives the same points per test as grade.py."""
    readme = (ROOT / "README.md").read_text()
    assert all(line in readme for line in RECIPE_CONFIG[1:]), "README and test disagree"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # the kernels' small tensors: one thread takes half the CPU
    found = subprocess.run([sys.executable, "-c", "import sdskit"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert found.returncode == 0, "the kit is not installed in this environment: run `make env`"
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\n" + "\n".join(RECIPE_CONFIG))
    assert "python KIT/scripts/make_release.py --nbgrader-source source/sds" in readme
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_release.py"), "--nbgrader-source",
                    "source/sds"], cwd=course, env=env, check=True, capture_output=True)
    (course / "downloaded" / "sds" / "archive").mkdir(parents=True)
    shutil.copy(graded["archive"], course / "downloaded" / "sds" / "archive")
    for step in (["generate_assignment", "sds"], ["zip_collect", "sds"], ["autograde", "sds"],
                 ["generate_feedback", "sds"]):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=course, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"nbgrader {step[0]}:\n{done.stderr[-3000:]}"
    assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(CANVAS)
    from nbgrader.api import Gradebook

    written = locate.written_cells()  # graded by hand in formgrader; grade.py leaves them out
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "sds-course") as book:
        plain = {student: {g.name: float(g.score or 0) for g in
                           book.find_submission_notebook("sds_assignment", "sds", student).grades
                           if g.name not in written}
                 for student in CANVAS}
    with open(graded["out"] / "cells.csv") as handle:
        ours = {}
        for cell in csv.DictReader(handle):
            if cell["student_id"] in CANVAS:
                ours.setdefault(cell["student_id"], {})[cell["grade_id"]] = float(cell["points"])
    assert plain == ours
    assert (course / "feedback" / "1002" / "sds" / "sds_assignment.html").is_file()


# --- Grades into Canvas and Moodle (autograder/lms.py), and the similarity report, through
# grade.py's options: one more run on the graded class (results kept: seconds) serves both.
LMS_DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def regraded_with_options(graded):
    done = subprocess.run([sys.executable, "autograder/grade.py", str(graded["archive"]), "--out",
                           str(graded["out"]), "--canvas-gradebook",
                           str(LMS_DATA / "canvas_gradebook_export.csv"), "--moodle-worksheet",
                           str(LMS_DATA / "moodle_grading_worksheet.csv"), "--similarity"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_grades_go_into_the_canvas_export_and_the_moodle_worksheet(graded, regraded_with_options):
    """Each Canvas student's total lands in the assignment's column of their row, the Moodle
    participant's in Grade with a comment, and what matched nothing is listed."""
    out, stdout = graded["out"], regraded_with_options
    assert "grading " not in stdout, "an unchanged regrade should keep every result"
    totals = {s: row["total"] for s, row in graded["rows"].items()}
    with open(out / "canvas_gradebook_import.csv", encoding="utf-8-sig") as handle:
        canvas = list(csv.reader(handle))
    column = canvas[0].index("SDS assignment (4402)")
    got = {row[1]: row[column] for row in canvas[2:]}
    # The test files' maximum is 14 points; the kit's is 14, or 20 with Part 7 graded, and each
    # total is scaled by the ratio (lms.py).
    kit = float(graded["rows"]["1001"]["max_total"])
    scaled = {s: float(totals[s]) * 14 / kit for s in totals}
    assert got == {"1001": "14", "1002": lms._points(scaled["1002"]), "1003": "0", "1009": "0",
                   "1010": "14", "1011": "", "1099": ""}
    with open(out / "moodle_grading_worksheet.csv", encoding="utf-8-sig") as handle:
        moodle = list(csv.DictReader(handle))
    assert [(r["Identifier"], r["Grade"]) for r in moodle] == [
        ("Participant 1007", f"{scaled['1007']:.2f}"), ("Participant 1002", f"{scaled['1002']:.2f}"),
        ("Participant 1098", "")]
    assert (f"{lms._points(float(totals['1007']))} of {lms._points(kit)} points"
            in moodle[0]["Feedback comments"])
    with open(out / "lms_unmatched.csv") as handle:
        unmatched = {(r["lms"], r["student_id"]) for r in csv.DictReader(handle)}
    assert ("Canvas", "1011") in unmatched and ("Canvas", "alternatives") in unmatched
    assert ("Moodle", "1098") in unmatched and ("Moodle", "1001") in unmatched
    assert "Canvas: wrote" in stdout and "Moodle: wrote" in stdout


def test_a_wrong_lms_file_is_refused_before_grading(tmp_path, graded):
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text("Identifier,Full name,Status\n\"Participant 1007\",Mo Seven,Submitted\n")
    with pytest.raises(SystemExit, match="no `Grade` column") as refused:
        grade.main([str(graded["archive"]), "--out", str(tmp_path / "out"), "--moodle-worksheet",
                    str(worksheet)])
    assert str(worksheet) in str(refused.value)
    assert not (tmp_path / "out").exists(), "nothing should be graded or written"


def test_similarity_report_through_grade_py(graded, regraded_with_options):
    """The report is written and the command says it is a ranking, not a verdict. These
    students' code is the solution's, its alternatives and its typical mistakes, which count
    for nothing: no pair shares anything."""
    out = graded["out"]
    assert "never a verdict" in regraded_with_options
    with open(out / "similarity.csv") as handle:
        assert list(csv.DictReader(handle)) == []
    assert "never a verdict" in (out / "similarity.html").read_text()
