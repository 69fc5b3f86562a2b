"""Written questions (autograder/written.py), the parts that need no grading run: points from
sdskit/config.py into the solutions and the release, a question with 0 points, a student's
answer found with or without its labels, and the scores file's rules. The round trip of scores
through grade.py is in tests/test_grading.py (it reuses that file's graded class)."""

import copy
import json

import pytest

from autograder import course, written, written_scores
from autograder.locate import grade_id, source
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, SOLUTIONS

NOTEBOOK = COURSE.notebooks[0]


def _solutions() -> dict:
    return json.loads((SOLUTIONS / NOTEBOOK).read_text(encoding="utf-8"))


def _cell(notebook: dict, gid: str) -> dict:
    return next(c for c in notebook["cells"] if grade_id(c) == gid)


def test_solutions_carry_the_configured_points():
    """solutions/ holds what `make release` writes there from written_points."""
    notebook = _solutions()
    synced = copy.deepcopy(notebook)
    written.apply_points(synced, NOTEBOOK)
    assert synced == notebook, "solutions/ has other written points than sdskit/config.py: " \
                               "run `make release`"
    assert written.release_problems(written.questions()) == [], "run `make release`"
    for gid, points in COURSE.written_points.items():
        meta = _cell(notebook, gid)["metadata"]["nbgrader"]
        assert meta == written.nbgrader_metadata(gid, points)


def test_each_question_has_a_rubric_worth_its_points():
    for gid, points in COURSE.written_points.items():
        if points:
            model = written.model_answer(gid)
            assert f"**Rubric ({written.points_text(points)} points).**" in model, gid
            assert f"**채점 기준 ({written.points_text(points)}점).**" in written.model_answer(gid, "ko")


def test_config_and_cells_must_agree(monkeypatch):
    notebook = _solutions()
    assert written.config_problems(notebook, "here") == []
    monkeypatch.delitem(COURSE.written_points, "think_answers")
    monkeypatch.setitem(COURSE.written_points, "no_such_cell", 2)
    found = written.config_problems(notebook, "here")
    assert any("think_answers has no points in sdskit/config.py" in p for p in found), found
    assert any("names no_such_cell, but here has no written question" in p for p in found), found
    with pytest.raises(SystemExit, match="think_answers has no points"):
        written.apply_points(notebook, "here")
    monkeypatch.setitem(COURSE.written_points, "think_answers", -1)
    monkeypatch.delitem(COURSE.written_points, "no_such_cell")
    assert any("the points -1: use a number, 0 or more" in p
               for p in written.config_problems(notebook, "here"))


def test_graded_and_ungraded_sources(monkeypatch):
    """Graded: a manually graded answer whose region nbgrader clears, its points under the
    prompt. 0 points: a plain markdown cell, model answer cut, "Not graded." under the prompt;
    and grade.py refuses a release that no longer matches the config."""
    notebook = _solutions()
    model = written.model_answer("think_answers")
    graded = copy.deepcopy(notebook)
    course.prepare_source(graded)
    cell = _cell(graded, "think_answers")
    assert written.is_graded_answer(cell) and cell["metadata"]["nbgrader"]["points"] == 3
    assert "*Graded by hand: 3 points.*\n\n### BEGIN SOLUTION" in source(cell)
    korean = copy.deepcopy(notebook)
    course.prepare_source(korean, "ko")
    assert "*직접 채점하는 문항입니다: 3점.*" in source(_cell(korean, "think_answers"))
    monkeypatch.setitem(COURSE.written_points, "think_answers", 0)
    ungraded = copy.deepcopy(notebook)
    course.prepare_source(ungraded)
    cell = _cell(ungraded, "think_answers")
    assert not written.is_graded_answer(cell) and "points" not in cell["metadata"]["nbgrader"]
    assert "*Not graded.*\n\nYOUR ANSWER HERE" in source(cell)
    assert not any(line.strip() and line in source(cell) for line in model.splitlines())
    assert "make release" in written.release_problems(written.questions())[0]


def test_an_answer_is_found_with_or_without_its_labels(tmp_path):
    release = json.loads((NOTEBOOKS / NOTEBOOK).read_text())
    question = written.questions()[0]
    for edition in COURSE.released:  # the prompt of either edition is not part of the answer
        notebook = json.loads((NOTEBOOKS / edition).read_text())
        cell = _cell(notebook, question.grade_id)
        cell["source"] = source(cell).replace(written.STUB, "My answer.\n\nSecond line.")
        path = tmp_path / edition
        path.write_text(json.dumps(notebook))
        others = {q.grade_id: "" for q in written.questions()}  # left as released: no response
        expected = {**others, question.grade_id: "My answer.\n\nSecond line."}
        assert written.find_answers(path) == expected
        del cell["metadata"]["nbgrader"]  # labels lost: found by its prompt
        path.write_text(json.dumps(notebook))
        assert written.find_answers(path) == expected
    (tmp_path / "as_released.ipynb").write_text(json.dumps(release))
    assert written.find_answers(tmp_path / "as_released.ipynb") == {
        q.grade_id: "" for q in written.questions()}
    release["cells"] = [c for c in release["cells"] if grade_id(c) != question.grade_id]
    (tmp_path / "deleted.ipynb").write_text(json.dumps(release))
    assert written.find_answers(tmp_path / "deleted.ipynb") == {
        q.grade_id: None if q.grade_id == question.grade_id else "" for q in written.questions()}


def test_scores_file_rules(tmp_path):
    """Labels and ids both name a student; empty rows are skipped, extra columns ignored, an
    empty points cell is "not graded yet" (a comment may wait with it); the file may start
    with Excel's byte-order mark."""
    path = tmp_path / "scores.csv"
    path.write_text("\ufeffstudent,question,points,comment,grader\n"
                    "anon-007,think_answers,2,\"well, mostly\",TA1\n"
                    ",,,,\n"
                    "bo,think_answers,,look again,TA2\n", encoding="utf-8")
    scores = written_scores.read_scores(path, ["al", "bo"], written.questions(), {"al": "anon-007"})
    assert scores == {("al", "think_answers"): written_scores.Score(2.0, "well, mostly"),
                      ("bo", "think_answers"): written_scores.Score(None, "look again")}
    assert written_scores.effective("an answer", scores[("bo", "think_answers")]) is None
    assert written_scores.effective("", None) == 0.0  # no response: 0, as nbgrader gives
    assert written_scores.holds_scores(path)
    written_scores.write_scores(path, ["al", "bo"], written.questions(), {}, scores, None)
    assert written_scores.read_scores(path, ["al", "bo"], written.questions(), {}) == scores
    labels = written_scores.extend_labels(tmp_path / "labels.csv", ["al", "bo", "cy"])
    assert len(set(labels.values())) == 3
    assert written_scores.extend_labels(tmp_path / "labels.csv", ["al", "bo", "cy", "dee"]).items() \
        >= labels.items(), "labels must stay as they were"
