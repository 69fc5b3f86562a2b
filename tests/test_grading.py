"""grade.py end to end (the sandbox decides, nbgrader records and writes feedback), on a
generated class handed in the way an LMS exports it: one flat .zip of notebooks named as Canvas
and Moodle name them, or <student_id>.ipynb. The class: the solution, the blank release, a
partly wrong notebook, each typical mistake alone, every correct alternative at once, a
student with no notebook, a broken one, and files with no student id; some wrote the written
answer (one in Korean, one in a cell that lost its labels). One grading run serves every test
here; the plain nbgrader recipe of docs/nbgrader.md is run on three of its students, and the written
answers' scores go through grade.py again, on copies of its output."""

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import collection, grade, gradebook, mistakes, submissions, written_scores
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT

POINTS_PER_BLANK = 2.0
BLANKS = sorted(submissions.BLANKS)
UNITS = submissions.graded_units()  # the blanks, then Part 7's experiments ("exp1" ...)
TESTS_MAX = POINTS_PER_BLANK * len(UNITS)  # 14, or 20 with Part 7 graded


def _column(unit) -> str:
    return f"blank{unit}" if isinstance(unit, int) else unit
# The three students of the plain nbgrader recipe, as Canvas names their files.
CANVAS = {"1001": "completeann_1001_5001_sds_assignment.ipynb",
          "1002": "late_partlybo_1002_5002_sds_assignment.ipynb",
          "1003": "blankcy_1003_5003_sds_assignment.ipynb"}
UNASSIGNED = ("Copy of sds_assignment.ipynb", "readme.txt")
# A student who did the Korean edition (Canvas naming): graded exactly as the English one, with
# feedback in Korean. mistake3 did the Korean edition too, and its cells lost their labels.
KOREAN = f"kimmin_1010_5010_{COURSE.edition(submissions.NOTEBOOK, 'ko')}"
KOREAN_RELEASE = NOTEBOOKS / COURSE.edition(submissions.NOTEBOOK, "ko")
KOREAN_STUDENTS = ("1010", "mistake3")


def _labels_lost(notebook: dict) -> dict:
    """As Colab sometimes saves it: the blanks' cells without nbgrader's metadata."""
    for cell in notebook["cells"]:
        if (cell["metadata"].get("nbgrader") or {}).get("grade_id", "").endswith("_code"):
            cell["metadata"].pop("nbgrader")
    return notebook
# The written answers some students gave (the others left the cell as released). mistake2's
# cell lost its nbgrader labels; its answer is found by its prompt. One tries to run script.
WRITTEN = {
    "1001": "1. Back-propagating through the U-Net costs a backward pass and its activations.\n"
            "2. The pixels run away from $z^*$ until the clamp.\n3. A control variate.",
    "1002": "I am not sure. <script>alert('x')</script>",
    "1010": "1. U-Net을 거치는 역전파가 비쌉니다.\n2. 목표에서 멀어집니다.\n3. 제어 변량입니다.",
    "mistake2": "Only question 3: subtracting the known noise lowers the variance.",
}
WRITTEN_MAX = sum(float(p) for p in COURSE.written_points.values())


