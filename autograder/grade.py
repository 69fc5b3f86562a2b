"""Grade a whole class: `python autograder/grade.py SUBMISSIONS --out OUT [--jobs N]`.

SUBMISSIONS is a folder with one subfolder per student id, each holding that student's
notebook (e.g. `alice/sds_assignment.ipynb`, or the Korean edition's `sds_assignment_ko.ipynb`),
or a flat folder of notebooks named as Canvas or Moodle export them or `<student_id>.ipynb`
(autograder/collection.py says how the id is read; `--id-pattern REGEX` changes it), or a .zip of
either. The submissions are read, never modified; files no student could be found for are listed
in OUT/unassigned_files.csv.

Each blank of each student is graded in a fresh sandboxed process (autograder/sandbox.py): the
kit's trusted setup, the student's solution cell for that blank (found by autograder/locate.py),
then the kit's own visible and hidden tests. The notebook's own test cells never run. Then
nbgrader (autograde, then generate_feedback) records those verdicts in its gradebook and writes
the feedback, in a course folder the command manages (OUT/course; autograder/gradebook.py). Writes:

    OUT/grades.csv        one row per student: blank1..blank7, total, max_total, notes, flags
    OUT/cells.csv         student_id, notebook, grade_id, points, max_points
    OUT/feedback/<student_id>/<notebook>.html
    OUT/class_report.csv, OUT/class_report.png   pass rate per blank, most frequent failures
    OUT/results/<student_id>.json                 one per student: how a batch resumes
    OUT/course/gradebook.db                       nbgrader's gradebook, with the same points
    OUT/written/<grade_id>.html, OUT/written/scores.csv   each written question's answers, and
                          the file TAs fill in; `--written-scores FILE` records them
                          (autograder/written.py)

Each student's feedback page speaks the language of the edition they handed in
(autograder/edition.py tells it): the tests' messages, the blanks' names and the flags. The
staff's files (grades.csv, cells.csv, class_report.csv) stay in English.

grades.csv is the authoritative record. Every student gets a row. A student already graded
with the same notebook and the same tests is not graded again (an interrupted batch resumes;
after a test fix, everyone is regraded).
"""

import argparse
import csv
import hashlib
import html
import json
import os
import re
import sys
import tempfile
import threading
import uuid
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the kit, when run as a script


def use_the_kit_environment() -> None:
    """Run under the repository's .venv (made by `make env`) when started with a Python that
    lacks the kit's packages; say what to run when there is none."""
    import importlib.util

    if all(importlib.util.find_spec(name) for name in ("torch", "nbgrader", "IPython")):
        return
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.is_file() and Path(sys.prefix).resolve() != venv.parent.parent.resolve():
        os.execv(str(venv), [str(venv), str(Path(__file__).resolve()), *sys.argv[1:]])
    raise SystemExit(f"error: this Python ({sys.executable}) does not have the kit's packages "
                     f"(torch, nbgrader). Run `make env` in {ROOT} (it creates .venv with "
                     "them), then run this command again.")


if __name__ == "__main__":
    use_the_kit_environment()

from autograder import (collection, course, edition, gradebook, lms, locate,  # noqa: E402
                        sandbox, written, written_pages, written_scores)
from sdskit.config import COURSE  # noqa: E402
from sdskit.i18n import N_, lazy, render, rendered, tr, tr_in  # noqa: E402
from sdskit.paths import HIDDEN_REFERENCES, NOTEBOOKS, REFERENCES, SOLUTIONS  # noqa: E402

# Test cells blankN_visible and blankN_hidden -> column blankN; Part 7's expN_... -> expN.
BLANK = re.compile(r"^((?:blank|exp)\d+)_(?:visible|hidden)$")


def is_bonus(grade_id: str) -> bool:
    """True for the cells whose points are bonus: Part 7's (its tests and its written answers),
    with experiments = "bonus" in sdskit/config.py."""
    return COURSE.experiments == "bonus" and locate.part7(grade_id)


def counted_maximum(points: dict) -> float:
    """max_total: every graded cell's points but the bonus ones."""
    return sum(p for (_, gid), p in points.items() if not is_bonus(gid))


def _column_order(name: str) -> tuple:
    """blank1 ... blank7, then exp1 ... exp3."""
    match = re.fullmatch(r"(blank|exp)(\d+)", name)
    return (match.group(1) != "blank", int(match.group(2)))


