"""A similarity report: which pairs of students share unusual code or prose, for a person to read.

    python autograder/grade.py SUBMISSIONS --out OUT --similarity

It is a ranking, never a verdict: similar work has innocent causes (a study group, the same
tutorial, a hint given to the whole class), so the page and the command say so, and it decides
nothing about any grade.

What is compared, per student: what they wrote in each graded code cell (its lines that are not
the release's), and their written answers (the markdown answer cells, e.g. `think_answers`).
Matching is copydetect's (winnowed k-gram fingerprints, as MOSS does), on text normalised so that
spacing, comments and (in prose) case and punctuation do not matter. Discounted, so that they
never count as shared:
- the release's own text (its code and markdown cells): boilerplate;
- code equal to the model answer or to a known correct alternative (autograder/submissions.py),
  and any passage of them: with seven one-line blanks, identical right answers mean nothing; the
  same for the typical mistakes the kit knows (`submissions.MISTAKES`), which many make alone;
- passages that many students share (a common mistake, a line from the course's notes): more
  than `CourseConfig.similarity_common_share` of the class, and at least 3 students.
What remains is the signal: shared unusual wrong answers, shared unusual code, shared prose.

Writes OUT/similarity.csv (every pair that shares anything, best first: score, the code and prose
similarities, what was shared) and OUT/similarity.html (each flagged pair side by side, shared
passages marked).
"""

import csv
import html
import io
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import get_token_coverage

from autograder import locate
from sdskit.config import COURSE
from sdskit.i18n import N_, tr
from sdskit.paths import NOTEBOOKS, SOLUTIONS

CSV_OUT, HTML_OUT = "similarity.csv", "similarity.html"
CODE_K, PROSE_K = 20, 40  # k-gram lengths in normalised characters (code: ~a short expression)
CODE_CELLS = (*sorted(set(locate.BLANK_CELLS.values()), key=list(locate.SIGNATURES).index),
              *locate.EXPERIMENT_CELLS.values())  # Part 7's functions too, where released
_SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


@dataclass
class Document:
    """One piece of a student's work: the text shown, the normalised text compared, and for
    each normalised character the index of the character it came from."""

    original: str
    normal: str
    where: list[int]
    fingerprint: CodeFingerprint | None = None


@dataclass
class Student:
    student_id: str
    code: dict[str, Document] = field(default_factory=dict)  # grade_id -> the student's lines
    prose: dict[str, Document] = field(default_factory=dict)  # grade_id -> the written answer


@dataclass
class Pair:
    a: str
    b: str
    score: float = 0.0
    code: float = 0.0
    prose: float = 0.0
    shared_code: int = 0  # normalised characters of a's code shared with b
    shared_prose: int = 0
    cells: list[str] = field(default_factory=list)  # grade_ids with something shared
    slices: dict = field(default_factory=dict)  # (kind, gid) -> (slices in a, slices in b)


# ---------------------------------------------------------------------------------------
# Normalising: what does not matter is dropped, with a map back to the text
# ---------------------------------------------------------------------------------------
def normal_code(text: str) -> Document:
    """Code without spacing and comments (names and operators kept: in one-line answers the
    names are the signal, and a renamed copy still shares its unusual operations)."""
    chars, where = [], []
    quote = None
    for index, char in enumerate(text):
        if quote is None and char == "#":
            quote = "#"
        if quote == "#":
            if char == "\n":
                quote = None
            continue
        if char in "'\"":
            quote = None if quote == char else (char if quote is None else quote)
        if not char.isspace():
            chars.append(char)
            where.append(index)
    return Document(text, "".join(chars), where)


def normal_prose(text: str) -> Document:
    """Prose as its letters and digits, in lower case (any script: Korean too)."""
    chars, where = [], []
    for index, char in enumerate(text):
        if char.isalnum():
            chars.append(char.lower())
            where.append(index)
    return Document(text, "".join(chars), where)


def own_lines(text: str, release_text: str) -> str:
    """The lines of a student's cell that the release's cell does not have."""
    given = {line.strip() for line in release_text.splitlines()}
    return "\n".join(line for line in text.splitlines()
                     if line.strip() and line.strip() not in given
                     and not _SOLUTION_MARKERS.match(line))


