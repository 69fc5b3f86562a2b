"""Grades into the LMS without retyping: fill in the course's own Canvas gradebook export or the
assignment's Moodle grading worksheet, ready to upload back.

    python autograder/grade.py SUBMISSIONS --out OUT --canvas-gradebook EXPORT.csv
    python autograder/grade.py SUBMISSIONS --out OUT --moodle-worksheet WORKSHEET.csv

Both files are read, never changed; the filled copy is written next to the results
(`OUT/canvas_gradebook_import.csv`, `OUT/moodle_grading_worksheet.csv`), through a temporary file
renamed into place, so a failure never leaves half a file. Rows are matched by the id that the
LMS's submission file names carry (autograder/collection.py): Canvas's user id (the export's `ID`
column), Moodle's participant id (the worksheet's `Identifier`, `Participant 12345`). What
could not be matched is printed and listed in `OUT/lms_unmatched.csv`.

Canvas (its gradebook importer, `lib/gradebook_importer.rb` in canvas-lms, reads this layout):
a header row `Student, ID, [SIS User ID, SIS Login ID, [Integration ID], [Root Account]], Section`,
then custom columns, then one column per assignment named `Title (assignment id)`, then read-only
totals (`Current Score`, `Final Grade`, ...); a second row whose first cell holds
`Points Possible`, where a read-only column says `(read only)`; then one row per student. The
assignment's column is chosen by `--canvas-column` (its whole header, its assignment id or its
title) or by `CourseConfig.lms_assignment`, which the title must contain.

Moodle (its offline grading worksheet, `mod/assign/feedback/offline`): the importer needs the
columns `Identifier`, `Grade` and `Last modified (grade)`, and reads the feedback comments from
`Feedback comments` when that feedback type is on. The column names are those of the language
Moodle was shown in when the worksheet was downloaded; the kit reads the English ones.

Points: the kit's total (14 for the seven blanks, plus any other graded part) is written as it is
when the LMS's maximum for the assignment is the same; otherwise it is scaled to that maximum
(Canvas's `Points Possible`, Moodle's `Maximum Grade`) and the run says so. A student with no
submission keeps a blank cell (the LMS then shows no grade), or gets 0 with `--missing-as-zero`.
"""

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sdskit.config import COURSE
from sdskit.i18n import tr, tr_in

CANVAS_OUT = "canvas_gradebook_import.csv"
MOODLE_OUT = "moodle_grading_worksheet.csv"
UNMATCHED_OUT = "lms_unmatched.csv"

# Canvas: the student-information columns and the read-only columns its importer skips.
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID",
                          "Root Account", "Section")
CANVAS_TOTALS = re.compile(r"(Current|Final|Override|Unposted) (Score|Points|Grade|Status)")
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)$")
# Moodle: what its importer needs, and what the kit also uses when it is there.
MOODLE_REQUIRED = ("Identifier", "Grade", "Last modified (grade)")
MOODLE_MAXIMUM, MOODLE_FEEDBACK, MOODLE_NAME = "Maximum Grade", "Feedback comments", "Full name"
MOODLE_PARTICIPANT = re.compile(r"^\D*?(\d+)\s*$")  # "Participant 12345" -> 12345


class LMSFileError(ValueError):
    """The LMS file is not in the expected format; the message says what is wrong and what to do."""


@dataclass
class Sheet:
    """A CSV file as rows of strings, with how it was written (so the copy looks the same)."""

    path: Path
    rows: list[list[str]]
    delimiter: str = ","
    bom: bool = False
    newline: str = "\r\n"

    @property
    def header(self) -> list[str]:
        return self.rows[0]


@dataclass
class Filled:
    """What one fill did: where it wrote, which column, and what it could not match."""

    lms: str
    path: Path
    column: str
    matched: list[str] = field(default_factory=list)  # student ids written
    no_submission: list[tuple[str, str]] = field(default_factory=list)  # (id, name): LMS rows
    not_in_lms: list[str] = field(default_factory=list)  # graded students with no LMS row
    scale: float = 1.0  # LMS points per kit point
    missing_as_zero: bool = False
    notes: list[str] = field(default_factory=list)


