"""The written answers' scores file, OUT/written/scores.csv: what TAs fill in, and what grade.py
reads back (`--written-scores FILE`; autograder/written.py says how written answers are graded).

One row per student and question: `student,question,points,comment`. `student` is the
student's id, or with `--blind` an anonymous label (the key: OUT/written/labels.csv). `points`
is a number from 0 to the question's points, or empty: not graded yet. The file is read whole
and checked before anything is written; every bad row is named with its line, its value and
what to do. Written with a byte-order mark, so that Excel opens it as UTF-8 (Korean comments).
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from autograder.written import points_text
from sdskit.config import COURSE
from sdskit.i18n import tr

COLUMNS = ("student", "question", "points", "comment")  # the file's header


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    points: float | None  # None: not graded yet
    comment: str = ""


def read_labels(path: Path) -> dict[str, str]:
    """{student_id: anonymous label} from OUT/written/labels.csv (none if it is not there)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return {row["student"]: row["label"] for row in csv.DictReader(handle)}


def extend_labels(path: Path, students: list[str]) -> dict[str, str]:
    """Give every student a stable anonymous label (`--blind`): the numbers are shuffled, so
    a label says nothing of a student's place in the class; new students get unused ones."""
    import secrets

    labels = read_labels(path)
    taken = set(labels.values()) | set(students)
    width = max(3, len(str(2 * (len(labels) + len(students)))))
    pool = [n for n in range(1, 2 * (len(labels) + len(students)) + 2)
            if f"anon-{n:0{width}d}" not in taken]
    for student in students:
        if student not in labels:
            labels[student] = f"anon-{pool.pop(secrets.randbelow(len(pool))):0{width}d}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "label"])
        writer.writerows(sorted(labels.items()))
    return labels


class ScoresError(SystemExit):
    """A scores file that cannot be used; the message names every bad row."""


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_scores(path: Path, students: list[str], asked, labels: dict[str, str]) -> dict:
    """{(student_id, grade_id): Score} from a filled scores file; raises ScoresError naming
    every bad row (and changes nothing). A student may be named by id or by blind label."""
    by_name = {student: student for student in students}
    by_name.update({label: student for student, label in labels.items() if student in by_name})
    graded = {q.grade_id: q for q in asked}
    ungraded = {gid for gid, points in COURSE.written_points.items() if gid not in graded}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(_rows(handle))
    except FileNotFoundError:
        raise ScoresError(tr("error: the scores file {path} does not exist. Pass the file "
                             "grade.py wrote (OUT/written/scores.csv) once its points are "
                             "filled in.", path=path)) from None
    except UnicodeDecodeError:
        raise ScoresError(tr("error: {path} is not UTF-8 text. Save it as CSV UTF-8 (in Excel: "
                             "File > Save As > CSV UTF-8) and run again.", path=path)) from None
    if not rows or any(column not in rows[0][1] for column in COLUMNS[:3]):
        seen = ", ".join(rows[0][1]) if rows else tr("nothing")
        missing = [c for c in COLUMNS[:3] if not rows or c not in rows[0][1]]
        raise ScoresError(tr("error: {path} lacks the column(s) {missing}; its first line has "
                             "{seen}. The first line must be: student,question,points,comment "
                             "(as in the file grade.py writes).", path=path,
                             missing=", ".join(missing), seen=seen))
    header = rows[0][1]
    problems, scores, lines = [], {}, {}
    for line, values in rows[1:]:
        row = dict(zip(header, (v.strip() for v in values)))
        if not any(row.values()):
            continue
        name, gid, given = row.get("student", ""), row.get("question", ""), row.get("points", "")
        where = tr("{path}, line {line}", path=path, line=line)
        student = by_name.get(name)
        if student is None:
            problems.append(tr("{where}: unknown student {name!r}: no student of this class has "
                               "that id (or blind label). Use the student column as grade.py "
                               "wrote it, or delete the row.", where=where, name=name))
        if gid in ungraded:
            problems.append(tr("{where}: the question {gid!r} is not graded (0 points in "
                               "sdskit/config.py's written_points): delete the row, or give the "
                               "question points and run `make release`.", where=where, gid=gid))
        elif gid not in graded:
            problems.append(tr("{where}: unknown question {gid!r}: the written questions are "
                               "{known}. Use one of those, or delete the row.", where=where,
                               gid=gid, known=", ".join(graded) or tr("none")))
        points = None
        if given:
            points = _number(given)
            maximum = graded[gid].points if gid in graded else None
            if points is None:
                problems.append(tr("{where}: the points {given!r} are not a number: write a "
                                   "number such as 2 or 1.5 (with a dot), or leave the cell "
                                   "empty if it is not graded yet.", where=where, given=given))
            elif points < 0 or (maximum is not None and points > maximum):
                problems.append(tr("{where}: the points {given} are out of range: {gid} is "
                                   "worth 0 to {maximum} points.", where=where, given=given,
                                   gid=gid, maximum=points_text(maximum or 0)))
        key = (student, gid)
        if student is not None and gid in graded:
            if key in lines:
                problems.append(tr("{where}: a second row for {name} and {gid} (the first is on "
                                   "line {first}): keep one of them.", where=where, name=name,
                                   gid=gid, first=lines[key]))
            else:
                lines[key] = line
                if points is not None or row.get("comment"):  # else: not graded yet, no note
                    scores[key] = Score(points, row.get("comment", ""))
    if problems:
        raise ScoresError(tr("error: {count} row(s) of the scores file cannot be used, so "
                             "nothing was graded or written. Fix them and run again:",
                             count=len(problems)) + "\n" + "\n".join(f"  {p}" for p in problems))
    return scores


def _rows(handle):
    """(line number where the row starts, values) for each row of a CSV file."""
    reader = csv.reader(handle)
    start = 1
    for values in reader:
        yield start, values
        start = reader.line_num + 1


def effective(answer: str | None, score: Score | None) -> float | None:
    """The points a student has for a question: the TA's, else 0 for no response (as nbgrader
    gives), else None (not graded yet)."""
    if score is not None and score.points is not None:
        return score.points
    return 0.0 if not answer else None


def write_scores(path: Path, students: list[str], asked, answers: dict, scores: dict,
                 labels: dict[str, str] | None) -> None:
    """The file TAs fill in: one row per student and question, points and comments as known
    (empty: not graded yet). `labels`: write each student's anonymous label instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        order = sorted(students, key=lambda s: labels[s]) if labels else students
        for student in order:
            for question in asked:
                score = scores.get((student, question.grade_id))
                points = "" if score is None or score.points is None else points_text(score.points)
                writer.writerow([labels[student] if labels else student, question.grade_id,
                                 points, score.comment if score else ""])
    temporary.replace(path)


def holds_scores(path: Path) -> bool:
    """True if a scores file has any points or comment filled in (so it must not be replaced)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return any((row.get("points") or "").strip() or (row.get("comment") or "").strip()
                       for row in csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return path.exists()
