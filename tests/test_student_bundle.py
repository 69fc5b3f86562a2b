"""The student bundle (`make student`) gives nothing away and works on its own.

1. It holds exactly the student's files, as a git repository with one commit, and the zip
   holds the same files.
2. The leak search (autograder/leaks.py) finds nothing in it, and finds each kind of leak
   injected into a copy of it.
3. Copied to an empty folder with no path back to the repository, offline on the CPU: the
   release notebook filled with the solutions runs top to bottom (every visible test passes,
   the final cell's CPU fallback runs); as released, each visible test fails with its student
   message and nothing else breaks; and grade.py's harness grades the filled notebook 14/14
   with the hidden tests.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import grade, leaks, locate, submissions
from scripts import make_student
from sdskit.config import COURSE
from sdskit.paths import HIDDEN_REFERENCES, ROOT, SOLUTIONS

NOTEBOOK = submissions.NOTEBOOK


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    make_student.build(folder / "student", folder / make_student.ZIP_NAME)
    return folder / "student"


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def test_bundle_holds_the_student_files_in_one_commit(bundle):
    expected = set(make_student.student_files()) | {"README.md", ".gitignore"}
    assert _files(bundle) == expected
    assert not {"solutions", "autograder", "scripts", "tests"} & {p.split("/")[0] for p in expected}
    git = lambda *args: subprocess.run(["git", *args], cwd=bundle, capture_output=True,  # noqa: E731
                                       text=True, check=True).stdout
    assert git("rev-list", "--count", "HEAD").strip() == "1"
    assert git("status", "--porcelain") == ""
    with zipfile.ZipFile(bundle.parent / make_student.ZIP_NAME) as archive:
        assert {n.removeprefix("sds-assignment/") for n in archive.namelist()} == expected
    readme = (bundle / "README.md").read_text()
    for name in COURSE.released:  # each edition too
        assert make_student.colab_url(name) in readme


def test_nothing_secret_is_in_the_bundle(bundle):
    assert leaks.find_leaks(bundle) == []


def test_release_prose_shows_no_code_answer():
    """The leak search trusts what the release shows; so the release itself must not spell out
    an answer in its prose or code (blank 1's title, `super().__init__()`, is its answer)."""
    assert leaks.answers_shown_by_release() == []


def _hidden():
    return torch.load(HIDDEN_REFERENCES, weights_only=True)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _answer(blank: int) -> str:
    return submissions.solution_answers()[blank]


def _inject_into_markdown(folder: Path, text: str) -> None:
    path = folder / "notebooks" / NOTEBOOK
    notebook = json.loads(path.read_text())
    markdown = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
    markdown["source"] = "".join(markdown["source"]) + f"\nA note: just write `{text}` here.\n"
    path.write_text(json.dumps(notebook, indent=1))


def _hidden_test_source() -> str:
    cells = json.loads((SOLUTIONS / NOTEBOOK).read_text())["cells"]
    return next(locate.source(c) for c in cells if locate.grade_id(c) == "blank5_hidden")


def _model_answer_line() -> str:
    """A line of the Korean edition's model answer to a "think about it" question."""
    text = next(SOLUTIONS.rglob("*.md")).read_text(encoding="utf-8")
    region = text.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    return max(region.splitlines(), key=len)


def _rubric_line(korean: bool) -> str:
    """A line of a written question's rubric (the English or the Korean edition's)."""
    if korean:
        text = next(SOLUTIONS.rglob("*.md")).read_text(encoding="utf-8")
    else:
        cells = json.loads((SOLUTIONS / NOTEBOOK).read_text())["cells"]
        text = next(locate.source(c) for c in cells if locate.grade_id(c) == "think_answers")
    marker = "**채점 기준" if korean else "**Rubric"
    rubric = text.split(marker, 1)[1].split("### END SOLUTION", 1)[0]
    return [line for line in rubric.splitlines() if line.startswith("- ")][1]


INJECTIONS = {
    "a translated model answer": ("answer or hidden test", lambda b: _inject_into_markdown(
        b, _model_answer_line())),
    "a rubric line": ("answer or hidden test", lambda b: _inject_into_markdown(
        b, _rubric_line(korean=False))),
    "a translated rubric line": ("answer or hidden test", lambda b: _inject_into_markdown(
        b, _rubric_line(korean=True))),
    "answer line in a comment": ("answer or hidden test", lambda b: _append(
        b / "sdskit" / "figures.py", f"\n# the answer to blank 5: {_answer(5)}\n")),
    "re-spaced answer in a message": ("answer or hidden test", lambda b: _append(
        b / "sdskit" / "checks.py", f"\nHINT = {'  '.join(_answer(2).splitlines()[0].split())!r}\n")),
    "answer expression in a notebook's prose": ("answer or hidden test", lambda b: _inject_into_markdown(
        b, _answer(6).split("=", 1)[1].strip())),
    "a correct alternative": ("answer or hidden test", lambda b: _append(
        b / "README.md", f"\n    {submissions.ALTERNATIVES[7]}\n")),
    "a hidden test cell": ("answer or hidden test", lambda b: _append(
        b / "README.md", "\n" + _hidden_test_source() + "\n")),
    "a hidden tensor, renamed": ("hidden data", lambda b: torch.save(
        {"x": _hidden()["blank3"]["hidden"]["pred_rgb"]}, b / "assets" / "extra.pt")),
    "a hidden tensor in another format": ("hidden data", lambda b: np.save(
        b / "assets" / "grad.npy", _hidden()["blank6"]["hidden"]["grad"].numpy())),
    "hidden cases without tensors": ("hidden data", lambda b: torch.save(
        {"cases": _hidden()["blank5"]["hidden"]}, b / "assets" / "cases.pt")),
    "the hidden references, renamed": ("instructor file", lambda b: shutil.copy(
        HIDDEN_REFERENCES, b / "assets" / "more_references.pt")),
    "the solutions folder": ("instructor file", lambda b: shutil.copytree(
        SOLUTIONS, b / "solutions")),
    "the corpus generator, renamed": ("instructor file", lambda b: shutil.copy(
        ROOT / "autograder" / "corpus.py", b / "sdskit" / "helpers.py")),
}


@pytest.mark.parametrize("kind", sorted(INJECTIONS))
def test_each_kind_of_leak_is_found(bundle, tmp_path, kind):
    copy = tmp_path / "student"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns(".git"))
    prefix, inject = INJECTIONS[kind]
    inject(copy)
    found = leaks.find_leaks(copy)
    assert any(line.startswith(prefix) for line in found), f"{kind}: found only {found}"