# ---------------------------------------------------------------------------------------
# Reading a class
# ---------------------------------------------------------------------------------------
def _markdown_answers(path: Path, release: dict[str, str], answer_ids: list[str],
                      release_markdown: set[str]) -> dict[str, str]:
    """The student's written answers: the answer cells by grade_id, else (labels lost) every
    markdown cell the release does not have."""
    try:
        cells = json.loads(path.read_bytes().decode("utf-8", errors="replace"))["cells"]
        cells = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "markdown"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found = {}
    for cell in cells:
        gid, text = locate.grade_id(cell), locate.source(cell)
        if gid in answer_ids:
            found[gid] = own_lines(text, release[gid])
    if not found:
        extra = [locate.source(c) for c in cells if locate.source(c).strip() not in
                 release_markdown]
        if extra:
            found[answer_ids[0] if answer_ids else "written"] = "\n".join(extra)
    return {gid: text for gid, text in found.items() if text.strip()}


def _every_edition_markdown() -> list[dict]:
    """The markdown cells of every released edition (the Korean prose is boilerplate too)."""
    cells = []
    for name in COURSE.released:
        notebook = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        cells += [c for c in notebook["cells"] if c.get("cell_type") == "markdown"]
    return cells


def answer_cells() -> list[str]:
    """grade_ids of the release's markdown cells that students answer in."""
    return [locate.grade_id(c) for c in locate._release()
            if c.get("cell_type") == "markdown" and locate.grade_id(c)
            and ("YOUR ANSWER HERE" in locate.source(c)
                 or (c.get("metadata", {}).get("nbgrader") or {}).get("solution"))]


def read_class(student_dirs: list[Path]) -> list[Student]:
    release = locate.release_cells()
    answers = answer_cells()
    release_markdown = {locate.source(c).strip() for c in _every_edition_markdown()}
    students = []
    for folder in student_dirs:
        student = Student(folder.name)
        located = locate.locate(folder)
        if located.fatal is None:
            for gid in CODE_CELLS:
                if gid in located.cells:
                    mine = own_lines(located.cells[gid], release.get(gid, ""))
                    if mine:
                        student.code[gid] = normal_code(mine)
            student.prose = {gid: normal_prose(text) for gid, text in _markdown_answers(
                located.path, release, answers, release_markdown).items()}
        students.append(student)
    return students


def known_answers() -> dict[str, set[str]]:
    """grade_id -> the normalised own lines of every answer the kit knows for that cell: the
    solution's, each correct alternative and each typical mistake of autograder/submissions.py."""
    from autograder import submissions

    release = locate.release_cells()
    solution = submissions.solution_answers()
    known: dict[str, set[str]] = {gid: set() for gid in CODE_CELLS}
    tables = (submissions.ALTERNATIVES, submissions.MISTAKES,
              submissions.EXPERIMENT_ALTERNATIVES, submissions.EXPERIMENT_MISTAKES)
    variants = [solution] + [{**solution, blank: answer} for table in tables
                             for blank, answer in table.items()]
    variants.append({**solution, **submissions.ALTERNATIVES,
                     **submissions.EXPERIMENT_ALTERNATIVES})
    for answers in variants:
        notebook = submissions.fill(answers)
        for cell in notebook["cells"]:
            gid = locate.grade_id(cell)
            if gid in known and gid in release:
                known[gid].add(normal_code(own_lines(locate.source(cell), release[gid])).normal)
    return known


# ---------------------------------------------------------------------------------------
# Fingerprints and pairs
# ---------------------------------------------------------------------------------------
def _fingerprint(document: Document, k: int, boilerplate: set | None = None) -> CodeFingerprint:
    """copydetect's fingerprint of the normalised text (every k-gram: the texts are short),
    without the boilerplate's k-grams. (They are removed here rather than by copydetect, whose
    removal assumes a text never repeats a k-gram.)"""
    fingerprint = CodeFingerprint(f"{id(document)}.txt", k, 1, None, filter=False,
                                  fp=io.StringIO(document.normal))
    if boilerplate:
        dropped = fingerprint.hashes & boilerplate
        fingerprint.hashes -= dropped
        for value in dropped:
            del fingerprint.hash_idx[value]
        fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, k,
                                                        len(document.normal))
    return fingerprint


def _hashes(text: str, k: int) -> set:
    return set(_fingerprint(Document(text, text, []), k).hashes) if len(text) >= k else set()


def boilerplate(students: list[Student]) -> dict[str, set]:
    """The fingerprints that count for nothing, per kind: the release's text, the correct
    answers (code), and what many students share."""
    release_code = "".join(normal_code(locate.source(c)).normal for c in locate._release()
                           if c.get("cell_type") == "code")
    release_prose = "".join(normal_prose(locate.source(c)).normal
                            for c in _every_edition_markdown())
    code = _hashes(release_code, CODE_K)
    for normals in known_answers().values():
        for text in normals:
            code |= _hashes(text, CODE_K)
    prose = _hashes(release_prose, PROSE_K)
    common = max(3, math.ceil(COURSE.similarity_common_share * len(students)))
    for kind, k, found in (("code", CODE_K, code), ("prose", PROSE_K, prose)):
        counts: dict = {}
        for student in students:
            mine = set()
            for document in getattr(student, kind).values():
                mine |= _hashes(document.normal, k)
            for value in mine:
                counts[value] = counts.get(value, 0) + 1
        found |= {value for value, count in counts.items() if count >= common}
    return {"code": code, "prose": prose}


