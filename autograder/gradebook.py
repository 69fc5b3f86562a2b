"""nbgrader keeps the gradebook and writes the feedback; the sandbox decides the points.

Plain `nbgrader autograde` runs the student's notebook in one kernel, tests included. That
kernel is the student's: a cell can rebind `torch.allclose`, and a warning on stderr costs
points (nbgrader scores any stderr output as a failure). So grading (autograder/grade.py)
runs each blank in the sandbox first (autograder/sandbox.py) and only then hands nbgrader, for
each student, a notebook it can trust:

1. `canonical_notebook`: the release notebook of the student's edition (the Korean one for a
   Korean student: the same cells and grade ids), with each blank's solution cell replaced by
   the student's code (found by autograder/locate.py) and a first cell listing the grader's flags.
   Its structure is the release's, whatever the student did to theirs.
2. `nbgrader autograde`, once for the class, with `InjectVerdicts` in place of nbgrader's
   Execute step: each test cell gets, as its output, what the sandboxed test said (nothing
   on a pass, an error with the check's message on a failure). nbgrader's own steps then
   restore the test cells from the source, score them into gradebook.db, and
3. `nbgrader generate_feedback` renders each student's feedback page.

`record` then reads the gradebook back and checks that it agrees with the sandbox's points.

The page speaks the student's language (grade.py's StudentResult.language): the verdicts file
of each student says which, and InjectVerdicts, FeedbackView and the template
(templates/sds_feedback/) word everything in it. nbgrader's autograde puts the source's
(English) text back into every locked cell, so FeedbackView puts the edition's own prose and
figures back into the page.
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
from sdskit.i18n import N_, tr_in
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
c.FeedbackView.verdicts_dir = {verdicts!r}
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


# The feedback page's own words (the template's; FeedbackView words them for the student).
WORDS = {"points": N_("points"), "blank": N_("blank"), "visible_test": N_("visible test"),
         "hidden_test": N_("hidden test"), "total": N_("total")}
_TESTS = {"visible": N_("Blank {number}: visible test"),
          "hidden": N_("Blank {number}: hidden test")}
_EXPERIMENT_TESTS = {"visible": N_("Experiment {number}: visible test"),
                     "hidden": N_("Experiment {number}: hidden test")}


def cell_label(grade_id: str, is_test: bool, language: str = "en") -> str:
    """What the feedback page calls a graded cell: 'Blank 6: hidden test', 'Your answer to
    blanks 1 and 2', in `language`."""
    blanks = [b for b, gid in locate.BLANK_CELLS.items() if gid == grade_id]
    if blanks:
        if len(blanks) == 1:
            return tr_in(language, "Your answer to blank {number}", number=blanks[0])
        return tr_in(language, "Your answer to blanks {numbers}",
                     numbers=tr_in(language, " and ").join(str(b) for b in blanks))
    experiments = [u for u, gid in locate.EXPERIMENT_CELLS.items() if gid == grade_id]
    if experiments:
        return tr_in(language, "Your answer to experiment {number}", number=experiments[0][3:])
    match = re.fullmatch(r"(blank|exp)(\d+)_(visible|hidden)", grade_id or "")
    if is_test and match:
        tests = _TESTS if match.group(1) == "blank" else _EXPERIMENT_TESTS
        return tr_in(language, tests[match.group(3)], number=match.group(2))
    return grade_id or ""


def _student_language(verdicts_dir: str, resources) -> str:
    """The student's language, from their verdicts file (written by `record`)."""
    path = Path(verdicts_dir) / f"{resources['nbgrader']['student']}.json"
    return json.loads(path.read_text(encoding="utf-8")).get("language", "en")


