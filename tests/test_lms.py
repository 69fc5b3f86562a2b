"""Grades into Canvas and Moodle (autograder/lms.py), on sample exports in each LMS's own format
(tests/data/): every student lands on the right row, the rest of the file is kept byte for byte
in meaning, and a file in the wrong format gets a message naming what is missing and no output.
These run on results made here (no grading); test_grading.py runs the same through grade.py."""

import csv
import io
import re
import shutil

import pytest

from autograder import lms
from autograder.grade import StudentResult
from sdskit.paths import ROOT

DATA = ROOT / "tests" / "data"
CANVAS = DATA / "canvas_gradebook_export.csv"
MOODLE = DATA / "moodle_grading_worksheet.csv"
MAXIMUM = 14.0


def _result(student, points_per_blank, flags=()):
    result = StudentResult(student, flags=list(flags))
    for blank, points in enumerate(points_per_blank, 1):
        for cases, share in (("visible", points / 2), ("hidden", points / 2)):
            result.cells.append(("sds_assignment", f"blank{blank}_{cases}", share, 1.0))
    return result


# Canvas ids 1001-1003, 1010; Moodle participants 1007 and 1002; one id neither LMS knows.
RESULTS = [_result("1001", [2] * 7), _result("1002", [2, 2, 0, 2, 0, 2, 0]),
           _result("1003", [0] * 7), _result("1007", [2] * 6 + [0], ["blank 7: time limit"]),
           _result("1010", [2] * 7), _result("alice", [2] * 7)]
TOTALS = {r.student_id: r.total for r in RESULTS}