def _written(student: str) -> dict[str, str]:
    return {"think_answers": WRITTEN[student]} if student in WRITTEN else {}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    flat = tmp_path_factory.mktemp("flat")
    out = tmp_path_factory.mktemp("out")
    solution = submissions.solution_answers()
    partly = {**solution, 5: submissions.MISTAKES[5], 7: submissions.MISTAKES[7], 3: None}
    answers = {CANVAS["1001"]: solution, CANVAS["1002"]: partly, CANVAS["1003"]: {},
               "alternatives.ipynb": {**solution, **submissions.ALTERNATIVES}}
    student_of = {name: sid for sid, name in CANVAS.items()}
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
    # The answer that passes every value check and only fails on a GPU: t made on the CPU.
    answers["wrongdevice.ipynb"] = {**solution, 5: mistakes.WRONG_DEVICE.code}
    expected["wrongdevice"] = {b: 0.0 if b == 5 else POINTS_PER_BLANK for b in UNITS}
    if len(UNITS) > len(BLANKS):  # Part 7 released: one student with each experiment wrong
        answers["expmistakes.ipynb"] = {**solution, **submissions.EXPERIMENT_MISTAKES}
        expected["expmistakes"] = {b: POINTS_PER_BLANK if b in BLANKS else 0.0 for b in UNITS}
    for name, filled in answers.items():
        student = student_of.get(name, name.removesuffix(".ipynb"))
        release = KOREAN_RELEASE if student == "mistake3" else NOTEBOOKS / submissions.NOTEBOOK
        notebook = submissions.fill(filled, release, written=_written(student))
        if student == "mistake3":
            notebook = _labels_lost(notebook)
        if student == "mistake2":
            for cell in notebook["cells"]:
                if cell["metadata"].get("nbgrader", {}).get("grade_id") == "think_answers":
                    del cell["metadata"]["nbgrader"]
        (flat / name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False),
                                  encoding="utf-8")
    korean = submissions.fill(solution, NOTEBOOKS / COURSE.edition(submissions.NOTEBOOK, "ko"),
                              written=_written("1010"))
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
                                     "alternatives", "broken", "wrongdevice",
                                     *[f"mistake{b}" for b in BLANKS[:-1]],
                                     *(["expmistakes"] if len(UNITS) > len(BLANKS) else [])])
def test_points_per_blank(graded, student):
    row = graded["rows"][student]
    got = {b: float(row[_column(b)]) for b in UNITS}
    assert got == graded["expected"][student], f"{student}: {row}"
    assert float(row["automatic"]) == sum(got.values())
    # The written answers are not graded yet: an answer counts once a grader scores it, a cell
    # left as released is 0 (nbgrader's "No response").
    answered = student in WRITTEN
    assert row["written:think_answers"] == ("" if answered else "0.0"), row
    assert row["written_missing"] == ("think_answers" if answered else ""), row
    assert float(row["written"]) == 0.0
    assert float(row["total"]) == sum(got.values())
    assert float(row["max_total"]) == TESTS_MAX + WRITTEN_MAX


def test_reasons_are_written_down(graded):
    assert "missing" in graded["rows"]["1009"]["notes"]
    assert "not a readable notebook" in graded["rows"]["broken"]["notes"]
    for student in ("1001", "1010"):  # the English solution and the Korean one
        assert graded["rows"][student]["notes"] == "" and graded["rows"][student]["flags"] == ""
    assert "labels missing" in graded["rows"]["mistake3"]["flags"]  # English for the staff


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


def test_a_wrong_device_answer_is_told_where_its_t_is(graded):
    html = (graded["out"] / "feedback" / "wrongdevice" / "sds_assignment.html").read_text()
    assert "came out on cpu, not on self.device (meta)" in html, html[-3000:]
    assert "torch.randint takes a device= argument" in html


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
    for student in expected:  # not graded yet, or no response: 0 in the gradebook for now
        expected[student].update({gid: 0.0 for gid in COURSE.written_points})
    recorded = gradebook.read_gradebook(out / "course", sorted(expected))
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


# The recipe for a plain nbgrader course (docs/nbgrader.md), step by step. The zip_collect
# settings are the guide's own lines (the test checks they are there).
RECIPE_CONFIG = [
    'c.CourseDirectory.course_id = "sds-course"',
    'c.ZipCollectApp.archive_directory = "archive"',
    r'c.FileNameCollectorPlugin.named_regexp = r".*/(?:late_)?[^/_]+_(?:late_)?'
    r'(?P<student_id>\d+)_\d+_(?P<file_id>sds_assignment\.ipynb)$"',
]