@dataclass
class StudentResult:
    student_id: str
    cells: list[tuple[str, str, float, float]] = field(default_factory=list)  # nb, id, pts, max
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # short reasons: anything unusual
    messages: dict[str, str] = field(default_factory=dict)  # grade_id -> what the test said
    cpu_s: float = 0.0  # CPU seconds its blanks took in the sandbox (for the benchmark)
    sources: dict[str, str] = field(default_factory=dict)  # grade_id -> the student's code
    # notes, flags and messages above are English (the staff's files); the student reads
    # them in the language of the edition they handed in:
    language: str = "en"
    notes_shown: list[str] = field(default_factory=list)
    flags_shown: list[str] = field(default_factory=list)
    messages_shown: dict[str, str] = field(default_factory=dict)
    # grade_id -> the student's written answer ("" no response, None no cell found)
    written: dict[str, str | None] = field(default_factory=dict)
    # grade_id -> the written answer's points as graded so far (None: not graded yet); set by
    # grade() from the scores file on every run (`set_written_points`), not part of the cache.
    written_points: dict[str, float | None] = field(default_factory=dict)

    def points_by_column(self) -> dict[str, float]:
        """grades.csv's columns: blankN sums blankN_visible and blankN_hidden; others as is;
        then `written:<grade_id>` for each written answer graded so far."""
        columns: dict[str, float] = {}
        for _, grade_id, score, _ in self.cells:
            match = BLANK.match(grade_id)
            column = match.group(1) if match else grade_id
            columns[column] = columns.get(column, 0.0) + score
        columns.update({f"written:{gid}": points for gid, points in self.written_points.items()
                        if points is not None})
        return columns

    @property
    def automatic(self) -> float:
        """The tests' points (what the sandbox decided), bonus ones included."""
        return sum(score for _, _, score, _ in self.cells)

    @property
    def written_so_far(self) -> float:
        """The written answers' points graded so far, bonus ones included."""
        return sum(p for p in self.written_points.values() if p is not None)

    @property
    def total(self) -> float:
        """The points that count: the tests' and the written answers' graded so far, less the
        bonus ones (is_bonus)."""
        return self.automatic + self.written_so_far - self.bonus

    @property
    def bonus(self) -> float:
        """Part 7's points with experiments = "bonus": its tests' and its written answers'."""
        return (sum(score for _, gid, score, _ in self.cells if is_bonus(gid))
                + sum(p for gid, p in self.written_points.items()
                      if p is not None and is_bonus(gid)))

    @property
    def written_missing(self) -> list[str]:
        """The written questions not graded yet."""
        return [gid for gid, points in self.written_points.items() if points is None]

    def set_written_points(self, scores: dict) -> None:
        self.written_points = {q.grade_id: written_scores.effective(
            self.written.get(q.grade_id), scores.get((self.student_id, q.grade_id)))
            for q in written.questions()}


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
                (entries[0] / name).exists() for name in locate.NAMES):
            return entries[0]
        return target
    raise SystemExit(f"error: SUBMISSIONS should be a folder or a .zip file, but {submissions} "
                     "is neither. Pass the folder that holds one subfolder per student.")