def _student_env() -> dict:
    """The environment of a student's machine: no PYTHONPATH back to the repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NBGRADER_EXECUTION") and not k.startswith("SDSKIT_")}
    env.pop("PYTHONWARNINGS", None)  # a student sees every warning: so do the tests
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def test_hidden_checks_in_a_student_copy_say_so_in_one_line(bundle, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "student")
    code = ("import torch.nn as nn\nfrom sdskit import checks, experiment_checks\n"
            "for check in [*checks.CHECKS.values(), *experiment_checks.CHECKS.values()]:\n"
            "    report = check(nn.Module, 'hidden')\n"
            "    assert not report.passed\n"
            "    print(report)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, env=_student_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(submissions.REGIONS)
    assert all("run when your work is graded" in line for line in lines), lines


def _execute(folder: Path) -> dict:
    """Run folder/notebooks/NOTEBOOK as a student's Jupyter would (cwd = its folder, no path
    back to the repository), errors allowed; return the executed notebook."""
    notebooks = folder / "notebooks"
    notebook = json.loads((notebooks / NOTEBOOK).read_text())
    notebook["cells"].append({"cell_type": "code", "execution_count": None, "id": "where-from",
                              "metadata": {}, "outputs": [],
                              "source": "import sdskit\nprint('SDSKIT_FROM', sdskit.__file__)"})
    (notebooks / "run.ipynb").write_text(json.dumps(notebook))
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                           "--execute", "--allow-errors", "--ExecutePreprocessor.timeout=600",
                           "--output", "executed.ipynb", "run.ipynb"],
                          cwd=notebooks, env=_student_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((notebooks / "executed.ipynb").read_text())
    where = _text(executed["cells"][-1])
    assert str(folder.resolve()) in where, f"the notebook imported sdskit from elsewhere: {where}"
    executed["cells"].pop()
    return executed


def _experiments() -> list[str]:
    """Part 7's experiments the release holds ("exp1" ...; none with experiments = "off")."""
    return [u for u in submissions.graded_units() if isinstance(u, str)]


