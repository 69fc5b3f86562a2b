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
4. The Korean edition speaks Korean: run as released and filled, its outputs hold no English
   kit sentence (tests/english.py says what counts) and no glyph fell back to a box.

Both runs are the Korean edition's: its code cells are the English edition's
(tests/test_translation.py), so they prove the English assertions too, and a last cell switches
the same kernel to English and shows the check-my-work table, a test's message (and, filled,
the final cell's summary) again, for the English wording. (The English release itself runs as
released in tests/test_notebooks.py, under `nbgrader validate --invert`.)
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

from autograder import grade, leaks, locate, mistakes, submissions
from scripts import make_student
from sdskit.config import COURSE
from sdskit.i18n import tr_in
from sdskit.paths import HIDDEN_REFERENCES, ROOT, SOLUTIONS
from tests import english

NOTEBOOK = submissions.NOTEBOOK
KOREAN = COURSE.edition(NOTEBOOK, "ko")
# Shown again in English after a Korean run, in the same kernel (see the docstring).
IN_ENGLISH = """from sdskit import i18n
i18n.set_language("en")
print(checks.blank6_sds_gradient(StableDiffusion, "visible").message)
checks.check_all(StableDiffusion)"""
IN_ENGLISH_FILLED = IN_ENGLISH + "\nshow(result)"


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
    "a known mistake, in a comment": ("answer or hidden test", lambda b: _append(
        b / "sdskit" / "tryit.py", f"\n# {mistakes.WRONG_DEVICE.code}\n")),
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
    """The environment of a student's machine: no PYTHONPATH back to the repository, every
    warning shown (matplotlib's about a glyph missing from the font among them)."""
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


def _cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {},
            "outputs": [], "source": source}


def _execute(folder: Path, name: str = NOTEBOOK, after: str | None = None) -> dict:
    """Run folder/notebooks/<name> as a student's Jupyter would (cwd = its folder, no path
    back to the repository), errors allowed, then the code `after` in a cell of its own;
    return the executed notebook (with that cell last)."""
    notebooks = folder / "notebooks"
    notebook = json.loads((notebooks / name).read_text(encoding="utf-8"))
    if after is not None:
        notebook["cells"].append(_cell(after, "after"))
    notebook["cells"].append(_cell("import sdskit\nprint('SDSKIT_FROM', sdskit.__file__)",
                                   "where-from"))
    (notebooks / "run.ipynb").write_text(json.dumps(notebook, ensure_ascii=False),
                                         encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                           "--execute", "--allow-errors", "--ExecutePreprocessor.timeout=600",
                           "--output", "executed.ipynb", "run.ipynb"],
                          cwd=notebooks, env=_student_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((notebooks / "executed.ipynb").read_text(encoding="utf-8"))
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


def _said(text: str, message: str, language: str, **values) -> bool:
    """Whether `text` holds the catalogue's `message` in `language`, with these values in its
    fields (any text in the others)."""
    import re

    parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", tr_in(language, message))
    pattern = "".join(re.escape(part) if index % 2 == 0 else
                      re.escape(str(values[part])) if part in values else ".*?"
                      for index, part in enumerate(parts))
    return re.search(pattern, text, re.S) is not None


@pytest.fixture(scope="module")
def filled_run(bundle, tmp_path_factory):
    """The Korean release filled with the solutions, run top to bottom, then IN_ENGLISH."""
    folder = tmp_path_factory.mktemp("filled") / "student"
    shutil.copytree(bundle, folder, ignore=shutil.ignore_patterns(".git"))
    release = folder / "notebooks" / KOREAN
    filled = submissions.fill(submissions.solution_answers(), release=release)
    release.write_text(json.dumps(filled, indent=1, ensure_ascii=False), encoding="utf-8")
    executed = _execute(folder, KOREAN, after=IN_ENGLISH_FILLED)
    return folder, executed, executed["cells"].pop()


def _check_filled_run(executed: dict, language: str) -> None:
    failed = {locate.grade_id(c): _errors(c) for c in executed["cells"] if _errors(c)}
    assert not failed, f"cells that raised: {failed}"
    by_id = {locate.grade_id(c): c for c in executed["cells"]}
    for blank in submissions.BLANKS:
        assert _said(_text(by_id[f"blank{blank}_visible"]), "{blank}: all checks passed.",
                     language), blank
    assert _said(_text(by_id["final_cell"]), "{steps} steps in {seconds} s; files in {folder}/: "
                 "{files}", language), "the final cell's CPU fallback did not run"
    for unit in _experiments():  # Part 7: each function's test, then its experiment on the CPU
        assert _said(_text(by_id[f"{unit}_visible"]), "{blank}: all checks passed.", language)
        assert _said(_text(by_id[f"{unit}_run"]), "seconds per run: {seconds}", language), \
            f"{unit}'s experiment did not run"
    blanks = len(submissions.BLANKS)
    assert tr_in(language, "{done} of {total} blanks pass their visible tests. The hidden tests "
                 "run when your work is graded.", done=blanks, total=blanks) in _text(
        by_id["check_all"])


