"""Grade a whole class: `python autograder/grade.py SUBMISSIONS --out OUT`.

SUBMISSIONS is a folder with one subfolder per student id, each holding that student's
notebooks under their released names (e.g. `alice/sds_assignment.ipynb`), or a .zip of such
a folder. The submissions are read, never modified.

The command runs nbgrader (autograde, then feedback) in a course folder it manages
(OUT/course) and writes:

    OUT/grades.csv     one row per student: blank1..blank7, other graded items, total, max_total, notes
    OUT/cells.csv      student_id, notebook, grade_id, points, max_points
    OUT/feedback/<student_id>/<notebook>.html

Every student gets a row. A student whose notebook is missing or broken gets zero for it, and
the reason is written in the `notes` column.
"""

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

import nbformat  # noqa: E402

from sdskit import course  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.paths import SOLUTIONS  # noqa: E402

BLANK = re.compile(r"^(blank\d+)_")  # grade ids blankN_visible, blankN_hidden -> column blankN


@dataclass
class StudentResult:
    student_id: str
    cells: list[tuple[str, str, float, float]] = field(default_factory=list)  # nb, id, pts, max
    notes: list[str] = field(default_factory=list)

    def points_by_column(self) -> dict[str, float]:
        """grades.csv's columns: blankN sums blankN_visible and blankN_hidden; others as is."""
        columns: dict[str, float] = {}
        for _, grade_id, score, _ in self.cells:
            match = BLANK.match(grade_id)
            column = match.group(1) if match else grade_id
            columns[column] = columns.get(column, 0.0) + score
        return columns

    @property
    def total(self) -> float:
        return sum(score for _, _, score, _ in self.cells)


def find_class_folder(submissions: Path, workdir: Path) -> Path:
    """The folder of student folders: SUBMISSIONS itself, or a .zip unpacked into workdir."""
    if submissions.is_dir():
        return submissions
    if submissions.suffix == ".zip" and submissions.is_file():
        target = workdir / "unzipped"
        with zipfile.ZipFile(submissions) as archive:
            for member in archive.namelist():
                destination = (target / member).resolve()
                if not destination.is_relative_to(target.resolve()):
                    raise SystemExit(f"error: {submissions} holds an unsafe path {member!r}; "
                                     "unpack it yourself and pass the folder.")
            archive.extractall(target)
        entries = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        # A zip of the class folder itself holds one top folder with the student folders inside.
        if len(entries) == 1 and entries[0].is_dir() and not any(
                (entries[0] / name).exists() for name in COURSE.notebooks):
            return entries[0]
        return target
    raise SystemExit(f"error: SUBMISSIONS should be a folder or a .zip file, but {submissions} "
                     "is neither. Pass the folder that holds one subfolder per student.")


def max_points() -> dict[tuple[str, str], float]:
    """(notebook, grade_id) -> points, for every graded cell of the source notebooks."""
    points = {}
    for name in COURSE.notebooks:
        notebook = nbformat.read(SOLUTIONS / name, as_version=4)
        for cell in notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                points[(Path(name).stem, meta["grade_id"])] = float(meta.get("points", 0))
    return points


def stage_student(root: Path, student_dir: Path, result: StudentResult) -> bool:
    """Copy a student's readable notebooks into nbgrader's submitted/ folder.

    Returns False (with a note) when none of them can be graded.
    """
    target = root / "submitted" / result.student_id / COURSE.assignment
    target.mkdir(parents=True, exist_ok=True)
    staged = 0
    for name in COURSE.notebooks:
        path = student_dir / name
        if not path.is_file():
            result.notes.append(f"{name} is missing: 0 points for it")
            continue
        try:
            nbformat.read(path, as_version=4)
        except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
            result.notes.append(f"{name} is not a readable notebook ({type(error).__name__}): "
                                "0 points for it")
            continue
        shutil.copyfile(path, target / name)
        staged += 1
    return staged > 0


