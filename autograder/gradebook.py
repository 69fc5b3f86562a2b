"""nbgrader keeps the gradebook and writes the feedback; the sandbox decides the points.

Plain `nbgrader autograde` runs the student's notebook in one kernel, tests included. That
kernel is the student's: a cell can rebind `torch.allclose`, and a warning on stderr costs
points (nbgrader scores any stderr output as a failure). So grading (autograder/grade.py)
runs each blank in the sandbox first (autograder/sandbox.py) and only then hands nbgrader, for
each student, a notebook it can trust:

1. `canonical_notebook`: the release notebook, with each blank's solution cell replaced by
   the student's code (found by autograder/locate.py) and a first cell listing the grader's flags.
   Its structure is the release's, whatever the student did to theirs.
2. `nbgrader autograde`, once for the class, with `InjectVerdicts` in place of nbgrader's
   Execute step: each test cell gets, as its output, what the sandboxed test said (nothing
   on a pass, an error with the check's message on a failure). nbgrader's own steps then
   restore the test cells from the source, score them into gradebook.db, and
3. `nbgrader generate_feedback` renders each student's feedback page.

`record` then reads the gradebook back and checks that it agrees with the sandbox's points.
"""

import json
import re
import shutil
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from autograder import course, locate, written, written_pages, written_scores
from sdskit.config import COURSE
from sdskit.i18n import tr
from sdskit.paths import NOTEBOOKS

# Autograde's steps (nbgrader 0.9), with the kernel run replaced by the sandbox's verdicts.
_GRADING_CONFIG = """
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)
from autograder.gradebook import InjectVerdicts
c.Autograde.autograde_preprocessors = [InjectVerdicts, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                       CheckCellMetadata]
c.InjectVerdicts.verdicts_dir = {verdicts!r}
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades
from autograder.gradebook import FeedbackView
c.GenerateFeedback.preprocessors = [GetGrades, FeedbackView, CSSHTMLHeaderPreprocessor]
c.HTMLExporter.template_name = "sds_feedback"
c.HTMLExporter.extra_template_basedirs = [{templates!r}]
"""
TEMPLATES = Path(__file__).resolve().parent / "templates"
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS\n.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?",
                     re.S | re.M)


def cell_label(grade_id: str, is_test: bool) -> str:
    """What the feedback page calls a graded cell: 'Blank 6: hidden test', 'Your answer to
    blanks 1 and 2'."""
    blanks = [b for b, gid in locate.BLANK_CELLS.items() if gid == grade_id]
    if blanks:
        return (f"Your answer to blank {blanks[0]}" if len(blanks) == 1 else
                "Your answer to blanks " + " and ".join(str(b) for b in blanks))
    experiments = [u for u, gid in locate.EXPERIMENT_CELLS.items() if gid == grade_id]
    if experiments:
        return f"Your answer to experiment {experiments[0][3:]}"
    match = re.fullmatch(r"(blank|exp)(\d+)_(visible|hidden)", grade_id or "")
    if is_test and match:
        kind = "Blank" if match.group(1) == "blank" else "Experiment"
        return f"{kind} {match.group(2)}: {match.group(3)} test"
    return grade_id or ""


