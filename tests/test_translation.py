"""The editions in other languages (scripts/make_translation.py): every markdown cell is
translated from its current English and keeps its code, formulas, links and images; everything
else in an edition's release is the English release's, so grading treats both alike
(tests/test_grading.py grades a filled Korean notebook)."""

import copy
import json

import pytest

from autograder import collection, locate
from scripts import make_translation
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT

EDITIONS = make_translation.editions()


def _markdown(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "markdown"]


def _without_prose(cell: dict) -> dict:
    """A markdown cell less its text, nbgrader's checksum of the text, and its figures' pixels
    (each edition draws its own; tests/test_figures.py checks which)."""
    nbgrader = {k: v for k, v in cell["metadata"]["nbgrader"].items() if k != "checksum"}
    figures = {name: sorted(data) for name, data in cell.get("attachments", {}).items()}
    return {**cell, "source": "", "metadata": {**cell["metadata"], "nbgrader": nbgrader},
            "attachments": figures}


@pytest.mark.parametrize("notebook,language", EDITIONS)
def test_every_markdown_cell_is_translated_from_its_current_english(notebook, language):
    path = make_translation.translation_file(notebook, language)
    found = make_translation.problems(make_translation.read_notebook(notebook),
                                      make_translation.read_translation(path),
                                      str(path.relative_to(ROOT)), language)
    assert not found, (f"{COURSE.edition(notebook, language)} is not up to date with "
                       f"solutions/{notebook}:\n" + "\n".join(f"- {p}" for p in found))


def test_a_changed_or_untranslated_english_cell_is_named():
    """The test above can fail: change one English cell and add another, and each is named
    with what to do."""
    notebook, language = EDITIONS[0]
    english = make_translation.read_notebook(notebook)
    translation = {gid: make_translation.Translated(gid, make_translation.sha256(text), text)
                   for gid, text in ((make_translation.grade_id(c), make_translation.source(c))
                                     for c in _markdown(english))}
    assert make_translation.problems(english, translation, "the file", language) == []
    changed = _markdown(english)[1]
    changed["source"] = make_translation.source(changed) + "\n\nOne more sentence."
    added = copy.deepcopy(_markdown(english)[0])
    added["metadata"]["nbgrader"]["grade_id"] = "md_added"
    english["cells"].append(added)
    found = make_translation.problems(english, translation, "the file", language)
    changed_id = make_translation.grade_id(changed)
    assert any(p.startswith(f"{changed_id} changed in English") and
               f"--accept {language} {changed_id}" in p for p in found), found
    assert any(p.startswith("md_added has no translation in the file") for p in found), found
    assert len(found) == 2, found


def test_a_lost_formula_code_span_or_image_is_named():
    english = "Take $\\nabla_\\theta$ of `loss`, see ![pipeline](attachment:pipeline.png).\n\n$$x$$"
    assert make_translation.differences(english, "`loss`의 $\\nabla_\\theta$ ![파이프라인]"
                                        "(attachment:pipeline.png)\n\n$$x$$") == []
    found = make_translation.differences(english, "`loss`의 기울기 $$x$$ ![그림](other.png)")
    assert found == ["lacks the formula $\\nabla_\\theta$",
                     "lacks the link or image attachment:pipeline.png",
                     "has the link or image other.png that the English does not"]
    answer = "**Answers**\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert make_translation.differences(answer, "**답**\n### BEGIN SOLUTION\n그래서.") == [
        "lacks the solution marker ### END SOLUTION"]


def test_the_translation_file_reads_back_as_written(tmp_path):
    cells = {"a": make_translation.Translated("a", "0" * 64, "# 제목\n\n본문 `x`"),
             "b": make_translation.Translated("b", "f" * 64, "| 표 |\n|---|\n| $t$ |")}
    path = tmp_path / "t.md"
    make_translation.write_translation(path, "n.ipynb", "ko", cells)
    assert make_translation.read_translation(path) == cells


@pytest.mark.parametrize("notebook,language", EDITIONS)
def test_the_edition_differs_from_the_english_only_in_prose(notebook, language):
    """Code cells, tests, points, grade ids and cell ids are the English release's, and so are
    the names of the figures each cell shows; the setup cell differs only in its language and the
    text of its messages (from the catalogue)."""
    english = json.loads((NOTEBOOKS / notebook).read_text())
    edition = json.loads((NOTEBOOKS / COURSE.edition(notebook, language)).read_text())
    assert edition["metadata"] == english["metadata"]
    assert len(edition["cells"]) == len(english["cells"])
    for theirs, ours in zip(english["cells"], edition["cells"]):
        if theirs["cell_type"] == "markdown":
            assert _without_prose(ours) == _without_prose(theirs), make_translation.grade_id(ours)
        elif make_translation.grade_id(theirs) == "setup":  # its language and its messages
            localized = make_translation.localize_setup(make_translation.source(theirs), language)
            assert make_translation.source(ours) == localized
            assert _without_prose(ours) == _without_prose(theirs)
        else:
            assert ours == theirs, make_translation.grade_id(ours)


def test_no_release_holds_model_answers():
    """The "think about it" answers are cut from every edition, as from the English."""
    stubbed = {}
    for name in COURSE.released:
        cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
        leaked = [make_translation.grade_id(c) for c in cells
                  if "BEGIN SOLUTION" in make_translation.source(c)
                  or "END SOLUTION" in make_translation.source(c)]
        assert not leaked, f"notebooks/{name} holds model answers in {leaked}"
        stubbed[name] = {make_translation.grade_id(c) for c in cells
                         if "YOUR ANSWER HERE" in make_translation.source(c)}
    assert len(set(map(frozenset, stubbed.values()))) == 1, stubbed


@pytest.mark.parametrize("name", ["sds_assignment_ko.ipynb", "Copy of sds_assignment_ko.ipynb",
                                  "sds_assignment_ko.ipynb의 사본.ipynb",
                                  "사본 - sds_assignment_ko (1).ipynb"])
def test_a_copy_of_the_korean_notebook_is_known_by_its_name(name):
    assert locate._normal_name(name) in locate.NAMES


def test_a_korean_notebook_in_an_lms_export_is_its_students():
    rules = collection.compile_rules(None)
    korean = COURSE.edition("sds_assignment.ipynb", "ko")
    assert collection.read_name(f"kimmin_1010_5010_{korean}", rules)[:2] == ("1010", korean)
    student, _, reason = collection.read_name(korean, rules)
    assert student is None and "named like the assignment" in reason
