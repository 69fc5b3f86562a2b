"""Written answers, graded by hand: the questions, the students' answers, the TAs' scores.

A written question is a markdown cell of solutions/ (nbgrader: a manually graded answer)
whose text is a short prompt, then the model answer and its rubric between nbgrader's markers:

    **Your answers**

    ### BEGIN SOLUTION
    1. ... the model answer ...

    **Rubric (3 points).**
    - 1 point: ...
    ### END SOLUTION

Its points are in sdskit/config.py (`written_points`, by the cell's grade_id). `make release`
writes them into the cell's nbgrader metadata (`sync_points`) and under its prompt
(`mark_points`); nbgrader turns the region into "YOUR ANSWER HERE" in the release, so the
model answer and the rubric stay in solutions/. A question with 0 points stays a plain markdown
cell, its model answer cut (course.strip_model_answers).

autograder/grade.py, for each graded question:
1. `find_answers` takes each student's answer from their notebook: the cell with the question's
   grade_id or, where the metadata was lost, the markdown cell that starts with its prompt.
2. autograder/written_pages.py writes OUT/written/<grade_id>.html, every student's answer
   under the model answer and rubric, and autograder/written_scores.py the file the TAs fill
   in, OUT/written/scores.csv (student, question, points, comment).
3. `written_scores.read_scores` reads a filled file (`--written-scores FILE`). Any bad row
   stops grading with a message naming the row, before anything is written. An empty points
   cell: not graded yet.
4. The points go into grades.csv, into nbgrader's gradebook as manual grades of those cells
   (autograder/gradebook.py, as formgrader records them) and into the feedback pages.

A student who left the answer as released ("YOUR ANSWER HERE") gets 0 for it without a TA,
as nbgrader does ("No response."); a score in the file overrides that.
"""

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autograder.locate import grade_id, source
from sdskit.config import COURSE
from sdskit.i18n import N_, tr, tr_in
from sdskit.paths import NOTEBOOKS, SOLUTIONS

REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$",
                    re.S | re.M)
STUB = "YOUR ANSWER HERE"  # what nbgrader leaves of the region in the release
GRADED = N_("*Graded by hand: {points} points.*")
GRADED_ONE = N_("*Graded by hand: 1 point.*")
NOT_GRADED = N_("*Not graded.*")
# Said by scripts/make_release.py and scripts/make_student.py (the catalogue reads the kit's
# code in sdskit/ and autograder/, so their words live here).
SYNCED = N_("updated the written questions' points in solutions/{name} from sdskit/config.py")
README_ITEM = N_("6. The written questions ({titles}: {points} points in all) are graded by "
                 "hand: write your answer in place of `YOUR ANSWER HERE` in their answer cell.")


def is_answer_cell(cell: dict) -> bool:
    """A written question's cell in solutions/: markdown with a solution region."""
    return cell.get("cell_type") == "markdown" and bool(REGION.search(source(cell)))