def read_sheet(path: Path) -> Sheet:
    """Read a CSV export (UTF-8, with or without a byte-order mark; commas or semicolons)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LMSFileError(tr("Cannot read {path}: {error}. Pass the CSV file you downloaded "
                              "from the LMS.", path=path, error=error.strerror or error)) from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LMSFileError(tr("{path} is not UTF-8 text (byte {position}): download it again "
                              "from the LMS as CSV, or save it as \"CSV UTF-8\" in a spreadsheet.",
                              path=path, position=error.start)) from error
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise LMSFileError(tr("{path} is empty: download the file again from the LMS.", path=path))
    newline = "\r\n" if "\r\n" in text else "\n"
    return Sheet(path, rows, delimiter, raw.startswith(b"\xef\xbb\xbf"), newline)


def write_sheet(sheet: Sheet, rows: list[list[str]], destination: Path) -> None:
    """Write rows as `sheet` was written, to a temporary file renamed into place."""
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=sheet.delimiter, lineterminator=sheet.newline).writerows(rows)
    data = ("\ufeff" if sheet.bom else "") + out.getvalue()
    _write_atomically(destination, data.encode("utf-8"))


def _write_atomically(destination: Path, data: bytes) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _number(text: str) -> float | None:
    """A number as an LMS writes it ("14", "14.00", "14,00"), or None."""
    text = text.strip().replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _points(score: float) -> str:
    """Points as both LMSs read them: at most two decimals, no trailing zeros."""
    return format(round(score, 2), "g")


def _scale(maximum_text: str, kit_maximum: float, lms: str, filled: Filled) -> None:
    maximum = _number(maximum_text)
    if maximum and kit_maximum and abs(maximum - kit_maximum) > 1e-9:
        filled.scale = maximum / kit_maximum
        filled.notes.append(tr(
            "{lms}'s maximum for this assignment is {lms_maximum} points and the kit's is "
            "{kit_maximum}: each total was scaled by {lms_maximum}/{kit_maximum}.", lms=lms,
            lms_maximum=_points(maximum), kit_maximum=_points(kit_maximum)))


# ---------------------------------------------------------------------------------------
# Canvas
# ---------------------------------------------------------------------------------------
def canvas_layout(sheet: Sheet) -> tuple[int, int | None]:
    """(index of the ID column, index of the Points Possible row or None); or a clear error."""
    header = sheet.header
    if len(header) < 3 or "Student" not in header[0] or header[1].strip() != "ID":
        seen = ", ".join(header[:3])
        raise LMSFileError(tr(
            "{path} is not a Canvas gradebook export: its first columns should be `Student` and "
            "`ID`, but they are: {seen}. In Canvas: Grades > Export > Export Entire Gradebook.",
            path=sheet.path, seen=seen))
    if "Section" not in [cell.strip() for cell in header]:
        raise LMSFileError(tr(
            "{path} has no `{column}` column, which Canvas's gradebook import needs. Export the "
            "gradebook again from Canvas (Grades > Export) and pass that file unchanged.",
            path=sheet.path, column="Section"))
    points = next((i for i, row in enumerate(sheet.rows[1:3], 1)
                   if row and "Points Possible" in row[0]), None)
    return 1, points


def canvas_assignments(sheet: Sheet) -> list[tuple[int, str, str]]:
    """(index, title, assignment id) of every assignment column."""
    found = []
    for index, name in enumerate(sheet.header):
        name = name.strip()
        if name in CANVAS_STUDENT_COLUMNS or CANVAS_TOTALS.search(name):
            continue
        match = CANVAS_ASSIGNMENT.match(name)
        if match:
            found.append((index, match.group("title"), match.group("id")))
    return found


def canvas_column(sheet: Sheet, choice: str | None) -> int:
    """The index of the assignment's column: the one `choice` names (whole header, assignment
    id or title), else the one whose title contains CourseConfig.lms_assignment."""
    columns = canvas_assignments(sheet)
    listed = "; ".join(sheet.header[i] for i, _, _ in columns) or tr("(none)")
    if choice:
        wanted = choice.strip().casefold()
        found = [i for i, title, number in columns
                 if wanted in (sheet.header[i].strip().casefold(), number, title.casefold())]
        what = tr("--canvas-column {choice}", choice=choice)
    else:
        wanted = COURSE.lms_assignment.casefold()
        found = [i for i, title, _ in columns if wanted in title.casefold()]
        what = tr("an assignment whose title contains \"{name}\" (CourseConfig.lms_assignment)",
                  name=COURSE.lms_assignment)
    if not found:
        raise LMSFileError(tr(
            "{path} has no assignment column for {what}. Its assignment columns are: {listed}. "
            "Create the assignment in Canvas and export the gradebook again, or pass "
            "--canvas-column with one of these.", path=sheet.path, what=what, listed=listed))
    if len(found) > 1:
        names = "; ".join(sheet.header[i] for i in found)
        raise LMSFileError(tr(
            "{path} has {count} assignment columns for {what}: {names}. Pass --canvas-column "
            "with the whole name or the assignment id of the one to fill.", path=sheet.path,
            count=len(found), what=what, names=names))
    return found[0]


def fill_canvas(sheet: Sheet, results, kit_maximum: float, destination: Path,
                choice: str | None = None, missing_as_zero: bool = False) -> Filled:
    id_column, points_row = canvas_layout(sheet)
    column = canvas_column(sheet, choice)
    filled = Filled("Canvas", destination, sheet.header[column].strip(),
                    missing_as_zero=missing_as_zero)
    rows = [list(row) + [""] * (len(sheet.header) - len(row)) for row in sheet.rows]
    if points_row is not None:
        cell = rows[points_row][column]
        if re.search(r"read\s+only", cell, re.I):
            raise LMSFileError(tr(
                "In {path}, the column {column} is read-only in Canvas (its Points Possible cell "
                "says \"{cell}\"): Canvas would ignore its grades. Choose another assignment "
                "with --canvas-column.", path=sheet.path, column=filled.column, cell=cell))
        _scale(cell, kit_maximum, "Canvas", filled)
    by_id = {r.student_id: r for r in results}
    seen = set()
    for index, row in enumerate(rows):
        if index == 0 or index == points_row or _canvas_not_a_student(row):
            continue
        student = row[id_column].strip()
        seen.add(student)
        result = by_id.get(student)
        if result is not None:
            row[column] = _points(result.total * filled.scale)
            filled.matched.append(student)
        else:
            if missing_as_zero:
                row[column] = "0"
            filled.no_submission.append((student, row[0].strip()))
    filled.not_in_lms = [r.student_id for r in results if r.student_id not in seen]
    write_sheet(sheet, rows, destination)
    return filled


def _canvas_not_a_student(row: list[str]) -> bool:
    """Canvas's rows that hold no student: a muted or manual-posting row."""
    return all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", cell, re.I) for cell in row)