def max_points() -> dict[tuple[str, str], float]:
    """(notebook, grade_id) -> points, for every graded cell of the release notebook."""
    points = {}
    for name in COURSE.notebooks:
        notebook = json.loads((NOTEBOOKS / name).read_text())
        for cell in notebook["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                points[(Path(name).stem, meta["grade_id"])] = float(meta.get("points", 0))
    return points


def submission_key(student_dir: Path, kit: str) -> str:
    """Changes when any file the student handed in changes, or the tests do."""
    digest = hashlib.sha256(kit.encode())
    for path in sorted(p for p in student_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(student_dir)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _title(question, language: str):
    """A written question's title as a message for `lazy`: in English and in `language`."""
    texts = {"en": question.title()}
    if language != "en":
        texts[language] = question.title(language)
    return rendered(**texts)


def grade_student(worker_box: list, student_dir: Path, points: dict, release: dict,
                  scratch: Path) -> StudentResult:
    """Locate the student's cells and grade each blank in the sandbox."""
    result = StudentResult(student_dir.name)
    located = locate.locate(student_dir)
    result.language, _how = edition.detect(located.path)
    flags, notes = list(located.flags), []  # messages (sdskit/i18n.py), rendered below
    result.sources = dict(located.cells)
    verdicts: dict[str, dict] = {}
    experiments = locate.experiments_released()  # {"exp1": "exp1_code", ...}; none when off
    units = [*sorted(locate.BLANK_CELLS), *experiments]  # 1 ... 7, "exp1" ... "exp3"
    cell_of = {**locate.BLANK_CELLS, **experiments}
    if located.fatal is None:
        task = {"setup": release["imports"], "release_class": release["blank1_2_class"],
                "cells": located.cells, "blanks": units,
                "blank_cells": {str(b): g for b, g in cell_of.items()},
                "methods": locate.METHODS, "functions": locate.FUNCTIONS,
                "limits": sandbox.limits(), "language": result.language,
                "scratch": f"/tmp/grading-{os.getpid()}-{uuid.uuid4().hex}"}
        try:
            if worker_box[0] is None:
                worker_box[0] = sandbox.Worker()
            answer = worker_box[0].grade(task, COURSE.student_timeout_s + 120)
            result.cpu_s = round(float(answer.pop("cpu", {}).get("student", 0.0)), 3)
            verdicts = {str(b): v for b, v in answer.items()}
        except (sandbox.WorkerDied, ValueError) as error:
            worker_box[0] = None
            flags.append(lazy("the grader stopped while grading this notebook ({error}): "
                              "please grade it by hand", error=str(error)))
        if sandbox_kind_cache.get("kind") == "none" and references_changed():
            flags.append(lazy("tampering: the notebook wrote to the kit's reference files"))
            verdicts = {}
    else:
        notes.append(lazy("{reason}: 0 points for it", reason=located.fatal))
    asked = written.questions()
    result.written = ({q.grade_id: None for q in asked} if located.fatal else
                      written.find_answers(located.path, asked))
    for question in asked:
        if located.fatal is None and result.written[question.grade_id] is None:
            flags.append(lazy("written answer not found for {title}: no cell of the notebook "
                              "holds it, so it counts as no response unless a grader scores it",
                              title=_title(question, result.language)))
    notebook = Path(COURSE.notebooks[0]).stem
    extra_flags = []
    for unit in units:
        entry = verdicts.get(str(unit)) or {}
        outcome = entry.get("results")
        if entry.get("flag"):  # the sandbox's flag: English, and the student's language
            texts = {"en": entry["flag"]}
            if result.language != "en":
                texts[result.language] = (entry.get("flag_shown")
                                          or tr_in(result.language, entry["flag"]))
            said = rendered(**texts)
            extra_flags.append(lazy("blank {number}: {flag}", number=unit, flag=said)
                               if isinstance(unit, int) else
                               lazy("experiment {number}: {flag}", number=unit[3:], flag=said))
        for cases in ("visible", "hidden"):
            gid = f"blank{unit}_{cases}" if isinstance(unit, int) else f"{unit}_{cases}"
            if outcome:  # [passed, English, the student's language] (autograder/sandbox.py)
                ok, message, *shown = outcome[cases]
                shown = shown[0] if shown else message
            else:
                ok = False
                if located.fatal:
                    said = located.fatal
                elif cell_of[unit] in located.missing:
                    said = (lazy("No cell of your notebook defines this blank.")
                            if isinstance(unit, int) else
                            lazy("No cell of your notebook defines {function} (experiment "
                                 "{number}).", function=locate.FUNCTIONS[cell_of[unit]],
                                 number=unit[3:]))
                else:
                    said = lazy("Not graded (the grader stopped).")
                message, shown = render(said, "en"), render(said, result.language)
            maximum = points.get((notebook, gid), 0.0)
            result.cells.append((notebook, gid, maximum if ok else 0.0, maximum))
            result.messages[gid] = message
            result.messages_shown[gid] = shown
    flags.extend(extra_flags)
    result.flags = [render(flag, "en") for flag in flags]
    result.flags_shown = [render(flag, result.language) for flag in flags]
    result.notes = [render(note, "en") for note in notes]
    result.notes_shown = [render(note, result.language) for note in notes]
    return result


sandbox_kind_cache: dict = {}
_REFERENCES: dict = {}


def references_changed() -> bool:
    """Without a sandbox the kit's files are writable: check, and put them back if changed."""
    changed = False
    for path in (REFERENCES, HIDDEN_REFERENCES):
        if path not in _REFERENCES:
            _REFERENCES[path] = path.read_bytes()
            continue
        try:
            same = path.read_bytes() == _REFERENCES[path]
        except OSError:
            same = False
        if not same:
            path.write_bytes(_REFERENCES[path])
            changed = True
    return changed


def write_plain_feedback(result: StudentResult, out: Path, scores: dict) -> None:
    """OUT/feedback/<student>/<notebook>.html without nbgrader (where it could not record the
    student): each test's outcome, each written answer's points and comment, and the flags."""
    notebook = Path(COURSE.notebooks[0]).stem
    language = result.language
    say = {word: html.escape(tr_in(language, word)) for word in (  # the page's words
        N_("Feedback"), N_("Notes on your submission"), N_("test"), N_("points"), N_("result"))}
    rows = []
    for nb, gid, score, maximum in result.cells:
        message = result.messages_shown.get(gid, result.messages.get(gid, ""))
        rows.append(f"<tr><td>{html.escape(gradebook.cell_label(gid, True, language))}</td>"
                    f"<td>{score:g} / {maximum:g}</td>"
                    f"<td><pre>{html.escape(message)}</pre></td></tr>")
    total = sum(c[2] for c in result.cells)
    maximum = sum(c[3] for c in result.cells)
    for question in written.questions():
        score = scores.get((result.student_id, question.grade_id))
        points = written_scores.effective(result.written.get(question.grade_id), score)
        label = tr_in(language, "Written answer: {title}", title=question.title(language))
        shown = (tr_in(language, "not graded yet (of {points})",
                       points=written.points_text(question.points))
                 if points is None else f"{points:g} / {question.points:g}")
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(shown)}</td>"
                    f"<td><pre>{html.escape(score.comment if score else '')}</pre></td></tr>")
        total, maximum = total + (points or 0.0), maximum + question.points
    flags = "".join(f"<li>{html.escape(f)}</li>"
                    for f in (result.flags_shown or result.flags)
                    + (result.notes_shown or result.notes))
    page = (f"<!DOCTYPE html><html lang='{language}'><head><meta charset='utf-8'><title>"
            f"{say['Feedback']}: {html.escape(result.student_id)}</title><style>"
            "pre { white-space: pre-wrap; } "
            "td, th { border: 1px solid #555; padding: 4px 8px; vertical-align: top; } "
            "table { border-collapse: collapse; }</style></head><body>"
            f"<h1>{html.escape(COURSE.notebooks[0])}: {total:g} / {maximum:g}</h1>"
            + (f"<h2>{say['Notes on your submission']}</h2><ul>{flags}</ul>" if flags else "")
            + f"<table><tr><th>{say['test']}</th><th>{say['points']}</th>"
            f"<th>{say['result']}</th></tr>"
            + "".join(rows) + "</table></body></html>")
    destination = out / "feedback" / result.student_id / f"{notebook}.html"
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(page, encoding="utf-8")