def is_graded_answer(cell: dict) -> bool:
    """A written question that is graded (in solutions/ or the release): a markdown cell that
    nbgrader grades by hand."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return (cell.get("cell_type") == "markdown" and bool(meta.get("grade"))
            and bool(meta.get("solution")))


def _set_source(cell: dict, text: str) -> None:
    lines = text.split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + lines[-1:]


def points_text(points: float) -> str:
    return f"{points:g}"


# ---------------------------------------------------------------------------------------
# The release: points from sdskit/config.py into solutions/ and under each prompt.
# ---------------------------------------------------------------------------------------
def config_problems(notebook: dict, where: str) -> list[str]:
    """What keeps sdskit/config.py's written_points from matching the notebook's cells."""
    cells = {grade_id(c): c for c in notebook["cells"] if is_answer_cell(c)}
    found = []
    for gid in cells:
        if gid not in COURSE.written_points:
            found.append(tr("{where}: the written question {gid} has no points in "
                            "sdskit/config.py: add \"{gid}\": POINTS to written_points (0 "
                            "leaves it ungraded).", where=where, gid=gid))
    for gid, points in COURSE.written_points.items():
        if gid not in cells:
            found.append(tr("sdskit/config.py's written_points names {gid}, but {where} has no "
                            "written question {gid} (a markdown cell with a ### BEGIN SOLUTION "
                            "region): fix the name or delete the entry.", where=where, gid=gid))
        elif (isinstance(points, bool) or not isinstance(points, (int, float))
              or not math.isfinite(points) or points < 0):
            found.append(tr("sdskit/config.py's written_points gives {gid} the points {points!r}: "
                            "use a number, 0 or more.", gid=gid, points=points))
    return found


def nbgrader_metadata(gid: str, points: float) -> dict:
    """A manually graded answer (points > 0), or a plain markdown cell that students edit."""
    if points > 0:
        return {"grade": True, "grade_id": gid, "locked": False, "points": points,
                "schema_version": 3, "solution": True, "task": False}
    return {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3,
            "solution": False, "task": False}


def apply_points(notebook: dict, where: str) -> None:
    """Give each answer cell of a solution notebook the nbgrader metadata that
    sdskit/config.py's written_points asks for; stop with a message if the config and the
    notebook disagree on which questions there are."""
    problems = config_problems(notebook, where)
    if problems:
        raise SystemExit("error: " + "\n".join(problems))
    for cell in notebook["cells"]:
        if is_answer_cell(cell):
            cell.setdefault("metadata", {})["nbgrader"] = nbgrader_metadata(
                grade_id(cell), COURSE.written_points[grade_id(cell)])


def sync_points(path: Path) -> bool:
    """Write written_points into a solution notebook's answer cells (`make release`, as
    course.sync_setup_cell writes the repository URL). Returns True if the file changed."""
    text = Path(path).read_text(encoding="utf-8")
    notebook = json.loads(text)
    apply_points(notebook, f"solutions/{Path(path).name}")
    new = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        Path(path).write_text(new, encoding="utf-8")
    return new != text


def release_problems(asked) -> list[str]:
    """Where the release notebook's written questions are not what sdskit/config.py says."""
    released = {q.grade_id: q.points for q in asked}
    wanted = {gid: float(p) for gid, p in COURSE.written_points.items() if p > 0
              and not (COURSE.experiments == "off" and gid.startswith("exp"))}  # Part 7 left out
    if released == wanted:
        return []
    return [tr("the release notebook grades the written questions {released}, but "
               "sdskit/config.py's written_points says {wanted}: run `make release` (then "
               "`make student` to publish it).",
               released=", ".join(f"{g}: {points_text(p)}" for g, p in released.items()) or "-",
               wanted=", ".join(f"{g}: {points_text(p)}" for g, p in wanted.items()) or "-")]


def mark_points(notebook: dict, language: str = "en") -> None:
    """Say under each written question's prompt what it is worth ("Graded by hand: 3
    points."), in the edition's language, from the cell's metadata (nbgrader's source)."""
    for cell in notebook["cells"]:
        if not is_answer_cell(cell):
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        points = float(meta.get("points") or 0) if is_graded_answer(cell) else 0.0
        if points == 1:
            line = tr_in(language, GRADED_ONE)
        elif points > 0:
            line = tr_in(language, GRADED, points=points_text(points))
        else:
            line = tr_in(language, NOT_GRADED)
        text = source(cell)
        start = REGION.search(text).start()
        _set_source(cell, text[:start] + line + "\n\n" + text[start:])


# ---------------------------------------------------------------------------------------
# The questions, as the release asks them.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    grade_id: str
    points: float
    titles: tuple[tuple[str, str], ...]  # (language, the heading above the question)
    prompts: tuple[str, ...]  # the release cell's text in each edition, YOUR ANSWER HERE cut
    release: str  # the English release cell's text (with YOUR ANSWER HERE)
    asks: tuple[tuple[str, str], ...] = ()  # (language, the question: the cell above, the prompt)

    def title(self, language: str = "en") -> str:
        titles = dict(self.titles)
        return titles.get(language) or titles["en"]

    def text(self, language: str = "en") -> str:
        """The question as the release asks it: the markdown cell above the answer cell (if it
        is not another answer) and the answer cell's prompt."""
        asks = dict(self.asks)
        return asks.get(language) or asks.get("en", "")


def _heading_before(cells: list[dict], index: int) -> str:
    for cell in reversed(cells[:index]):
        if cell.get("cell_type") == "markdown":
            headings = [line for line in source(cell).splitlines() if line.startswith("#")]
            if headings:
                return headings[-1].lstrip("#").strip()
    return ""


