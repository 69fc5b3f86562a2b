"""The Gradescope autograder (autograder/gradescope.py), emulated: `make gradescope`'s zip is
unpacked into temporary folders laid out as Gradescope lays out /autograder (source/,
submission/, results/, run_autograder), and graded with GRADESCOPE_ROOT pointing there
(setup.sh is not run: this test's own Python stands in for the environment it makes).

The five notebooks that need the grading worker (one of them the Korean edition, whose results
are in Korean) are graded by one process with one warm worker
(`python -m autograder.gradescope grade ROOT ...`, what run_autograder runs, given several
roots); run_autograder itself runs on the submissions that need no worker and on a broken
interpreter."""

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import corpus, gradescope, submissions
from sdskit.config import COURSE
from sdskit.i18n import tr_in
from sdskit.paths import NOTEBOOKS, ROOT

NOTEBOOK = submissions.NOTEBOOK
KOREAN = COURSE.edition(NOTEBOOK, "ko")


def _release_points() -> dict[str, float]:
    """grade_id -> points of every test cell of the release notebook (the automatic points;
    the written answers are graded by hand)."""
    cells = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
            for c in cells if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("grade")}


def _layout(base: Path, name: str, zip_path: Path, files: dict[str, bytes]) -> Path:
    """/autograder as Gradescope makes it: source/ (the zip), run_autograder, submission/."""
    root = base / name
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    for filename, data in files.items():
        (root / "submission" / filename).write_bytes(data)
    return root


def _environment(root: Path, python: str = sys.executable) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GRADESCOPE_ROOT": str(root),
            "GRADESCOPE_PYTHON": python}