def write_tables(results: list[StudentResult], out: Path, points: dict) -> None:
    """cells.csv (the automatic tests) and grades.csv: the blanks and Part 7's experiments,
    `automatic` (their sum), one `written:<grade_id>` column per written question (empty: not
    graded yet), `written` (their sum so far), `total` (automatic + written), `max_total`, and
    `written_missing` (the written questions not graded yet: until it is empty, the total may
    still rise). With experiments = "bonus", Part 7's points (tests and written answers) go to
    `bonus` (out of `max_bonus`) and stay out of `total` and `max_total`."""
    asked = written.questions()
    written_ids = {q.grade_id for q in asked}
    automatic = {key: value for key, value in points.items() if key[1] not in written_ids}
    blanks = sorted({BLANK.match(gid).group(1) for _, gid in automatic if BLANK.match(gid)},
                    key=_column_order)
    others = sorted({gid for _, gid in automatic if not BLANK.match(gid)})
    bonus = any(is_bonus(gid) for _, gid in points)
    with open(out / "cells.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "notebook", "grade_id", "points", "max_points"])
        for result in results:
            for notebook, grade_id, score, maximum in result.cells:
                writer.writerow([result.student_id, notebook, grade_id, score, maximum])
    everything = sum(automatic.values()) + sum(q.points for q in asked)
    maximum = everything - sum(p for (_, gid), p in automatic.items() if is_bonus(gid)) \
        - sum(q.points for q in asked if is_bonus(q.grade_id))
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", *blanks, *others, "automatic",
                         *(f"written:{q.grade_id}" for q in asked), "written", "total",
                         "max_total", *(["bonus", "max_bonus"] if bonus else []),
                         "written_missing", "notes", "flags"])
        for result in results:
            by_column = result.points_by_column()
            given = result.written_points
            writer.writerow([result.student_id, *(by_column.get(c, 0.0) for c in blanks),
                             *(by_column.get(c, 0.0) for c in others), result.automatic,
                             *("" if given.get(q.grade_id) is None else given[q.grade_id]
                               for q in asked), result.written_so_far, result.total,
                             maximum, *([result.bonus, everything - maximum] if bonus else []),
                             " ".join(result.written_missing),
                             "; ".join(result.notes), "; ".join(result.flags)])