# ---------------------------------------------------------------------------------------
# Moodle
# ---------------------------------------------------------------------------------------
def moodle_columns(sheet: Sheet) -> dict[str, int]:
    """Column name -> index, after checking the columns Moodle's import needs."""
    columns = {name.strip(): i for i, name in enumerate(sheet.header)}
    for name in MOODLE_REQUIRED:
        if name not in columns:
            seen = ", ".join(sheet.header)
            raise LMSFileError(tr(
                "{path} has no `{column}` column, which Moodle's grading worksheet upload needs "
                "(its columns are: {seen}). In the assignment: View all submissions > Grading "
                "action > Download grading worksheet, with Moodle in English, and pass that file "
                "unchanged.", path=sheet.path, column=name, seen=seen))
    return columns


def moodle_participant(identifier: str) -> str | None:
    match = MOODLE_PARTICIPANT.match(identifier)
    return match.group(1) if match else None


def moodle_comment(result, kit_maximum: float) -> str:
    """The feedback comment: the total, each part's points, and what was unusual, in the
    language of the student's edition (a comment the student reads)."""
    language = result.language
    parts = ", ".join(f"{column} {_points(points)}"
                      for column, points in result.points_by_column().items())
    comment = tr_in(language, "SDS assignment: {total} of {maximum} points ({parts}). Your "
                    "feedback page has each test's message.", total=_points(result.total),
                    maximum=_points(kit_maximum), parts=parts)
    if result.written_missing:  # the total grows when these are graded: say so, not 0
        comment += " " + tr_in(language, "Not graded yet: {questions}.", questions=", ".join(
            f"written:{grade_id}" for grade_id in result.written_missing))
    notes = "; ".join((result.notes_shown or result.notes) + (result.flags_shown or result.flags))
    return comment + (" " + tr_in(language, "Notes: {notes}", notes=notes) if notes else "")