def _edition_language(name: str) -> str:
    for language in COURSE.editions:
        if name == COURSE.edition(COURSE.notebooks[0], language):
            return language
    return "en"


@lru_cache(maxsize=1)
def questions() -> tuple[Question, ...]:
    """The graded written questions of the release notebooks, in notebook order."""
    editions = {}
    for name in COURSE.released:
        path = NOTEBOOKS / name
        if path.is_file():
            editions[_edition_language(name)] = json.loads(path.read_text(encoding="utf-8"))
    english = editions["en"]["cells"]
    found = []
    for index, cell in enumerate(english):
        if not is_graded_answer(cell):
            continue
        gid = grade_id(cell)
        titles, prompts, asks = [], [], []
        for language, notebook in editions.items():
            cells = notebook["cells"]
            at = next((i for i, c in enumerate(cells) if grade_id(c) == gid), None)
            if at is None:
                continue
            titles.append((language, _heading_before(cells, at) or gid))
            prompts.append(source(cells[at]).replace(STUB, "").strip())
            # The question: the markdown cell above (unless it is another answer), then the
            # cell's own prompt (a question may be asked in either place).
            before = cells[at - 1] if at else {}
            context = (source(before) if before.get("cell_type") == "markdown"
                       and not is_graded_answer(before) else "")
            asks.append((language, "\n\n".join(
                part for part in (context, prompts[-1]) if part.strip())))
        found.append(Question(gid, float(cell["metadata"]["nbgrader"]["points"]), tuple(titles),
                              tuple(prompts), source(cell), tuple(asks)))
    return tuple(found)


def model_answer(gid: str, language: str = "en") -> str:
    """The model answer and rubric of a question (markdown), from solutions/ (or its
    translation, for another language, where there is one)."""
    if language != "en":
        translated = SOLUTIONS / "translations" / f"{Path(COURSE.edition(COURSE.notebooks[0], language)).stem}.md"
        if translated.is_file():
            text = translated.read_text(encoding="utf-8")
            marker = re.search(rf"^<!-- cell {re.escape(gid)} \|.*-->$", text, re.M)
            if marker:
                block = text[marker.end():].split("\n<!-- cell ", 1)[0]
                region = REGION.search(block)
                if region:
                    return region.group(1).strip("\n")
    notebook = json.loads((SOLUTIONS / COURSE.notebooks[0]).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if grade_id(cell) == gid and is_answer_cell(cell):
            return REGION.search(source(cell)).group(1).strip("\n")
    return ""


# ---------------------------------------------------------------------------------------
# A student's answers.
# ---------------------------------------------------------------------------------------
def answer_text(text: str, question: Question) -> str:
    """What the student wrote: the cell less the release's prompt lines (any edition's) and
    the YOUR ANSWER HERE stub. Empty: no response."""
    lines = text.replace("\r\n", "\n").split("\n")
    for prompt in question.prompts:
        wanted = [line.strip() for line in prompt.split("\n") if line.strip()]
        at, matched = 0, 0
        while at < len(lines) and matched < len(wanted):
            if not lines[at].strip():
                at += 1
            elif lines[at].strip() == wanted[matched]:
                at, matched = at + 1, matched + 1
            else:
                break
        if matched:
            lines = lines[at:]
            break
    return "\n".join(line for line in lines if line.strip() != STUB).strip()


def find_answers(path: Path, asked=None) -> dict[str, str | None]:
    """{grade_id: the student's answer} for each graded question: "" for no response, None
    where the notebook has no cell for it (deleted, or its labels and its prompt both gone)."""
    asked = questions() if asked is None else asked
    try:
        cells = json.loads(Path(path).read_bytes().decode("utf-8", errors="replace"))["cells"]
        markdown = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "markdown"]
    except (OSError, ValueError, KeyError, TypeError):
        return {q.grade_id: None for q in asked}
    answers = {}
    for question in asked:
        tagged = [c for c in markdown if grade_id(c) == question.grade_id]
        if not tagged:  # the labels were lost: the cell that starts with the prompt
            firsts = {prompt.split("\n", 1)[0].strip() for prompt in question.prompts}
            tagged = [c for c in markdown if source(c).strip().split("\n", 1)[0].strip()
                      in firsts - {""}]
        answers[question.grade_id] = answer_text(source(tagged[-1]), question) if tagged else None
    return answers