def test_filled_notebook_runs_top_to_bottom_on_its_own(filled_run):
    _, executed, in_english = filled_run
    _check_filled_run(executed, "ko")
    # The same kernel, in English: what the English edition prints for the same run.
    assert not _errors(in_english), _errors(in_english)
    shown = _text(in_english)
    assert "Blank 6 (the SDS gradient): all checks passed." in shown
    assert _said(shown, "{steps} steps in {seconds} s; files in {folder}/: {files}", "en")
    assert f"{len(submissions.BLANKS)} of {len(submissions.BLANKS)} blanks pass" in shown
    assert "blank  result   first message" in shown


def test_filled_notebook_prints_no_library_warnings(filled_run):
    """Only the kit and the student speak in the outputs: nothing on stderr (where the libraries'
    warnings and log messages go), no warning anywhere."""
    _, executed, _ = filled_run
    noise = {}
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) if output["output_type"] == "stream" else ""
            if (output.get("name") == "stderr" and text.strip()) or re.search(r"\w+Warning\b", text):
                noise.setdefault(locate.grade_id(cell) or cell.get("id"), []).append(text[:400])
    assert not noise, f"library output in the notebook: {noise}"


def test_grader_gives_the_filled_notebook_full_marks(filled_run, tmp_path):
    """The Korean notebook, as the student ran it: 14/14, and its messages are Korean."""
    folder, executed, _ = filled_run
    student = tmp_path / "class" / "student"
    student.mkdir(parents=True)
    (student / KOREAN).write_text(json.dumps(executed, ensure_ascii=False), encoding="utf-8")
    box = [None]
    try:
        result = grade.grade_student(box, student, grade.max_points(), locate.release_cells(),
                                     tmp_path)
    finally:
        if box[0] is not None:
            box[0].close()
    assert result.total + result.bonus == 2.0 * len(submissions.graded_units()), (
        result.messages, result.flags)
    assert result.language == "ko" and set(result.messages_shown.values()) == {tr_in("ko", "passed")}


def _glyph_boxes(executed: dict) -> list[str]:
    """matplotlib's words for a letter drawn as a box (a warning, or mathtext's log line)."""
    return [line for cell in executed["cells"] for output in cell.get("outputs", [])
            if output["output_type"] == "stream" for line in "".join(output["text"]).splitlines()
            if "missing from font" in line or "does not have a glyph" in line]


def test_the_filled_korean_notebook_prints_no_english(filled_run):
    _, executed, _ = filled_run
    assert not english.english_in_outputs(executed, "ko"), english.english_in_outputs(executed)
    assert not _glyph_boxes(executed)


def test_released_notebook_fails_only_its_tests(bundle, tmp_path):
    """As released: every test cell fails with its student message (a hidden test cell runs
    the visible cases first); the only other errors are the stubs' own NotImplementedError
    (a try-it cell calling an unfilled blank). The Korean edition says it all in Korean, and
    the English wording of the same state follows."""
    language = "ko"
    folder = shutil.copytree(bundle, tmp_path / "student", ignore=shutil.ignore_patterns(".git"))
    executed = _execute(folder, KOREAN, after=IN_ENGLISH)
    in_english = executed["cells"].pop()
    unexpected, visible_failed = {}, set()
    for cell in executed["cells"]:
        gid = locate.grade_id(cell)
        for error, value in _errors(cell):
            if gid and gid.endswith(("_visible", "_hidden")) and error == "AssertionError" \
                    and _said(value, "{blank}: not yet right.", language):
                visible_failed.add(gid)
            elif error != "NotImplementedError":
                unexpected[gid] = (error, value[:300])
    assert not unexpected, f"cells that broke for another reason than an unfilled blank: {unexpected}"
    assert visible_failed == {f"blank{b}_{cases}" for b in submissions.BLANKS
                              for cases in ("visible", "hidden")} | {
        f"{unit}_{cases}" for unit in _experiments() for cases in ("visible", "hidden")}
    assert not english.english_in_outputs(executed, language), english.english_in_outputs(
        executed, language)
    assert not _glyph_boxes(executed)
    shown = _text(in_english)
    assert "Blank 6 (the SDS gradient): not yet right." in shown
    assert "sds_gradient still raises NotImplementedError" in shown
    assert f"0 of {len(submissions.BLANKS)} blanks pass their visible tests" in shown