def read_grades(root: Path, result: StudentResult, points: dict) -> None:
    """Fill result.cells from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "sds-kit") as gradebook:
        for (notebook, grade_id), maximum in points.items():
            try:
                submitted = gradebook.find_submission_notebook(notebook, COURSE.assignment,
                                                               result.student_id)
                grade = next(g for g in submitted.grades if g.name == grade_id)
                score = float(grade.score or 0)
            except (MissingEntry, StopIteration):
                score = 0.0
            result.cells.append((notebook, grade_id, score, maximum))


def grade_student(root: Path, student_dir: Path, out: Path, points: dict) -> StudentResult:
    result = StudentResult(student_dir.name)
    if stage_student(root, student_dir, result):
        try:
            course.nbgrader(root, "autograde", COURSE.assignment, "--student", result.student_id,
                            "--create", "--force", timeout=COURSE.notebook_timeout_s)
        except course.NbgraderError as error:
            result.notes.append("grading failed: " + str(error).splitlines()[0])
        except subprocess.TimeoutExpired:
            result.notes.append(f"grading stopped after {COURSE.notebook_timeout_s} s")
    read_grades(root, result, points)
    return result


def write_feedback(root: Path, results: list[StudentResult], out: Path) -> None:
    """One nbgrader generate_feedback run for the class, copied to OUT/feedback/<student>/."""
    try:
        course.nbgrader(root, "generate_feedback", COURSE.assignment, "--force")
    except course.NbgraderError as error:
        print(f"warning: feedback could not be generated: {error}", file=sys.stderr)
    for result in results:
        feedback = root / "feedback" / result.student_id / COURSE.assignment
        for html in sorted(feedback.glob("*.html")):
            destination = out / "feedback" / result.student_id / html.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(html, destination)


def write_tables(results: list[StudentResult], out: Path, points: dict) -> None:
    blanks = sorted({BLANK.match(gid).group(1) for _, gid in points if BLANK.match(gid)},
                    key=lambda name: int(name[5:]))
    others = sorted({gid for _, gid in points if not BLANK.match(gid)})
    with open(out / "cells.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "notebook", "grade_id", "points", "max_points"])
        for result in results:
            for notebook, grade_id, score, maximum in result.cells:
                writer.writerow([result.student_id, notebook, grade_id, score, maximum])
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", *blanks, *others, "total", "max_total", "notes"])
        for result in results:
            by_column = result.points_by_column()
            writer.writerow([result.student_id, *(by_column.get(c, 0.0) for c in blanks),
                             *(by_column.get(c, 0.0) for c in others), result.total,
                             sum(points.values()),
                             "; ".join(result.notes)])


def print_table(results: list[StudentResult]) -> None:
    width = max([len(r.student_id) for r in results] + [10])
    print(f"{'student':<{width}}  " + " ".join(f"b{i}" for i in range(1, 8)) + "   total")
    for result in results:
        per_blank = result.points_by_column()
        maximum = sum(m for *_, m in result.cells)
        row = " ".join(f"{per_blank.get(f'blank{i}', 0):>2g}" for i in range(1, 8))
        notes = f"   ({'; '.join(result.notes)})" if result.notes else ""
        print(f"{result.student_id:<{width}}  {row}   {result.total:g}/{maximum:g}{notes}")


def grade(submissions: Path, out: Path) -> list[StudentResult]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        class_folder = find_class_folder(submissions, Path(tmp))
        students = sorted(p for p in class_folder.iterdir()
                          if p.is_dir() and not p.name.startswith((".", "__")))
        if not students:
            raise SystemExit(f"error: {submissions} holds no student folders. Expected one "
                             "subfolder per student id, each with the student's notebooks.")
        root = course.create(out / "course")
        course.generate_release(root)
        points = max_points()
        results = []
        for student_dir in students:
            print(f"grading {student_dir.name} ...", flush=True)
            results.append(grade_student(root, student_dir, out, points))
        write_feedback(root, results, out)
    write_tables(results, out, points)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Grade a class's SDS assignment notebooks.")
    parser.add_argument("submissions", type=Path,
                        help="folder (or .zip) with one subfolder per student id")
    parser.add_argument("--out", type=Path, required=True, help="where results are written")
    args = parser.parse_args(argv)
    if not args.submissions.exists():
        raise SystemExit(f"error: {args.submissions} does not exist. Pass the folder (or .zip) "
                         "that holds one subfolder per student.")
    results = grade(args.submissions, args.out)
    print()
    print_table(results)
    print(f"\nwrote {args.out / 'grades.csv'}, {args.out / 'cells.csv'} and "
          f"{args.out / 'feedback'}/")


if __name__ == "__main__":
    main()