def _run_autograder(root: Path, python: str = sys.executable) -> dict:
    done = subprocess.run(["./run_autograder"], cwd=root, env=_environment(root, python),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    base = tmp_path_factory.mktemp("gradescope")
    zip_path = gradescope.build(base / "build")
    examples, messy = base / "examples", base / "messy"
    expected = submissions.example_class(examples)
    messy_expected = corpus.write_corpus(messy)
    graded_by_worker = {
        "complete": {"Copy of sds_assignment.ipynb":
                     (examples / "complete" / NOTEBOOK).read_bytes()},
        "partly_wrong": {"sds_assignment (1).ipynb":
                         (examples / "partly_wrong" / NOTEBOOK).read_bytes()},
        "blank": {NOTEBOOK: (examples / "blank" / NOTEBOOK).read_bytes()},
        "colab_saved": {NOTEBOOK: (messy / "colab_saved" / NOTEBOOK).read_bytes()},
        # the Korean edition, partly wrong, saved under the name Korean Colab gives a copy
        "korean": {f"{KOREAN}의 사본.ipynb": json.dumps(submissions.fill(
            {**submissions.solution_answers(), 5: submissions.MISTAKES[5],
             7: submissions.MISTAKES[7], 3: None, "exp2": submissions.EXPERIMENT_MISTAKES["exp2"]},
            NOTEBOOKS / KOREAN),
            ensure_ascii=False).encode("utf-8")},
    }
    expected["colab_saved"] = messy_expected["colab_saved"][0]
    expected["korean"] = expected["partly_wrong"]
    roots = {name: _layout(base, name, zip_path, files)
             for name, files in graded_by_worker.items()}
    some = roots["complete"]
    done = subprocess.run([sys.executable, "-m", "autograder.gradescope", "grade",
                           *map(str, roots.values())],
                          cwd=some / "source", capture_output=True, text=True, timeout=900,
                          env={**_environment(some), "PYTHONPATH": str(some / "source"),
                               "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {name: json.loads((root / "results" / "results.json").read_text())
               for name, root in roots.items()}
    not_a_notebook = _layout(base, "not_a_notebook", zip_path,
                             {NOTEBOOK: (messy / "not_json" / NOTEBOOK).read_bytes()})
    results["not_a_notebook"] = _run_autograder(not_a_notebook)
    expected["not_a_notebook"] = messy_expected["not_json"][0]
    nothing = _layout(base, "no_notebook", zip_path, {"answers.pdf": b"%PDF-1.4 not a notebook"})
    results["no_notebook"] = _run_autograder(nothing)
    expected["no_notebook"] = {b: 0.0 for b in submissions.graded_units()}
    # Valid JSON, but a cell's source is a number: the notebook must still get its result.
    odd = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
           "cells": [{"cell_type": "code", "metadata": {}, "source": 5, "outputs": []}]}
    malformed = _layout(base, "malformed", zip_path, {NOTEBOOK: json.dumps(odd).encode()})
    results["malformed"] = _run_autograder(malformed)
    expected["malformed"] = {b: 0.0 for b in submissions.graded_units()}
    broken = _layout(base, "grader_broken", zip_path, {NOTEBOOK: b"{}"})
    results["grader_broken"] = _run_autograder(broken, python="/bin/false")
    return {"results": results, "expected": expected, "zip": zip_path}


STUDENTS = ["complete", "partly_wrong", "blank", "colab_saved", "not_a_notebook", "no_notebook",
            "malformed", "korean"]


@pytest.mark.parametrize("student", STUDENTS)
def test_points_per_blank(emulated, student):
    """The same points per blank as grade.py owes these notebooks (autograder/submissions.py,
    autograder/corpus.py), under any file name."""
    results = emulated["results"][student]
    got = {}
    for test in results["tests"]:
        number = int(test["number"].split(".")[0])  # experiments come after the seven blanks
        seven = len(submissions.BLANKS)
        blank = number if number <= seven else f"exp{number - seven}"
        got[blank] = got.get(blank, 0.0) + test["score"]
    assert got == emulated["expected"][student], results["output"]
    assert results["score"] == sum(got.values())


@pytest.mark.parametrize("student", STUDENTS)
def test_results_follow_gradescopes_format(emulated, student):
    results = emulated["results"][student]
    points = _release_points()
    assert [t["number"] for t in results["tests"]] == sorted(
        (t["number"] for t in results["tests"]), key=lambda n: tuple(map(int, n.split("."))))
    assert len(results["tests"]) == len(points)
    assert sum(t["max_score"] for t in results["tests"]) == sum(points.values())
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert 0 <= test["score"] <= test["max_score"]
        hidden = test["number"].endswith(".2")  # each blank's second test (named in Korean too)
        assert test["visibility"] == ("after_published" if hidden else "visible"), test
        assert test["output"], f"{test['name']} has no message for the student"
        assert "Traceback" not in test["output"]
    assert results["stdout_visibility"] == "hidden"
    assert (KOREAN if student == "korean" else NOTEBOOK) in results["output"]


def test_written_answers_are_left_to_the_staff(emulated):
    """results.json holds the automatic points only: no test for a written question, and the
    output says those are graded by hand in the same assignment."""
    results = emulated["results"]["complete"]
    assert not any("think" in t["name"].lower() for t in results["tests"])
    assert results["score"] == sum(_release_points().values())
    from autograder import written

    asked = written.questions()
    titles = ", ".join(q.title() for q in asked)  # think about it, and Part 7's three
    points = written.points_text(sum(q.points for q in asked))
    assert f"Your written answers ({titles}: {points} points) are graded by hand" in \
        results["output"]


def test_failures_are_explained_to_the_student(emulated):
    results = emulated["results"]
    partly = {t["name"]: t for t in results["partly_wrong"]["tests"]}
    assert partly["Blank 5: visible test"]["score"] == 0
    assert "never returns high" in partly["Blank 5: visible test"]["output"]
    assert "notebook renamed" in results["partly_wrong"]["output"]
    assert "notebook renamed" in results["complete"]["output"]
    for student in ("not_a_notebook", "no_notebook"):
        assert "File > Download" in results[student]["output"], results[student]["output"]
    assert "not a readable notebook" in results["not_a_notebook"]["output"]


def test_a_broken_grader_still_leaves_a_result(emulated):
    """run_autograder writes a zero-point result that says the grader failed, not the student,
    in every language (which edition it was is not known then)."""
    results = emulated["results"]["grader_broken"]
    assert results["score"] == 0
    assert "not in your notebook" in results["output"]
    assert tr_in("ko", gradescope.GRADER_FAILED) in results["output"]


def test_a_korean_submission_reads_korean(emulated):
    """The Korean edition's results: the same points, and every name, message, flag and the
    summary in Korean (the staff's extra_data stays English)."""
    from tests import english

    results = emulated["results"]["korean"]
    tests = {t["number"]: t for t in results["tests"]}
    assert tests["5.1"]["name"] == tr_in("ko", "Blank {number}: visible test", number=5)
    assert tests["5.2"]["name"] == tr_in("ko", "Blank {number}: hidden test", number=5)
    assert tests["5.2"]["visibility"] == "after_published"
    hint = "Hint: torch.randint(low, high, ...) never returns high itself."
    assert tr_in("ko", hint) in tests["5.1"]["output"] and hint not in tests["5.1"]["output"]
    assert KOREAN in results["output"]
    assert tr_in("ko", "Notes on your submission:") in results["output"]
    assert "notebook renamed" in " ".join(results["extra_data"]["flags"])
    fragments = english.catalogue_fragments("ko")
    for text in [results["output"]] + [t["output"] for t in results["tests"]]:
        assert not english.english_runs(text), text
        assert not [piece for piece in fragments if piece in text], text


def test_zip_layout(emulated):
    """setup.sh and run_autograder at the root, executable; the kit, the tiny model and all
    references inside; the solution notebook and the generated answers outside."""
    with zipfile.ZipFile(emulated["zip"]) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert script in names and modes[script] & stat.S_IXUSR
    for needed in ("assets/references.pt", "autograder/hidden_references.pt",
                   f"notebooks/{NOTEBOOK}", "assets/tiny-sd/model_index.json",
                   "sdskit/checks.py", "autograder/sandbox.py", "requirements.txt"):
        assert needed in names
    assert not any(name.startswith("solutions/") for name in names)
    assert not names & set(gradescope.LEFT_OUT)
    assert gradescope.build(emulated["zip"].parent / "again").read_bytes() == \
        emulated["zip"].read_bytes(), "the same kit should make the same zip"


def test_setup_script_is_valid_bash(emulated):
    with zipfile.ZipFile(emulated["zip"]) as archive:
        for script in ("setup.sh", "run_autograder"):
            done = subprocess.run(["bash", "-n"], input=archive.read(script), capture_output=True)
            assert done.returncode == 0, (script, done.stderr)