def test_plain_nbgrader_recipe_gives_the_same_marks(graded, tmp_path):
    """An instructor's own nbgrader course (no sandbox, no PYTHONPATH: the kit is installed
    with `pip install -e .`) gives the same points per test as grade.py."""
    guide = (ROOT / "docs" / "nbgrader.md").read_text()
    assert all(line in guide for line in RECIPE_CONFIG[1:]), "docs/nbgrader.md and test disagree"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # the kernels' small tensors: one thread takes half the CPU
    found = subprocess.run([sys.executable, "-c", "import sdskit"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert found.returncode == 0, "the kit is not installed in this environment: run `make env`"
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\n" + "\n".join(RECIPE_CONFIG))
    assert "python KIT/scripts/make_release.py --nbgrader-source source/sds" in guide
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

    from autograder import written as written_module

    written = {q.grade_id for q in written_module.questions()}  # graded by hand (formgrader)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "sds-course") as book:
        plain = {student: {g.name: float(g.score or 0) for g in
                           book.find_submission_notebook("sds_assignment", "sds", student).grades
                           if g.name not in written}
                 for student in CANVAS}
        # The written question: a manually graded answer with its points, left for a person
        # where the student answered (formgrader's "needs manual grade"), 0 where not.
        assert book.find_graded_cell("think_answers", "sds_assignment", "sds").max_score == \
            COURSE.written_points["think_answers"]
        for student in CANVAS:
            grade = book.find_grade("think_answers", "sds_assignment", "sds", student)
            submitted = book.find_submission_notebook("sds_assignment", "sds", student)
            if student in WRITTEN:
                assert grade.auto_score is None and grade.needs_manual_grade, student
                assert submitted.needs_manual_grade, student
            else:
                assert grade.auto_score == 0 and not grade.needs_manual_grade, student
    with open(graded["out"] / "cells.csv") as handle:
        ours = {}
        for cell in csv.DictReader(handle):
            if cell["student_id"] in CANVAS:
                ours.setdefault(cell["student_id"], {})[cell["grade_id"]] = float(cell["points"])
    assert plain == ours
    assert (course / "feedback" / "1002" / "sds" / "sds_assignment.html").is_file()


def _page(graded, student: str) -> str:
    from html import unescape

    return unescape((graded["out"] / "feedback" / student / "sds_assignment.html")
                    .read_text(encoding="utf-8"))


def test_a_korean_students_feedback_is_korean(graded):
    """The Korean edition's students read their page in Korean: its words, the blanks' names,
    the checks' messages and hints, the flags, and the notebook's own prose and figures; the
    hidden tests still show only their verdict."""
    import base64

    from autograder import gradebook
    from sdskit.i18n import tr_in
    from scripts import make_translation

    for student in KOREAN_STUDENTS:
        page = _page(graded, student)
        assert '<html lang="ko">' in page
        for word in gradebook.WORDS.values():
            assert f"{tr_in('ko', word)}" in page, word
        assert tr_in("ko", "Blank {number}: hidden test", number=3) in page
        assert tr_in("ko", "Your answer to blanks {numbers}", numbers="1, 2") in page
        for english in ("Blank 3: hidden test", "Your answer to blank", "Notes from the grader",
                        "visible test</th>", "(the hidden cases ran here"):
            assert english not in page, english
        assert "HIDDEN TESTS" not in page
        title = make_translation.source(json.loads(KOREAN_RELEASE.read_text())["cells"][0])
        assert title.splitlines()[0].lstrip("# ") in page, "the Korean prose is not on the page"
        korean_figure = (make_translation.edition_figure("noise_schedule.png", "ko")).read_bytes()
        assert base64.b64encode(korean_figure).decode() in page
    mistake = _page(graded, "mistake3")
    hint = "the values are still in [0, 1]; latents are expected in [-1, 1] (2 * x - 1)."
    assert tr_in("ko", hint) in mistake and hint not in mistake
    assert tr_in("ko", "grading labels missing: the notebook lost the hidden labels that mark "
                 "its cells (Colab and some editors drop them), so each answer was found by "
                 "its code; nothing to fix") in mistake
    assert tr_in("ko", "Notes from the grader") in mistake
    # every blank's points, and the written answer not graded yet
    assert f"{TESTS_MAX:.1f} / {TESTS_MAX + WRITTEN_MAX:.1f}" in _page(graded, "1010")
    assert _page(graded, "1010").count("2.0 / 2.0") >= len(UNITS)


def test_the_staffs_files_stay_english(graded):
    """grades.csv, cells.csv and class_report.csv carry no Korean, whatever the students read;
    a Korean student's failure is counted with the English students' same failure."""
    import re

    for name in ("grades.csv", "cells.csv", "class_report.csv"):
        text = (graded["out"] / name).read_text(encoding="utf-8")
        assert not re.search(r"[\uac00-\ud7a3]", text), f"{name} holds Korean"
    with open(graded["out"] / "class_report.csv") as handle:
        blank3 = [r for r in csv.DictReader(handle)
                  if r["blank"] == "blank3" and r["failure_message"]]
    assert any("values are still in [0, 1]" in r["failure_message"] for r in blank3), blank3




# ---------------------------------------------------------------------------------------
# Written answers, graded by hand (autograder/written.py): a page per question and a scores
# file; the filled file goes through grade.py into grades.csv, the feedback and the gradebook.
# ---------------------------------------------------------------------------------------
def _snapshot(folder) -> dict:
    """Every file under folder: its bytes' hash and its modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_out(graded, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded["out"], out)
    return out


def _regrade(graded, out, *options) -> None:
    grade.main([str(graded["archive"]), "--out", str(out), *options])


def _scores_file(path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "question", "points", "comment"])
        writer.writerows(rows)


def test_written_answers_get_a_page_and_a_scores_file(graded):
    """One page per question: the rubric at the top, then every student's answer, rendered,
    its HTML shown as text; and one scores row per student, points empty."""
    folder = graded["out"] / "written"
    page = (folder / "think_answers.html").read_text(encoding="utf-8")
    assert page.index("Rubric (3 points)") < page.index(">1001<")
    assert "<li>A control variate.</li>" in page and "$z^*$" in page  # markdown; math for MathJax
    assert "U-Net을 거치는 역전파가 비쌉니다." in page  # the Korean student's answer
    assert "subtracting the known noise lowers the variance" in page  # found without its labels
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    assert page.count("No response: the answer cell is as it was released.") == \
        len(graded["expected"]) - len(WRITTEN) - 2  # less the two with no notebook to read
    with open(folder / "scores.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows if r["question"] == "think_answers"] == list(graded["rows"])
    assert {r["question"] for r in rows} == set(COURSE.written_points)
    assert all(r["points"] == "" and r["comment"] == "" for r in rows)
    assert "written answers: 4 of" in graded["stdout"]  # four answers to grade


BAD_ROWS = {  # what a TA may get wrong -> what the message must say
    "unknown student": (["nobody", "think_answers", "1", ""], "unknown student 'nobody'"),
    "unknown question": (["1001", "think_answer", "1", ""], "unknown question 'think_answer'"),
    "points above the question's": (["1001", "think_answers", "3.5", ""],
                                    "the points 3.5 are out of range: think_answers is worth 0 to 3"),
    "negative points": (["1001", "think_answers", "-1", ""], "the points -1 are out of range"),
    "points not a number": (["1001", "think_answers", "two", ""], "the points 'two' are not a number"),
    "points NaN": (["1001", "think_answers", "nan", ""], "the points 'nan' are not a number"),
}


def test_bad_scores_rows_are_rejected_and_change_nothing(graded, tmp_path, capsys):
    """Each bad row stops grade.py with a message that names the row (its line), the value and
    what to do, and nothing under OUT changes (no file written, none touched)."""
    out = _copy_out(graded, tmp_path)
    before = _snapshot(out)
    good = ["1002", "think_answers", "1", "fine"]
    cases = {kind: ([good, row], f"line 3: {message}") for kind, (row, message) in BAD_ROWS.items()}
    cases["a duplicate row"] = ([good, good], "line 3: a second row for 1002 and think_answers "
                                "(the first is on line 2)")
    for kind, (rows, message) in cases.items():
        path = tmp_path / f"{kind}.csv"
        _scores_file(path, rows)
        with pytest.raises(SystemExit) as stopped:
            _regrade(graded, out, "--written-scores", str(path))
        assert message in str(stopped.value), (kind, str(stopped.value))
        assert "nothing was graded or written" in str(stopped.value)
        assert _snapshot(out) == before, f"{kind}: files under OUT changed"
    (tmp_path / "no_points.csv").write_text("student,question,comment\n1001,think_answers,x\n")
    with pytest.raises(SystemExit, match="lacks the column.s. points"):
        _regrade(graded, out, "--written-scores", str(tmp_path / "no_points.csv"))
    (tmp_path / "cp949.csv").write_bytes("student,question,points,comment\n1001,think_answers,1,"
                                         "좋습니다\n".encode("cp949"))
    with pytest.raises(SystemExit, match="not UTF-8 text. Save it as CSV UTF-8"):
        _regrade(graded, out, "--written-scores", str(tmp_path / "cp949.csv"))
    assert _snapshot(out) == before
    capsys.readouterr()


def test_written_scores_round_trip(graded, tmp_path, capsys):
    """Blind: fill in the scores file by anonymous label and run with it: the points land in
    grades.csv, the feedback pages and nbgrader's gradebook (as manual grades, with the
    comments), nobody is regraded, the pages show labels only, and an unchanged run keeps
    everything."""
    original = _snapshot(graded["out"])
    out = _copy_out(graded, tmp_path)
    labels = written_scores.extend_labels(out / "written" / "labels.csv", list(graded["rows"]))
    given = {"1001": ("2.5", "Question 2 lacks the reason <why>."), "1002": ("0", ""),
             "1010": ("3", "좋습니다."), "mistake1": ("1", "")}  # mistake1 left it empty
    _scores_file(out / "written" / "scores.csv",
                 [[labels[s], "think_answers", *given.get(s, ("", ""))] for s in labels])
    untouched = (out / "feedback" / "1003" / "sds_assignment.html").stat().st_mtime_ns
    capsys.readouterr()
    canvas = tmp_path / "canvas.csv"  # the LMS gets the written points too
    canvas.write_text((LMS_DATA / "canvas_gradebook_export.csv").read_text(encoding="utf-8")
                      .replace("14.00", f"{TESTS_MAX + WRITTEN_MAX:.2f}"), encoding="utf-8")
    _regrade(graded, out, "--blind", "--written-scores", str(out / "written" / "scores.csv"),
             "--canvas-gradebook", str(canvas))
    said = capsys.readouterr().out
    with open(out / "canvas_gradebook_import.csv", encoding="utf-8-sig") as handle:
        imported = {row[1]: row[6] for row in list(csv.reader(handle))[2:]}
    assert imported["1001"] == f"{TESTS_MAX + 2.5:g}" and imported["1010"] == f"{TESTS_MAX + 3:g}", \
        imported
    assert "have written answers not graded yet" in said
    page = (out / "written" / "think_answers.html").read_text(encoding="utf-8")
    assert all(f">{label}<" in page for label in labels.values()) and ">1001<" not in page
    with open(out / "written" / "scores.csv", newline="", encoding="utf-8-sig") as handle:
        assert sorted(r["student"] for r in csv.DictReader(handle)
                      if r["question"] == "think_answers") == sorted(labels.values())
    assert "already graded with these tests" in said and not re.search(r"^grading ", said, re.M)
    assert "writing the feedback of 4 student(s) whose scores changed" in said
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert rows["1001"]["written:think_answers"] == "2.5" and rows["1001"]["written_missing"] == ""
    assert float(rows["1001"]["total"]) == TESTS_MAX + 2.5
    assert float(rows["1010"]["total"]) == TESTS_MAX + 3 and float(rows["mistake1"]["written"]) == 1
    assert rows["mistake2"]["written:think_answers"] == "" and \
        rows["mistake2"]["written_missing"] == "think_answers"  # not graded yet
    assert float(rows["mistake2"]["total"]) == float(rows["mistake2"]["automatic"])
    feedback = (out / "feedback" / "1001" / "sds_assignment.html").read_text()
    assert "2.5 / 3" in feedback and "Question 2 lacks the reason &lt;why&gt;." in feedback
    assert f"{TESTS_MAX + 2.5:g} / {TESTS_MAX + WRITTEN_MAX:.1f}" in feedback
    assert (out / "feedback" / "1003" / "sds_assignment.html").stat().st_mtime_ns == untouched
    pending = (out / "feedback" / "mistake2" / "sds_assignment.html").read_text()
    assert "not graded yet (of 3)" in pending and "not all graded yet" in pending
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", "sds-kit") as book:
        def grade_of(student):
            return book.find_grade("think_answers", "sds_assignment", "sds", student)

        assert grade_of("1001").manual_score == 2.5 and not grade_of("1001").needs_manual_grade
        assert book.find_comment("think_answers", "sds_assignment", "sds", "1010").comment == \
            "좋습니다."
        assert grade_of("mistake1").manual_score == 1  # a score overrides "No response"
        assert grade_of("mistake2").manual_score is None and grade_of("mistake2").needs_manual_grade
        assert grade_of("1003").auto_score == 0 and not grade_of("1003").needs_manual_grade
    # Unchanged: the same submissions and the same scores keep the gradebook and feedback.
    before = _snapshot(out / "course")
    grades_before = (out / "grades.csv").read_bytes()
    _regrade(graded, out, "--blind", "--written-scores", str(out / "written" / "scores.csv"))
    assert "already hold these results: kept them" in capsys.readouterr().out
    assert _snapshot(out / "course") == before
    assert (out / "grades.csv").read_bytes() == grades_before
    assert _snapshot(graded["out"]) == original, "the copy worked on the original's course folder"

# --- Grades into Canvas and Moodle (autograder/lms.py), and the similarity report, through
# grade.py's options: one more run on the graded class (results kept: seconds) serves both.
LMS_DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def regraded_with_options(graded, tmp_path_factory):
    # The sample files' assignment is worth 14 points; here it is worth what the kit gives
    # (the blanks and the written answers), as a course would set it up.
    data = tmp_path_factory.mktemp("lms")
    maximum = f"{TESTS_MAX + WRITTEN_MAX:.2f}"
    for name in ("canvas_gradebook_export.csv", "moodle_grading_worksheet.csv"):
        (data / name).write_text((LMS_DATA / name).read_text(encoding="utf-8")
                                 .replace("14.00", maximum), encoding="utf-8")
    done = subprocess.run([sys.executable, "autograder/grade.py", str(graded["archive"]), "--out",
                           str(graded["out"]), "--canvas-gradebook",
                           str(data / "canvas_gradebook_export.csv"), "--moodle-worksheet",
                           str(data / "moodle_grading_worksheet.csv"), "--similarity"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_grades_go_into_the_canvas_export_and_the_moodle_worksheet(graded, regraded_with_options):
    """Each Canvas student's total lands in the assignment's column of their row, the Moodle
    participant's in Grade with a comment, and what matched nothing is listed."""
    out, stdout = graded["out"], regraded_with_options
    assert not re.search(r"^grading \S+ \.\.\.$", stdout, re.M), \
        "an unchanged regrade should keep every result"
    totals = {s: row["total"] for s, row in graded["rows"].items()}
    with open(out / "canvas_gradebook_import.csv", encoding="utf-8-sig") as handle:
        canvas = list(csv.reader(handle))
    column = canvas[0].index("SDS assignment (4402)")
    got = {row[1]: row[column] for row in canvas[2:]}
    part7 = TESTS_MAX - 14  # what each of these students earns in Part 7's tests (0 or 6)
    assert got == {"1001": f"{TESTS_MAX:g}", "1002": f"{8 + part7:g}", "1003": "0", "1009": "0",
                   "1010": f"{TESTS_MAX:g}", "1011": "", "1099": ""}
    assert all(float(got[s]) == float(totals[s]) for s in ("1001", "1002", "1003", "1009", "1010"))
    with open(out / "moodle_grading_worksheet.csv", encoding="utf-8-sig") as handle:
        moodle = list(csv.DictReader(handle))
    assert [(r["Identifier"], r["Grade"]) for r in moodle] == [
        ("Participant 1007", f"{12 + part7:.2f}"), ("Participant 1002", f"{8 + part7:.2f}"),
        ("Participant 1098", "")]
    assert f"{12 + part7:g} of {TESTS_MAX + WRITTEN_MAX:g} points" in moodle[0]["Feedback comments"]
    # 1002's think-about-it answers are not graded yet: the comment says so rather than show 0
    assert "Not graded yet: written:think_answers." in moodle[1]["Feedback comments"]
    assert "written:think_answers 0" not in moodle[1]["Feedback comments"]
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