def _errors(cell: dict) -> list[tuple[str, str]]:
    return [(o["ename"], o["evalue"]) for o in cell.get("outputs", []) if o["output_type"] == "error"]


def _text(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


@pytest.fixture(scope="module")
def filled_run(bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("filled") / "student"
    shutil.copytree(bundle, folder, ignore=shutil.ignore_patterns(".git"))
    release = folder / "notebooks" / NOTEBOOK
    filled = submissions.fill(submissions.solution_answers(), release=release)
    release.write_text(json.dumps(filled, indent=1))
    return folder, _execute(folder)


def test_filled_notebook_runs_top_to_bottom_on_its_own(filled_run):
    _, executed = filled_run
    failed = {locate.grade_id(c): _errors(c) for c in executed["cells"] if _errors(c)}
    assert not failed, f"cells that raised: {failed}"
    by_id = {locate.grade_id(c): c for c in executed["cells"]}
    for blank in submissions.BLANKS:
        assert "all checks passed" in _text(by_id[f"blank{blank}_visible"])
    assert "steps in" in _text(by_id["final_cell"]), "the final cell's CPU fallback did not run"
    for unit in _experiments():  # Part 7: each function's test, then its experiment on the CPU
        assert "all checks passed" in _text(by_id[f"{unit}_visible"])
        assert "seconds per run" in _text(by_id[f"{unit}_run"]), f"{unit}'s experiment did not run"
    assert f"{len(submissions.BLANKS)} of {len(submissions.BLANKS)} blanks pass" in _text(by_id["check_all"])


def test_filled_notebook_prints_no_library_warnings(filled_run):
    """Only the kit and the student speak in the outputs: nothing on stderr (where the libraries'
    warnings and log messages go), no warning anywhere."""
    _, executed = filled_run
    noise = {}
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) if output["output_type"] == "stream" else ""
            if (output.get("name") == "stderr" and text.strip()) or re.search(r"\w+Warning\b", text):
                noise.setdefault(locate.grade_id(cell) or cell.get("id"), []).append(text[:400])
    assert not noise, f"library output in the notebook: {noise}"


def test_grader_gives_the_filled_notebook_full_marks(filled_run, tmp_path):
    folder, executed = filled_run
    student = tmp_path / "class" / "student"
    student.mkdir(parents=True)
    (student / NOTEBOOK).write_text(json.dumps(executed))
    box = [None]
    try:
        result = grade.grade_student(box, student, grade.max_points(), locate.release_cells(),
                                     tmp_path)
    finally:
        if box[0] is not None:
            box[0].close()
    assert result.total + result.bonus == 2.0 * len(submissions.graded_units()), (
        result.messages, result.flags)


def test_released_notebook_fails_only_its_tests(bundle, tmp_path):
    """As released: every test cell fails with its student message (a hidden test cell runs
    the visible cases first); the only other errors are the stubs' own NotImplementedError
    (a try-it cell calling an unfilled blank)."""
    folder = shutil.copytree(bundle, tmp_path / "student", ignore=shutil.ignore_patterns(".git"))
    executed = _execute(folder)
    unexpected, visible_failed = {}, set()
    for cell in executed["cells"]:
        gid = locate.grade_id(cell)
        for name, value in _errors(cell):
            if gid and gid.endswith(("_visible", "_hidden")) and name == "AssertionError" \
                    and "not yet right" in value:
                visible_failed.add(gid)
            elif name != "NotImplementedError":
                unexpected[gid] = (name, value[:300])
    assert not unexpected, f"cells that broke for another reason than an unfilled blank: {unexpected}"
    assert visible_failed == {f"blank{b}_{cases}" for b in submissions.BLANKS
                              for cases in ("visible", "hidden")} | {
        f"{unit}_{cases}" for unit in _experiments() for cases in ("visible", "hidden")}