class FeedbackView(NbGraderPreprocessor):
    """For the feedback page only: name each graded cell by its blank and leave out the code
    of the hidden tests (their verdict stays), in the student's language."""

    verdicts_dir = Unicode("", help="folder of <student_id>.json verdict files").tag(config=True)

    def preprocess(self, nb, resources):
        """Also gives the template resources["sds_blanks"]: per blank, its tests' points, and
        resources["sds_words"]: the page's words in the student's language."""
        self._language = _student_language(self.verdicts_dir, resources)
        resources["sds_language"] = resources["language_code"] = self._language  # <html lang>
        self._prose = {}  # grade_id -> the edition's markdown cell
        if self._language != "en":
            edition = nbformat.read(NOTEBOOKS / COURSE.edition(locate.NOTEBOOK, self._language),
                                    as_version=4)
            self._prose = {locate.grade_id(c): c for c in edition.cells
                           if c.cell_type == "markdown" and locate.grade_id(c)}
        resources["sds_words"] = {key: tr_in(self._language, word) for key, word in WORDS.items()}
        nb, resources = super().preprocess(nb, resources)
        blanks: dict[tuple, list[dict]] = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader") or {}
            match = re.fullmatch(r"(blank|exp)(\d+)_(visible|hidden)", meta.get("grade_id") or "")
            if meta.get("grade") and match:
                blanks.setdefault((match.group(1) != "blank", int(match.group(2))), []).append(
                    {"grade_id": meta["grade_id"], "score": float(meta.get("score") or 0),
                     "points": float(meta.get("points") or 0)})
        bonus = COURSE.experiments == "bonus"
        experiment_row = N_("experiment {number} (bonus)") if bonus else N_("experiment {number}")
        resources["sds_blanks"] = [
            {"blank": tr_in(self._language, experiment_row, number=number) if experiment
             else number, "tests": tests,
             "score": sum(t["score"] for t in tests), "points": sum(t["points"] for t in tests)}
            for (experiment, number), tests in sorted(blanks.items())]
        resources["sds_written"] = [cell.metadata["sds_written"] for cell in nb.cells
                                    if "sds_written" in cell.metadata]
        pending = [row["title"] for row in resources["sds_written"] if row["pending"]]
        resources["sds_written_note"] = tr_in(
            self._language, "Your written answers are graded by hand and not all graded yet "
            "({titles}): the total counts what has been graded so far.",
            titles=", ".join(pending)) if pending else ""
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader") or {}
        edition = self._prose.get(meta.get("grade_id"))
        if cell.cell_type == "markdown" and edition is not None and not meta.get("solution"):
            cell.source = edition.source
            if "attachments" in edition:
                cell.attachments = edition.attachments
        if meta.get("grade") or meta.get("solution"):
            cell.metadata["sds_label"] = cell_label(meta.get("grade_id"), bool(meta.get("grade")),
                                                    self._language)
        if written.is_graded_answer(cell):
            self._written(cell, resources)
        if cell.cell_type == "code" and _HIDDEN.search(cell.source):
            said = tr_in(self._language, "(the hidden cases ran here when your work was graded)")
            cell.source = _HIDDEN.sub(f"# {said}\n", cell.source).rstrip("\n")
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
        language = self._language
        title = next((q.title(language) for q in written.questions()
                      if q.grade_id == meta["grade_id"]), meta["grade_id"])
        points = written.points_text(float(meta.get("points") or 0))
        score = written.points_text(float(meta.get("score") or 0))
        cell.metadata["sds_label"] = tr_in(language, "Written answer: {title}", title=title)
        cell.metadata["sds_written"] = {
            "grade_id": meta["grade_id"], "title": title, "pending": pending,
            "shown": (tr_in(language, "not graded yet (of {points})", points=points) if pending
                      else tr_in(language, "{score} / {points}", score=score, points=points)),
            "html": written_pages.render_markdown(cell.source, cell.get("attachments")),
            "comment": meta.get("comment") or "",
            "comment_label": tr_in(language, "Comment from the grader:"),
        }


class InjectVerdicts(NbGraderPreprocessor):
    """Give each test cell the output its sandboxed test produced, instead of running it."""

    verdicts_dir = Unicode("", help="folder of <student_id>.json verdict files").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        path = Path(self.verdicts_dir) / f"{student}.json"
        # {"language": ..., "tests": {grade_id: [passed, message]}}; a test with no verdict
        # fails (never passes by default)
        data = json.loads(path.read_text(encoding="utf-8"))
        self._language, self._verdicts = data["language"], data["tests"]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        grade_id = locate.grade_id(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cell.cell_type == "code" and (cell.metadata.get("nbgrader") or {}).get("grade"):
            language = self._language
            passed, message = self._verdicts.get(
                grade_id, [False, tr_in(language, "This test did not run.")])
            lines = message.strip().splitlines() or [tr_in(language, "failed")]
            if passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                       text=tr_in(language, "passed") + "\n")]
            else:
                cell.outputs = [nbformat.v4.new_output(
                    "error", ename=tr_in(language, "Test failed"), evalue=lines[0],
                    traceback=lines)]
        return cell, resources


def canonical_notebook(sources: dict[str, str], flags: list[str],
                       answers: dict[str, str | None] | None = None,
                       language: str = "en") -> nbformat.NotebookNode:
    """The release notebook of the edition in `language`, with the student's code in its
    solution cells, their written answers in place of YOUR ANSWER HERE (a cell left as released
    stays as released, so that nbgrader gives it 0, "No response"), and the flags (already in
    `language`) on top."""
    name = locate.NOTEBOOK if language == "en" else COURSE.edition(locate.NOTEBOOK, language)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        grade_id = locate.grade_id(cell)
        if grade_id in sources:
            cell.source = sources[grade_id]
        elif written.is_graded_answer(cell) and (answers or {}).get(grade_id):
            cell.source = cell.source.replace(written.STUB, answers[grade_id], 1)
    if flags:
        lines = "\n".join(f"- {flag}" for flag in flags)
        heading = tr_in(language, "Notes from the grader")
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"**{heading}**\n\n{lines}"))
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
        shown = (result.notes_shown or result.notes) + (result.flags_shown or result.flags)
        nbformat.write(canonical_notebook(result.sources, shown, result.written, result.language),
                       folder / notebook_name)
        tests = {gid: [score == maximum,
                       result.messages_shown.get(gid, result.messages.get(gid, ""))]
                 for _, gid, score, maximum in result.cells}
        (verdicts / f"{result.student_id}.json").write_text(
            json.dumps({"language": result.language, "tests": tests}), encoding="utf-8")
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