class FeedbackView(NbGraderPreprocessor):
    """For the feedback page only: name each graded cell by its blank and leave out the code
    of the hidden tests (their verdict stays)."""

    def preprocess(self, nb, resources):
        """Also gives the template resources["sds_blanks"]: per blank, its tests' points."""
        nb, resources = super().preprocess(nb, resources)
        blanks: dict[tuple, list[dict]] = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader") or {}
            match = re.fullmatch(r"(blank|exp)(\d+)_(visible|hidden)", meta.get("grade_id") or "")
            if meta.get("grade") and match:
                blanks.setdefault((match.group(1) != "blank", int(match.group(2))), []).append(
                    {"grade_id": meta["grade_id"], "score": float(meta.get("score") or 0),
                     "points": float(meta.get("points") or 0)})
        bonus = " (bonus)" if COURSE.experiments == "bonus" else ""
        resources["sds_blanks"] = [
            {"blank": f"experiment {number}{bonus}" if experiment else number, "tests": tests,
             "score": sum(t["score"] for t in tests), "points": sum(t["points"] for t in tests)}
            for (experiment, number), tests in sorted(blanks.items())]
        resources["sds_written"] = [cell.metadata["sds_written"] for cell in nb.cells
                                    if "sds_written" in cell.metadata]
        pending = [row["title"] for row in resources["sds_written"] if row["pending"]]
        resources["sds_written_note"] = tr(
            "Your written answers are graded by hand and not all graded yet ({titles}): the "
            "total counts what has been graded so far.", titles=", ".join(pending)) if pending else ""
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader") or {}
        if meta.get("grade") or meta.get("solution"):
            cell.metadata["sds_label"] = cell_label(meta.get("grade_id"), bool(meta.get("grade")))
        if written.is_graded_answer(cell):
            self._written(cell, resources)
        if cell.cell_type == "code" and _HIDDEN.search(cell.source):
            cell.source = _HIDDEN.sub("# (the hidden cases ran here when your work was graded)\n",
                                      cell.source).rstrip("\n")
        return cell, resources


    def _written(self, cell, resources) -> None:
        """A written answer on the feedback page: its title, the points the grader gave (or
        that it is not graded yet), the answer as markdown (its HTML escaped) and the comment."""
        from nbgrader.api import Gradebook

        meta = cell.metadata["nbgrader"]
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as book:
            grade = book.find_grade(meta["grade_id"], info["notebook"], info["assignment"],
                                    info["student"])
            pending = grade.manual_score is None and grade.auto_score is None
        title = next((q.title() for q in written.questions() if q.grade_id == meta["grade_id"]),
                     meta["grade_id"])
        points = written.points_text(float(meta.get("points") or 0))
        score = written.points_text(float(meta.get("score") or 0))
        cell.metadata["sds_label"] = tr("Written answer: {title}", title=title)
        cell.metadata["sds_written"] = {
            "grade_id": meta["grade_id"], "title": title, "pending": pending,
            "shown": (tr("not graded yet (of {points})", points=points) if pending
                      else tr("{score} / {points}", score=score, points=points)),
            "html": written_pages.render_markdown(cell.source, cell.get("attachments")),
            "comment": meta.get("comment") or "",
            "comment_label": tr("Comment from the grader:"),
        }


class InjectVerdicts(NbGraderPreprocessor):
    """Give each test cell the output its sandboxed test produced, instead of running it."""

    verdicts_dir = Unicode("", help="folder of <student_id>.json verdict files").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        path = Path(self.verdicts_dir) / f"{student}.json"
        # grade_id -> [passed, message]; a test with no verdict fails (never passes by default)
        self._verdicts = json.loads(path.read_text())
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        grade_id = locate.grade_id(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cell.cell_type == "code" and (cell.metadata.get("nbgrader") or {}).get("grade"):
            passed, message = self._verdicts.get(grade_id, [False, "This test did not run."])
            lines = message.strip().splitlines() or ["failed"]
            if passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed\n")]
            else:
                cell.outputs = [nbformat.v4.new_output("error", ename="Test failed",
                                                       evalue=lines[0], traceback=lines)]
        return cell, resources


def canonical_notebook(sources: dict[str, str], flags: list[str],
                       answers: dict[str, str | None] | None = None) -> nbformat.NotebookNode:
    """The release notebook with the student's code in its solution cells, their written
    answers in place of YOUR ANSWER HERE (a cell left as released stays as released, so that
    nbgrader gives it 0, "No response"), and the flags on top."""
    notebook = nbformat.read(NOTEBOOKS / locate.NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        grade_id = locate.grade_id(cell)
        if grade_id in sources:
            cell.source = sources[grade_id]
        elif written.is_graded_answer(cell) and (answers or {}).get(grade_id):
            cell.source = cell.source.replace(written.STUB, answers[grade_id], 1)
    if flags:
        lines = "\n".join(f"- {flag}" for flag in flags)
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"**Notes from the grader**\n\n{lines}"))
    return notebook