def _covered(slices) -> int:
    return int(np.sum(slices[1] - slices[0])) if len(slices) and slices.shape[1] else 0


def compare(students: list[Student]) -> list[Pair]:
    """Every pair that shares anything not discounted, best first."""
    known = known_answers()
    plate = boilerplate(students)
    for student in students:
        student.code = {gid: doc for gid, doc in student.code.items()
                        if doc.normal not in known.get(gid, set())}
        for kind, k in (("code", CODE_K), ("prose", PROSE_K)):
            for document in getattr(student, kind).values():
                document.fingerprint = _fingerprint(document, k, plate[kind])
    # Only pairs that share a fingerprint can score: find them through an index.
    index: dict = {}
    for number, student in enumerate(students):
        for kind in ("code", "prose"):
            for gid, document in getattr(student, kind).items():
                for value in document.fingerprint.hashes:
                    index.setdefault((kind, gid, value), set()).add(number)
    candidates = set()
    for holders in index.values():
        candidates.update(itertools.combinations(sorted(holders), 2))
    pairs = []
    for i, j in sorted(candidates):
        pair = _pair(students[i], students[j])
        if pair.score > 0:
            pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def _pair(a: Student, b: Student) -> Pair:
    pair = Pair(a.student_id, b.student_id)
    for kind in ("code", "prose"):
        shared_a = shared_b = total_a = total_b = 0
        for gid in sorted(set(getattr(a, kind)) | set(getattr(b, kind))):
            doc_a, doc_b = getattr(a, kind).get(gid), getattr(b, kind).get(gid)
            total_a += doc_a.fingerprint.token_coverage if doc_a else 0
            total_b += doc_b.fingerprint.token_coverage if doc_b else 0
            if not (doc_a and doc_b):
                continue
            overlap, _, (slices_a, slices_b) = compare_files(doc_a.fingerprint, doc_b.fingerprint)
            if overlap:
                pair.slices[(kind, gid)] = (slices_a, slices_b)
                pair.cells.append(gid)
                shared_a += _covered(slices_a)
                shared_b += _covered(slices_b)
        sides = [shared / total for shared, total in ((shared_a, total_a), (shared_b, total_b))
                 if total]
        similarity = min(1.0, sum(sides) / 2) if sides else 0.0
        setattr(pair, kind, round(float(similarity), 4))
        setattr(pair, f"shared_{kind}", int(shared_a))
    pair.score = round(float(pair.code + pair.prose) / 2, 4)
    return pair


# ---------------------------------------------------------------------------------------
# Writing the report
# ---------------------------------------------------------------------------------------
NOT_A_VERDICT = N_("This is a ranking of pairs for a person to look at, never a verdict: similar "
                 "work has innocent causes (a study group, the same tutorial, a hint given to the "
                 "whole class). Read both notebooks before concluding anything.")


def write_csv(pairs: list[Pair], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "student_a", "student_b", "score", "code_similarity",
                         "prose_similarity", "shared_code_chars", "shared_prose_chars",
                         "cells_shared", "flagged"])
        for rank, pair in enumerate(pairs, 1):
            writer.writerow([rank, pair.a, pair.b, pair.score, pair.code, pair.prose,
                             pair.shared_code, pair.shared_prose, " ".join(pair.cells),
                             int(pair.score >= COURSE.similarity_flag_score)])


def _marked(document: Document, slices) -> str:
    """The original text, escaped, with the shared passages in <mark>."""
    spans = []
    if len(slices) and slices.shape[1]:
        for start, end in zip(slices[0], slices[1]):
            if end > start and document.where:
                spans.append((document.where[int(start)], document.where[int(end) - 1] + 1))
    out, at = [], 0
    for start, end in sorted(spans):
        start = max(start, at)
        if end <= start:
            continue
        out.append(html.escape(document.original[at:start]))
        out.append("<mark>" + html.escape(document.original[start:end]) + "</mark>")
        at = end
    out.append(html.escape(document.original[at:]))
    return "".join(out)