def fill_moodle(sheet: Sheet, results, kit_maximum: float, destination: Path,
                missing_as_zero: bool = False) -> Filled:
    columns = moodle_columns(sheet)
    grade, identifier = columns["Grade"], columns["Identifier"]
    feedback = columns.get(MOODLE_FEEDBACK)
    filled = Filled("Moodle", destination, "Grade", missing_as_zero=missing_as_zero)
    if feedback is None:
        filled.notes.append(tr(
            "The worksheet has no `{column}` column (that feedback type is off in the "
            "assignment's settings), so only grades were filled in.", column=MOODLE_FEEDBACK))
    rows = [list(row) + [""] * (len(sheet.header) - len(row)) for row in sheet.rows]
    if MOODLE_MAXIMUM in columns:
        maxima = {rows[i][columns[MOODLE_MAXIMUM]] for i in range(1, len(rows))} - {""}
        if len(maxima) == 1:
            _scale(maxima.pop(), kit_maximum, "Moodle", filled)
    by_id = {r.student_id: r for r in results}
    seen = set()
    for row in rows[1:]:
        student = moodle_participant(row[identifier])
        name = row[columns[MOODLE_NAME]].strip() if MOODLE_NAME in columns else ""
        if student is None:
            raise LMSFileError(tr(
                "In {path}, the Identifier \"{value}\" is not a participant (expected e.g. "
                "\"Participant 12345\"): pass the worksheet as Moodle wrote it.",
                path=sheet.path, value=row[identifier]))
        seen.add(student)
        result = by_id.get(student)
        if result is not None:
            row[grade] = f"{result.total * filled.scale:.2f}"
            if feedback is not None:
                row[feedback] = moodle_comment(result, kit_maximum)
            filled.matched.append(student)
        else:
            if missing_as_zero:
                row[grade] = "0.00"
            filled.no_submission.append((student, name))
    filled.not_in_lms = [r.student_id for r in results if r.student_id not in seen]
    write_sheet(sheet, rows, destination)
    return filled


# ---------------------------------------------------------------------------------------
# What grade.py calls
# ---------------------------------------------------------------------------------------
def check(canvas: Path | None, moodle: Path | None, canvas_choice: str | None = None) -> None:
    """Read and check the LMS files before grading, so a wrong file is found in a second, not
    after the whole class is graded. Raises LMSFileError."""
    if canvas is not None:
        sheet = read_sheet(canvas)
        canvas_layout(sheet)
        canvas_column(sheet, canvas_choice)
    if moodle is not None:
        moodle_columns(read_sheet(moodle))


def export(results, kit_maximum: float, out: Path, canvas: Path | None = None,
           moodle: Path | None = None, canvas_choice: str | None = None,
           missing_as_zero: bool = False) -> list[Filled]:
    """Fill in each LMS file given; print what was done and what could not be matched."""
    done = []
    if canvas is not None:
        done.append(fill_canvas(read_sheet(canvas), results, kit_maximum, out / CANVAS_OUT,
                                canvas_choice, missing_as_zero))
    if moodle is not None:
        done.append(fill_moodle(read_sheet(moodle), results, kit_maximum, out / MOODLE_OUT,
                                missing_as_zero))
    write_unmatched(done, out / UNMATCHED_OUT)
    for filled in done:
        report(filled, out / UNMATCHED_OUT)
    return done


def write_unmatched(done: list[Filled], path: Path) -> None:
    rows = [[f.lms, "graded, no row in the LMS file", student, ""]
            for f in done for student in f.not_in_lms]
    rows += [[f.lms, "row in the LMS file, no submission", student, name]
             for f in done for student, name in f.no_submission]
    if not rows:
        path.unlink(missing_ok=True)
        return
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["lms", "what", "student_id", "name"])
    writer.writerows(rows)
    _write_atomically(path, out.getvalue().encode("utf-8"))


def report(filled: Filled, unmatched: Path) -> None:
    print(tr("{lms}: wrote {path}: {count} students' grades in the column \"{column}\", ready to "
             "upload.", lms=filled.lms, path=filled.path, count=len(filled.matched),
             column=filled.column))
    for note in filled.notes:
        print("  " + note)
    if filled.not_in_lms:
        print("  " + tr("{count} graded students have no row in the {lms} file (their id is "
                        "not one the {lms} file has, or they are not enrolled): {ids}. Listed "
                        "in {path}.",
                        count=len(filled.not_in_lms), lms=filled.lms,
                        ids=", ".join(filled.not_in_lms[:10]), path=unmatched))
    if filled.no_submission:
        how = tr("given 0") if filled.missing_as_zero else tr("their cells left as they were")
        print("  " + tr("{count} students in the {lms} file handed nothing in: {how}. Listed in "
                        "{path}.", count=len(filled.no_submission), lms=filled.lms, how=how,
                        path=unmatched))