def record(root: Path, results: list, out: Path, scores: dict) -> dict[str, str]:
    """Put every student's verdicts into nbgrader's gradebook, then the written answers'
    scores (`publish`), and write their feedback to OUT/feedback/<student>/<notebook>.html.
    Returns {student_id: problem} for any student nbgrader could not record (their grades.csv
    row stands; the caller notes it)."""
    notebook_name = locate.NOTEBOOK
    verdicts = root / "verdicts"
    verdicts.mkdir(parents=True, exist_ok=True)
    for result in results:
        folder = root / "submitted" / result.student_id / COURSE.assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(canonical_notebook(result.sources, result.notes + result.flags,
                                          result.written), folder / notebook_name)
        tests = {gid: [score == maximum, result.messages.get(gid, "")]
                 for _, gid, score, maximum in result.cells}
        (verdicts / f"{result.student_id}.json").write_text(json.dumps(tests))
    configure(root)
    try:
        course.nbgrader(root, "autograde", COURSE.assignment, "--create", "--force")
    except course.NbgraderError as error:
        return {r.student_id: str(error).splitlines()[0] for r in results}
    return publish(root, results, out, scores)


def configure(root: Path) -> None:
    """nbgrader's settings for grading in this course folder (paths as the folder is now)."""
    root = Path(root).resolve()
    course.write_config(root, _GRADING_CONFIG.format(verdicts=str(root / "verdicts"),
                                                     templates=str(TEMPLATES)))


def publish(root: Path, results: list, out: Path, scores: dict,
            only: set[str] | None = None) -> dict[str, str]:
    """Record the written answers' scores in the gradebook of an autograded course folder,
    as formgrader does (a manual score and comment per cell; no score: it needs grading), then
    write the feedback of every student (or of those in `only`, whose scores changed) and
    check the gradebook against grades.csv's points."""
    from nbgrader.api import Gradebook

    configure(root)
    stem = Path(locate.NOTEBOOK).stem
    asked = written.questions()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "sds-kit") as book:
        for result in results:
            for question in asked:
                try:
                    grade = book.find_grade(question.grade_id, stem, COURSE.assignment,
                                            result.student_id)
                    comment = book.find_comment(question.grade_id, stem, COURSE.assignment,
                                                result.student_id)
                except Exception:  # noqa: BLE001 - not recorded: the check below names them
                    continue
                score = scores.get((result.student_id, question.grade_id))
                grade.manual_score = score.points if score else None
                grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
                comment.manual_comment = (score.comment or None) if score else None
        book.db.commit()
    problems = {}
    others = sorted(r.student_id for r in results if only is not None and r.student_id not in only)
    if any("," in student for student in others):
        others = []  # nbgrader takes the list comma-separated: then write everyone's feedback
    exclude = [f"--CourseDirectory.student_id_exclude={','.join(others)}"] if others else []
    try:
        course.nbgrader(root, "generate_feedback", COURSE.assignment, "--force", *exclude)
    except course.NbgraderError as error:
        problems = {r.student_id: str(error).splitlines()[0] for r in results}
    recorded = read_gradebook(root, [r.student_id for r in results])
    for result in results:
        if result.student_id in problems:
            continue
        expected = {gid: score for _, gid, score, _ in result.cells}
        for question in asked:
            points = written_scores.effective(result.written.get(question.grade_id),
                                       scores.get((result.student_id, question.grade_id)))
            expected[question.grade_id] = points or 0.0
        got = recorded.get(result.student_id, {})
        differ = sorted(gid for gid in expected.keys() | got.keys()
                        if got.get(gid) != expected.get(gid))
        if differ:
            problems[result.student_id] = ("its gradebook differs from the sandbox on "
                                           + ", ".join(differ))
            continue
        if result.student_id in others:
            continue  # its feedback page is the one it had
        page = root / "feedback" / result.student_id / COURSE.assignment / f"{stem}.html"
        destination = out / "feedback" / result.student_id / page.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, destination)
    return problems


def read_gradebook(root: Path, students: list[str]) -> dict[str, dict[str, float]]:
    """{student_id: {grade_id: score}} as nbgrader's gradebook holds them."""
    from nbgrader.api import Gradebook, MissingEntry

    stem = Path(locate.NOTEBOOK).stem
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "sds-kit") as gradebook:
        for student in students:
            try:
                submitted = gradebook.find_submission_notebook(stem, COURSE.assignment, student)
            except MissingEntry:
                continue
            scores[student] = {g.name: float(g.score or 0) for g in submitted.grades}
    return scores