def write_html(pairs: list[Pair], students: list[Student], path: Path,
               points: dict[str, dict[str, float]] | None = None) -> None:
    by_id = {s.student_id: s for s in students}
    flagged = [p for p in pairs if p.score >= COURSE.similarity_flag_score]
    shown = flagged[:COURSE.similarity_pairs_shown]
    body = []
    for rank, pair in enumerate(shown, 1):
        a, b = by_id[pair.a], by_id[pair.b]
        rows = []
        for kind in ("code", "prose"):
            for gid in sorted(set(getattr(a, kind)) | set(getattr(b, kind)),
                              key=lambda g: (g not in pair.cells, g)):
                sides = []
                for student, side in ((a, 0), (b, 1)):
                    document = getattr(student, kind).get(gid)
                    slices = pair.slices.get((kind, gid), (np.array([]), np.array([])))[side]
                    sides.append(f"<td><pre>{_marked(document, slices)}</pre></td>" if document
                                 else "<td class='none'>-</td>")
                rows.append(f"<tr><th>{html.escape(gid)}</th>{''.join(sides)}</tr>")
        heading = tr("{rank}. {a} and {b}: score {score} (code {code}, prose {prose})",
                     rank=rank, a=pair.a, b=pair.b, score=pair.score, code=pair.code,
                     prose=pair.prose)
        marks = ""
        if points:
            marks = "<p>" + html.escape(tr("Points per blank: {a}: {pa}; {b}: {pb}", a=pair.a,
                                           b=pair.b, pa=_points_text(points.get(pair.a)),
                                           pb=_points_text(points.get(pair.b)))) + "</p>"
        body.append(f"<h2 id='pair{rank}'>{html.escape(heading)}</h2>{marks}<table>"
                    f"<tr><th></th><th>{html.escape(pair.a)}</th><th>{html.escape(pair.b)}</th>"
                    f"</tr>{''.join(rows)}</table>")
    summary = tr("{students} students, {pairs} pairs sharing something beyond the release and the "
                 "known correct answers, {flagged} flagged (score at least {threshold}); "
                 "{shown} shown below, best first.", students=len(students), pairs=len(pairs),
                 flagged=len(flagged), threshold=COURSE.similarity_flag_score, shown=len(shown))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            + html.escape(tr("Similarity report")) + "</title><style>"
            "body { font-family: sans-serif; margin: 1.5em; } .warning { border: 2px solid #b36b00;"
            " padding: 0.6em; background: #fff6e5; } table { border-collapse: collapse; width: 100%;"
            " table-layout: fixed; } td, th { border: 1px solid #999; padding: 4px 8px;"
            " vertical-align: top; text-align: left; } th:first-child { width: 9em; }"
            " pre { white-space: pre-wrap; margin: 0; } mark { background: #ffd84d; }"
            " td.none { color: #888; }</style></head><body>"
            f"<h1>{html.escape(tr('Similarity report'))}</h1>"
            f"<p class='warning'>{html.escape(tr(NOT_A_VERDICT))}</p>"
            f"<p>{html.escape(summary)}</p>"
            f"<p>{html.escape(tr(EXPLAINED))}</p>" + "".join(body) + "</body></html>")
    path.write_text(page, encoding="utf-8")


EXPLAINED = N_("Marked: passages two students share that are neither the release's text, nor a "
             "known correct answer, nor shared by many students. Score: the mean of the code and "
             "the prose similarity, each the share of both students' work that is shared (0 to "
             "1).")


def _points_text(points: dict[str, float] | None) -> str:
    if not points:
        return "-"
    return " ".join(f"{column.replace('blank', '')}:{value:g}" for column, value in points.items())


def report(student_dirs: list[Path], out: Path, results=None) -> list[Pair]:
    """Compare the class, write OUT/similarity.csv and OUT/similarity.html, say what it is."""
    return write_report(read_class(student_dirs), out, results)


def write_report(students: list[Student], out: Path, results=None) -> list[Pair]:
    """The report of a class already read (read_class), with each student's points if given."""
    pairs = compare(students)
    write_csv(pairs, out / CSV_OUT)
    points = {r.student_id: r.points_by_column() for r in results} if results else None
    write_html(pairs, students, out / HTML_OUT, points)
    flagged = sum(p.score >= COURSE.similarity_flag_score for p in pairs)
    print(tr("Similarity: {flagged} of {pairs} pairs flagged, written to {csv} and {page}.",
             flagged=flagged, pairs=len(pairs), csv=out / CSV_OUT, page=out / HTML_OUT))
    print("  " + tr(NOT_A_VERDICT))
    for rank, pair in enumerate(pairs[:5], 1):
        print(f"  {rank}. {pair.a} - {pair.b}: {pair.score} ({' '.join(pair.cells)})")
    return pairs