def _message_kind(message: str) -> str:
    """A failure message on one line, whole: numbers and words kept, the blank's header line
    ("Blank 6 (the SDS gradient): not yet right.") and list dashes dropped."""
    lines = [line.strip().lstrip("- ").strip() for line in message.strip().splitlines()]
    lines = [line for line in lines if line and not re.fullmatch(r".*: not yet right\.",
                                                                   line)]
    return " / ".join(" ".join(line.split()) for line in lines)


REPORT_TOP = 5  # failure messages listed per blank in class_report.csv


def write_class_report(results: list[StudentResult], out: Path) -> None:
    """Pass rate per blank (both tests passed) and the most frequent failure messages, each
    with the number of students who got it (a student counts once per message)."""
    rows = []
    rates = {}
    units = [f"blank{b}" for b in sorted(locate.BLANK_CELLS)]
    units += sorted({BLANK.match(gid).group(1) for result in results
                     for _, gid, _, _ in result.cells if BLANK.match(gid) and locate.part7(gid)},
                    key=_column_order)
    for unit in units:
        passed, failures = 0, Counter()
        for result in results:
            ok = all(score == maximum for _, gid, score, maximum in result.cells
                     if gid.startswith(f"{unit}_"))
            passed += ok
            messages = {_message_kind(result.messages.get(f"{unit}_{cases}", ""))
                        for cases in ("visible", "hidden")}
            failures.update(m for m in messages if m and m != "passed")
        rates[unit] = passed / len(results) if results else 0.0
        top = failures.most_common(REPORT_TOP) or [("", 0)]
        for rank, (message, count) in enumerate(top, 1):
            rows.append([unit, f"{rates[unit]:.3f}", passed, rank if count else "",
                         message, count])
    with open(out / "class_report.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["blank", "pass_rate", "students_passing", "rank", "failure_message",
                         "students"])
        writer.writerows(rows)
    plot_pass_rates(rates, len(results), out / "class_report.png")