def _rows(path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_canvas_every_student_lands_on_their_row(tmp_path, capsys):
    done = lms.export(RESULTS, MAXIMUM, tmp_path, canvas=CANVAS)
    before, after = _rows(CANVAS), _rows(tmp_path / lms.CANVAS_OUT)
    column = before[0].index("SDS assignment (4402)")
    assert after[0] == before[0] and after[1] == before[1]  # header and Points Possible kept
    assert len(after) == len(before)
    for old, new in zip(before[2:], after[2:]):
        student = old[1]
        expected = format(TOTALS[student], "g") if student in TOTALS else old[column]
        assert new[column] == expected, f"{student}: {new[column]!r}, expected {expected!r}"
        assert new[:column] + new[column + 1:] == old[:column] + old[column + 1:], student
    assert {row[1]: row[column] for row in after[2:]} == {
        "1001": "14", "1002": "8", "1003": "0", "1009": "", "1010": "14", "1011": "", "1099": ""}
    filled = done[0]
    assert sorted(filled.not_in_lms) == ["1007", "alice"]
    assert [s for s, _ in filled.no_submission] == ["1009", "1011", "1099"]
    unmatched = _rows(tmp_path / lms.UNMATCHED_OUT)
    assert unmatched[0] == ["lms", "what", "student_id", "name"]
    assert {(r[2], r[1]) for r in unmatched[1:]} == {
        ("1007", "graded, no row in the LMS file"), ("alice", "graded, no row in the LMS file"),
        ("1009", "row in the LMS file, no submission"),
        ("1011", "row in the LMS file, no submission"),
        ("1099", "row in the LMS file, no submission")}
    printed = capsys.readouterr().out
    assert "4 students' grades" in printed and "1007, alice" in printed and "1009" not in printed


def test_canvas_missing_as_zero_and_scaling_to_points_possible(tmp_path, capsys):
    rows = _rows(CANVAS)
    column = rows[0].index("SDS assignment (4402)")
    rows[1][column] = "100.00"
    export = tmp_path / "export.csv"
    with open(export, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    lms.export(RESULTS, MAXIMUM, tmp_path, canvas=export, missing_as_zero=True)
    got = {row[1]: row[column] for row in _rows(tmp_path / lms.CANVAS_OUT)[2:]}
    assert got == {"1001": "100", "1002": "57.14", "1003": "0", "1009": "0", "1010": "100",
                   "1011": "0", "1099": "0"}
    assert "scaled by 100/14" in capsys.readouterr().out


@pytest.mark.parametrize("choice, expected", [
    ("SDS assignment (4402)", "SDS assignment (4402)"), ("4401", "Homework 1 (4401)"),
    ("quiz 2", "Quiz 2 (4403)"), (None, "SDS assignment (4402)")])
def test_canvas_column_by_option_or_by_the_assignments_name(choice, expected):
    sheet = lms.read_sheet(CANVAS)
    assert sheet.header[lms.canvas_column(sheet, choice)] == expected


def test_canvas_ambiguous_or_missing_column_is_named(tmp_path):
    sheet = lms.read_sheet(CANVAS)
    sheet.rows[0][5] = "SDS warm-up (4401)"
    with pytest.raises(lms.LMSFileError, match=r"2 assignment columns .*SDS warm-up \(4401\); "
                                                r"SDS assignment \(4402\)"):
        lms.canvas_column(sheet, None)
    with pytest.raises(lms.LMSFileError, match=r"no assignment column for --canvas-column 9999"
                                                r".*Homework 1|SDS warm-up"):
        lms.canvas_column(sheet, "9999")


def test_canvas_read_only_column_is_refused(tmp_path):
    rows = _rows(CANVAS)
    rows[1][6] = "(read only)"
    export = tmp_path / "export.csv"
    with open(export, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(lms.LMSFileError, match="read-only"):
        lms.export(RESULTS, MAXIMUM, tmp_path / "out", canvas=export)
    assert not (tmp_path / "out" / lms.CANVAS_OUT).exists()


def test_moodle_every_participant_lands_on_their_row(tmp_path, capsys):
    lms.export(RESULTS, MAXIMUM, tmp_path, moodle=MOODLE)
    before, after = _rows(MOODLE), _rows(tmp_path / lms.MOODLE_OUT)
    header = before[0]
    grade, comment = header.index("Grade"), header.index("Feedback comments")
    assert after[0] == header and len(after) == len(before)
    got = {row[0]: (row[grade], row[comment]) for row in after[1:]}
    assert got["Participant 1007"][0] == "12.00" and got["Participant 1002"][0] == "8.00"
    assert got["Participant 1098"] == ("", "")
    assert "12 of 14 points" in got["Participant 1007"][1]
    assert "blank7 0" in got["Participant 1007"][1] and "time limit" in got["Participant 1007"][1]
    for old, new in zip(before[1:], after[1:]):  # everything else as Moodle wrote it
        assert [c for i, c in enumerate(new) if i not in (grade, comment)] == \
               [c for i, c in enumerate(old) if i not in (grade, comment)]
    assert "1001, 1003" in capsys.readouterr().out  # graded, not in this worksheet


@pytest.mark.parametrize("lms_name, column", [("Moodle", "Identifier"), ("Moodle", "Grade"),
                                              ("Moodle", "Last modified (grade)"),
                                              ("Canvas", "Section")])
def test_a_missing_column_is_named_and_nothing_is_written(tmp_path, lms_name, column):
    source = MOODLE if lms_name == "Moodle" else CANVAS
    rows = _rows(source)
    index = rows[0].index(column)
    rows = [row[:index] + row[index + 1:] for row in rows]
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    out = tmp_path / "out"
    out.mkdir()
    kwargs = {"moodle": broken} if lms_name == "Moodle" else {"canvas": broken}
    with pytest.raises(lms.LMSFileError, match=re.escape(f"no `{column}` column")) as error:
        lms.check(kwargs.get("canvas"), kwargs.get("moodle"))
    assert str(broken) in str(error.value)
    with pytest.raises(lms.LMSFileError, match=re.escape(f"no `{column}` column")):
        lms.export(RESULTS, MAXIMUM, out, **kwargs)
    assert list(out.iterdir()) == []  # no output, no temporary file


def test_a_bad_row_leaves_the_previous_output_whole(tmp_path):
    lms.export(RESULTS, MAXIMUM, tmp_path, moodle=MOODLE)
    good = (tmp_path / lms.MOODLE_OUT).read_bytes()
    broken = tmp_path / "broken.csv"
    broken.write_text(MOODLE.read_text() + '"Someone","X",x@example.edu,,,14.00,Yes,-,-,\n')
    with pytest.raises(lms.LMSFileError, match='Identifier "Someone" is not a participant'):
        lms.export(RESULTS, MAXIMUM, tmp_path, moodle=broken)
    assert (tmp_path / lms.MOODLE_OUT).read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["broken.csv", lms.MOODLE_OUT, lms.UNMATCHED_OUT])


def test_not_a_canvas_export_and_semicolons_and_bom(tmp_path):
    with pytest.raises(lms.LMSFileError, match="not a Canvas gradebook export.*Identifier"):
        lms.check(MOODLE, None)
    text = CANVAS.read_text().replace(",", ";")  # a spreadsheet in a decimal-comma locale
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_bytes(b"\xef\xbb\xbf" + text.encode())
    lms.export(RESULTS, MAXIMUM, tmp_path, canvas=semicolons)
    written = (tmp_path / lms.CANVAS_OUT).read_bytes()
    assert written.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(written.decode("utf-8-sig")), delimiter=";"))
    assert rows[2][1] == "1001" and rows[2][6] == "14"


def test_the_inputs_are_never_modified(tmp_path):
    copies = {p: p.read_bytes() for p in (CANVAS, MOODLE)}
    lms.export(RESULTS, MAXIMUM, tmp_path, canvas=CANVAS, moodle=MOODLE)
    assert all(p.read_bytes() == data for p, data in copies.items())
    shutil.rmtree(tmp_path)
