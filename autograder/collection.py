"""Turn a class's submissions, however they were downloaded, into one folder per student.

Two layouts, also mixed, in a folder or a .zip (autograder/grade.py unpacks it first):

* one folder per student, named by the student id, holding that student's files;
* a flat folder of files named by the LMS's export. The student id is taken from each file
  name by the first of these rules that matches (`ID_RULES`):

      Canvas   [late_]<name>_[late_]<user id>_<submission id>_<file>
               e.g. smithjane_12345_678901_sds_assignment.ipynb -> 12345
      Moodle   <Full Name>_<participant id>_assignsubmission_file_<file>
               e.g. Jane Smith_12345_assignsubmission_file_sds_assignment.ipynb -> 12345
      plain    <student id>.ipynb  (letters, digits, . _ - @; no spaces)
               e.g. js123.ipynb -> js123

  `--id-pattern REGEX` replaces these rules with one regular expression that has a
  `student_id` group (and optionally a `file` group: the name the file gets in the student's
  folder). It is matched against the whole file name.

A file that no rule matches, that two rules read as different students, or that is named like
the assignment itself (`sds_assignment.ipynb` or an edition's `sds_assignment_ko.ipynb` at the
top, with no student in its name) is not graded; it is reported (printed and listed in
OUT/unassigned_files.csv), never silently dropped.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder import locate

ID_RULES = {
    "Canvas": r"^(?:late_)?(?P<name>[^_/]+)_(?:late_)?(?P<student_id>\d+)_\d+_(?P<file>.+)$",
    "Moodle": r"^(?P<name>.+?)_(?P<student_id>\d+)_assignsubmission_file_(?P<file>.+)$",
    "plain": r"^(?P<student_id>[A-Za-z0-9][\w.@-]*)\.ipynb$",
}
FALLBACK = "plain"  # used only where no LMS rule matched
_IGNORED = (".", "__MACOSX", "Thumbs.db")
_SAFE_ID = re.compile(r"^[^/\\\0]+$")


@dataclass
class Unassigned:
    """A file that was not graded, and why."""

    file: str
    reason: str


def compile_rules(id_pattern: str | None) -> dict[str, re.Pattern]:
    """The id rules: the default ones, or the instructor's single pattern."""
    if id_pattern is None:
        return {name: re.compile(rule) for name, rule in ID_RULES.items()}
    try:
        pattern = re.compile(id_pattern)
    except re.error as error:
        raise SystemExit(f"error: --id-pattern {id_pattern!r} is not a regular expression "
                         f"({error}).") from error
    if "student_id" not in pattern.groupindex:
        raise SystemExit(f"error: --id-pattern {id_pattern!r} has no (?P<student_id>...) group; "
                         "add one around the part of the file name that is the student id.")
    return {"--id-pattern": pattern}


def read_name(filename: str, rules: dict[str, re.Pattern]) -> tuple[str | None, str, str]:
    """(student id or None, the file's name in the student's folder, why not matched)."""
    found = {}
    for rule, pattern in rules.items():
        match = pattern.fullmatch(filename)
        if match and match.group("student_id") and not (rule == FALLBACK and found):
            groups = match.groupdict()
            found[rule] = (groups["student_id"], groups.get("file") or filename)
    ids = {student for student, _ in found.values()}
    if not found:
        expected = "--id-pattern" if "--id-pattern" in rules else "Canvas, Moodle or <id>.ipynb"
        return None, filename, f"no student id in its name (expected {expected} naming)"
    if len(ids) > 1:
        readings = ", ".join(f"{rule}: {student}" for rule, (student, _) in found.items())
        return None, filename, f"ambiguous: its name reads as different students ({readings})"
    student, name = next(iter(found.values()))
    if list(found) == [FALLBACK]:
        name = locate.NOTEBOOK  # <id>.ipynb is that student's notebook, not a renamed one
    if not _SAFE_ID.match(student) or student in (".", ".."):
        return None, filename, f"the student id {student!r} it gives is not a usable folder name"
    if list(found) == [FALLBACK] and locate._normal_name(filename) in locate.NAMES:
        return None, filename, "named like the assignment itself, with no student id in it"
    return student, name, ""


def gather(class_folder: Path, workdir: Path,
           id_pattern: str | None = None) -> tuple[list[Path], list[Unassigned]]:
    """One folder per student (sorted by id) and the files that could not be assigned.

    Student folders are used as they are; loose files are copied (never moved) into
    workdir/students/<student_id>/<file>, next to a copy of that student's folder if both exist.
    """
    rules = compile_rules(id_pattern)
    entries = sorted(p for p in class_folder.iterdir() if not p.name.startswith(_IGNORED))
    folders = {p.name: p for p in entries if p.is_dir()}
    loose = [p for p in entries if p.is_file()]
    if not loose:
        return [folders[name] for name in sorted(folders)], []
    unassigned, assigned = [], {}
    for path in loose:
        student, name, reason = read_name(path.name, rules)
        if student is None:
            unassigned.append(Unassigned(path.name, reason))
        else:
            assigned.setdefault(student, []).append((path, name))
    target = workdir / "students"
    students = {}
    for student, folder in folders.items():
        if student in assigned:  # files beside a folder of the same student: one student
            shutil.copytree(folder, target / student, copy_function=shutil.copy2)
            students[student] = target / student
        else:
            students[student] = folder
    for student, files in assigned.items():
        home = target / student
        home.mkdir(parents=True, exist_ok=True)
        for path, name in files:
            destination = home / name
            copy = 1
            while destination.exists():  # the same file name twice: keep both
                copy += 1
                destination = home / f"{Path(name).stem} ({copy}){Path(name).suffix}"
            shutil.copy2(path, destination)
        students[student] = home
    return [students[name] for name in sorted(students)], unassigned