def plot_pass_rates(rates: dict[str, float], students: int, path: Path) -> None:
    """A bar per blank (and per experiment) with its pass rate written on it, so 0% still
    shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2))
    percent = [100 * r for r in rates.values()]
    names = [re.sub(r"^(blank|exp)(\d+)$", lambda m: f"{m.group(1)} {m.group(2)}", u)
             for u in rates]
    bars = axis.bar(names, percent, color="#4c72b0")
    axis.tick_params(axis="x", labelsize=8)
    axis.bar_label(bars, labels=[f"{p:.0f}%" for p in percent], padding=2, fontsize=9)
    axis.set_ylim(0, 112)
    axis.set_yticks(range(0, 101, 25))
    axis.set_ylabel("students passing both tests (%)")
    axis.set_title(f"Pass rate per blank ({students} student{'s' if students != 1 else ''})")
    axis.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def print_table(results: list[StudentResult]) -> None:
    asked = written.questions()
    width = max([len(r.student_id) for r in results] + [10])
    columns = [f"blank{i}" for i in range(1, 8)]
    columns += sorted({c for r in results for c in r.points_by_column()
                       if re.fullmatch(r"exp\d+", c)}, key=_column_order)
    heads = [f"b{c[5:]}" if c.startswith("blank") else f"e{c[3:]}" for c in columns]
    header = f"{'student':<{width}}  " + " ".join(heads) + "   total"
    column = tr("written")
    print(header + (f"   {column}" if asked else ""))
    for result in results:
        per_blank = result.points_by_column()
        maximum = sum(m for *_, m in result.cells)
        row = " ".join(f"{per_blank.get(c, 0):>2g}" for c in columns)
        shown = ""
        if asked:
            done = "-" if result.written_missing else f"{result.written_so_far:g}"
            shown = f"   {done}/{sum(q.points for q in asked):g}"
        notes = "; ".join(result.notes + result.flags)
        print(f"{result.student_id:<{width}}  {row}   {result.automatic:g}/{maximum:g}" + shown
              + (f"   ({notes})" if notes else ""))


def _load_cached(path: Path, key: str) -> StudentResult | None:
    try:
        data = json.loads(path.read_text())
        if data["key"] != key:
            return None
        return StudentResult(data["student_id"], [tuple(c) for c in data["cells"]],
                             data["notes"], data["flags"], data["messages"], data["cpu_s"],
                             data["sources"], data["language"], data["notes_shown"],
                             data["flags_shown"], data["messages_shown"], data["written"])
    except (OSError, ValueError, KeyError, TypeError):  # unreadable or older: grade again
        return None


def _save(path: Path, key: str, result: StudentResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"key": key, **asdict(result)}))
    os.replace(temporary, path)  # atomic: an interrupted batch never leaves half a result


def record(results: list[StudentResult], keys: dict[str, str], out: Path,
           scores: dict) -> dict[str, str]:
    """nbgrader's gradebook and feedback for these results (autograder/gradebook.py), redone
    only when something they hold changed: a student's key or the recording code (then
    everything), or only the written answers' scores (then only the scores and the feedback).
    An unchanged regrade keeps OUT/course and OUT/feedback. Returns {student_id: why nbgrader
    could not record them}."""
    digest = hashlib.sha256()
    templates = sorted(p for p in gradebook.TEMPLATES.rglob("*") if p.is_file())
    for path in [Path(gradebook.__file__), Path(course.__file__), Path(written.__file__),
                 Path(written_pages.__file__), Path(written_scores.__file__),
                 SOLUTIONS / COURSE.notebooks[0], *templates]:
        digest.update(path.read_bytes())
    digest.update(json.dumps([[r.student_id, keys[r.student_id]] for r in results]).encode())
    key = digest.hexdigest()
    per_student = {r.student_id: hashlib.sha256(json.dumps(sorted(
        [gid, score.points, score.comment] for (student, gid), score in scores.items()
        if student == r.student_id)).encode()).hexdigest()[:16] for r in results}
    scores_key = hashlib.sha256(json.dumps(sorted(per_student.items())).encode()).hexdigest()
    stamp = out / "course" / "recorded.json"
    kept = None
    try:
        kept = json.loads(stamp.read_text())
        pages = [out / "feedback" / r.student_id / locate.NOTEBOOK.replace(".ipynb", ".html")
                 for r in results if r.student_id not in kept["problems"]]
        if kept["key"] != key or not all(page.is_file() for page in pages):
            kept = None
        elif kept["scores"] == scores_key:
            print("nbgrader's gradebook and the feedback already hold these results: kept them",
                  flush=True)
            return kept["problems"]
    except (OSError, ValueError, KeyError, TypeError):
        kept = None
    root = out / "course"
    if kept is not None and not kept["problems"] and isinstance(kept.get("students"), dict):
        changed = {s for s, digest in per_student.items() if kept["students"].get(s) != digest}
        print(tr("recording the written answers' scores in nbgrader's gradebook and writing "
                 "the feedback of {count} student(s) whose scores changed ...",
                 count=len(changed)), flush=True)
        problems = gradebook.publish(root, results, out, scores, only=changed)
    else:
        print("recording the grades in nbgrader's gradebook and writing feedback ...", flush=True)
        root = course.create(root)
        course.generate_release(root)
        problems = gradebook.record(root, results, out, scores)
    stamp.write_text(json.dumps({"key": key, "scores": scores_key, "students": per_student,
                                 "problems": problems}))
    return problems


def write_unassigned(unassigned: list, out: Path) -> None:
    """Files no student could be found for: printed, and listed in OUT/unassigned_files.csv."""
    path = out / "unassigned_files.csv"
    if not unassigned:
        path.unlink(missing_ok=True)
        return
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "reason"])
        writer.writerows([item.file, item.reason] for item in unassigned)
    print(f"warning: {len(unassigned)} file(s) not graded, listed in {path}:", file=sys.stderr)
    for item in unassigned:
        print(f"  {item.file}: {item.reason}", file=sys.stderr)


def grade(submissions: Path, out: Path, jobs: int = 1, id_pattern: str | None = None,
          similarity_report: bool = False, scores_file: Path | None = None,
          blind: bool = False) -> tuple[list[StudentResult], dict]:
    """Grade every student of SUBMISSIONS into OUT. Returns the results, in the class's order
    (each with its written answers' points so far), and the written answers' scores read from
    `scores_file` ({(student, grade_id): Score})."""
    asked = written.questions()
    for problem in written.release_problems(asked):
        raise SystemExit(f"error: {problem}")
    kind = sandbox.sandbox_kind()
    sandbox_kind_cache["kind"] = kind
    if kind == "none":
        print("warning: bubblewrap is not available: grading runs each blank in a fresh process "
              "with rlimits, but without namespaces (see docs/sandbox.md).",
              file=sys.stderr)
        references_changed()
    with tempfile.TemporaryDirectory() as tmp:
        class_folder = find_class_folder(submissions, Path(tmp))
        students, unassigned = collection.gather(class_folder, Path(tmp), id_pattern)
        if not students:
            out.mkdir(parents=True, exist_ok=True)
            write_unassigned(unassigned, out)
            raise SystemExit(f"error: {submissions} holds no student folders and no notebooks "
                             "named after students. Expected one subfolder per student id, or "
                             "files named as Canvas or Moodle export them, or <student_id>.ipynb "
                             "(docs/grading.md; --id-pattern for other names).")
        # A bad scores file stops here, before anything is written.
        labels_file = out / "written" / "labels.csv"
        scores = {} if scores_file is None else written_scores.read_scores(
            scores_file, [p.name for p in students], asked, written_scores.read_labels(labels_file))
        out.mkdir(parents=True, exist_ok=True)
        write_unassigned(unassigned, out)
        points = max_points()
        release = locate.release_cells()
        kit = sandbox.kit_fingerprint()
        results: dict[str, StudentResult] = {}
        todo = []
        keys = {}
        for student_dir in students:
            cache = out / "results" / f"{student_dir.name}.json"
            key = keys[student_dir.name] = submission_key(student_dir, kit)
            cached = _load_cached(cache, key)
            if cached is not None:
                results[student_dir.name] = cached
            else:
                todo.append((student_dir, cache, key))
        if len(todo) < len(students):
            print(f"{len(students) - len(todo)} students already graded with these tests: "
                  "kept their results", flush=True)
        local = threading.local()
        workers = []
        lock = threading.Lock()

        def run(item):
            student_dir, cache, key = item
            if not hasattr(local, "box"):
                local.box = [None]
                with lock:
                    workers.append(local.box)
            print(f"grading {student_dir.name} ...", flush=True)
            with tempfile.TemporaryDirectory() as scratch:
                result = grade_student(local.box, student_dir, points, release, Path(scratch))
            _save(cache, key, result)
            return result

        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                for result in pool.map(run, todo):
                    results[result.student_id] = result
        finally:
            for box in workers:
                if box[0] is not None:
                    box[0].close()
        # Read while the class folder is there (an LMS's flat export is unpacked into tmp).
        documents = None
        if similarity_report:
            from autograder import similarity  # copydetect, only when asked for

            documents = similarity.read_class(students)
    ordered = [results[p.name] for p in students]
    for result in ordered:
        result.set_written_points(scores)
    problems = record(ordered, keys, out, scores)
    for result in ordered:
        if result.student_id in problems:
            flag = lazy("nbgrader could not record this student, so the feedback is the kit's "
                        "plain page ({problem})", problem=problems[result.student_id])
            result.flags.append(render(flag, "en"))
            result.flags_shown.append(render(flag, result.language))
            write_plain_feedback(result, out, scores)
    write_tables(ordered, out, points)
    write_class_report(ordered, out)
    written_pages.write_outputs(ordered, out, scores, blind, given=scores_file is not None)
    if documents is not None:
        print()
        similarity.write_report(documents, out, ordered)
    return ordered, scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Grade a class's SDS assignment notebooks.")
    parser.add_argument("submissions", type=Path,
                        help="folder (or .zip) with one subfolder per student id, or of notebooks "
                             "named as Canvas or Moodle export them, or <student_id>.ipynb")
    parser.add_argument("--id-pattern", default=None, metavar="REGEX",
                        help="read the student id from each file name with this regular "
                             "expression, which needs a (?P<student_id>...) group (and may have "
                             "a (?P<file>...) group); replaces the Canvas/Moodle/plain rules")
    parser.add_argument("--out", type=Path, required=True, help="where results are written")
    parser.add_argument("--jobs", type=int, default=1, help="students graded at once")
    parser.add_argument("--written-scores", type=Path, default=None, metavar="FILE",
                        help=tr("the written answers' scores, filled in (student, question, "
                                "points, comment; OUT/written/scores.csv is the file to fill): "
                                "they go into grades.csv, the gradebook and the feedback"))
    parser.add_argument("--blind", action="store_true",
                        help=tr("show anonymous labels instead of student ids on the written "
                                "answers' pages and in their scores file (the key: "
                                "OUT/written/labels.csv)"))
    parser.add_argument("--similarity", action="store_true",
                        help="rank pairs of students by shared unusual code and prose "
                             "(OUT/similarity.csv, OUT/similarity.html): for a "
                             "person to look at, never a verdict")
    lms_options = parser.add_argument_group(
        "grades into the LMS (autograder/lms.py)",
        "write a copy of the LMS's own file with this assignment's grades filled in, ready to "
        "upload; students are matched by the id their submission's file name carries")
    lms_options.add_argument("--canvas-gradebook", type=Path, metavar="EXPORT.csv",
                             help="the course's Canvas gradebook export (Grades > Export); "
                                  f"writes OUT/{lms.CANVAS_OUT}")
    lms_options.add_argument("--canvas-column", metavar="NAME", default=None,
                             help="the assignment column to fill: its whole name, its title or "
                                  "its assignment id (default: the one whose title contains "
                                  f"{COURSE.lms_assignment!r}, CourseConfig.lms_assignment)")
    lms_options.add_argument("--moodle-worksheet", type=Path, metavar="WORKSHEET.csv",
                             help="the assignment's Moodle grading worksheet (Download grading "
                                  f"worksheet); writes OUT/{lms.MOODLE_OUT}")
    lms_options.add_argument("--missing-as-zero", action="store_true",
                             default=COURSE.lms_missing_as_zero,
                             help="give 0 to students in the LMS file who handed nothing in "
                                  "(default: leave their cell as it was)")
    args = parser.parse_args(argv)
    if not args.submissions.exists():
        raise SystemExit(f"error: {args.submissions} does not exist. Pass the folder (or .zip) "
                         "that holds one subfolder per student.")
    try:  # a wrong LMS file is found now, not after the whole class is graded
        lms.check(args.canvas_gradebook, args.moodle_worksheet, args.canvas_column)
    except lms.LMSFileError as error:
        raise SystemExit(f"error: {error}") from None
    results, scores = grade(args.submissions, args.out, args.jobs, args.id_pattern,
                            args.similarity, scores_file=args.written_scores, blind=args.blind)
    print()
    print_table(results)
    print(f"\nwrote {args.out / 'grades.csv'}, {args.out / 'cells.csv'} and "
          f"{args.out / 'feedback'}/")
    if (args.out / "unassigned_files.csv").is_file():
        print(f"some files were not graded (no student id found): see "
              f"{args.out / 'unassigned_files.csv'}")
    if args.canvas_gradebook or args.moodle_worksheet:
        print()
        pending = sum(bool(r.written_missing) for r in results)
        if pending:
            print(tr("note: {count} student(s) have written answers not graded yet; their LMS "
                     "grade counts only what has been graded (grades.csv: written_missing).",
                     count=pending))
        try:
            lms.export(results, counted_maximum(max_points()), args.out, args.canvas_gradebook,
                       args.moodle_worksheet, args.canvas_column, args.missing_as_zero)
        except lms.LMSFileError as error:
            raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
