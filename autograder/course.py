"""An nbgrader course directory that the kit creates and drives: for the release and grading.

nbgrader works on a folder laid out as `source/<assignment>/`, `release/...`, `submitted/
<student>/<assignment>/`, `autograded/...`, `feedback/...`, with a gradebook database. The kit
keeps that folder out of the instructor's way: `make_release` and `autograder/grade.py` create
one, fill it, run nbgrader's command-line apps in it, and read the results back.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from autograder import written
from autograder.locate import grade_id as _grade_id, part7
from sdskit.config import COURSE
from sdskit.paths import ROOT, SOLUTIONS

_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "sds-kit"
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.Execute.timeout = {cell_timeout}
c.Execute.startup_timeout = 120
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds the end of its log."""


def create(root: Path) -> Path:
    """A course folder at `root` (emptied first) holding the solutions as nbgrader's source."""
    root = Path(root).resolve()
    if root.exists():
        shutil.rmtree(root)
    source = root / "source" / COURSE.assignment
    source.mkdir(parents=True)
    for name in COURSE.notebooks:
        notebook = json.loads((SOLUTIONS / name).read_text())
        prepare_source(notebook)
        (source / name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    write_config(root)
    return root


def write_config(root: Path, extra: str = "") -> None:
    """The course folder's nbgrader_config.py, naming the folder where it is now (so a copied
    or moved OUT/ folder still works on its own course), then `extra` settings."""
    root = Path(root).resolve()
    (root / "nbgrader_config.py").write_text(_CONFIG.format(
        root=str(root), db=str(root / "gradebook.db"), cell_timeout=COURSE.cell_timeout_s) + extra)


def kit_env() -> dict:
    """The environment nbgrader and its kernels run in: the kit importable, no model hub."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # nbgrader runs `alembic` and kernels by name: find them beside this Python first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def nbgrader(root: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in the course folder; raise NbgraderError if it fails."""
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=kit_env(),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {done.returncode}):\n{tail}")
    return done


def sync_setup_cell(path: Path) -> bool:
    """Write COURSE.student_repo_url and COURSE.student_repo_branch into a notebook's setup cell.

    Returns True if the notebook changed.
    """
    text = Path(path).read_text()
    new = re.sub(r'STUDENT_REPO = \\"[^"\\]*\\"', f'STUDENT_REPO = \\\\"{COURSE.student_repo_url}\\\\"', text)
    new = re.sub(r'STUDENT_BRANCH = \\"[^"\\]*\\"',
                 f'STUDENT_BRANCH = \\\\"{COURSE.student_repo_branch}\\\\"', new)
    if new != text:
        json.loads(new)  # still a valid notebook
        Path(path).write_text(new)
    return new != text


_ANSWER = re.compile(r"^### BEGIN SOLUTION\n.*?^### END SOLUTION\n?", re.M | re.S)


def strip_model_answers(notebook: dict) -> None:
    """Replace the model answers of ungraded markdown cells (a written question with 0 points)
    by a stub.

    nbgrader accepts a solution region in a markdown cell only if the cell is graded by hand; so
    an ungraded question's answer cell is a plain markdown cell in solutions/, and the region
    between `### BEGIN SOLUTION` and `### END SOLUTION` is cut here, before nbgrader makes the
    release. A graded question's region is nbgrader's to clear (autograder/written.py).
    """
    for cell in notebook["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and _ANSWER.search(text) and not written.is_graded_answer(cell):
            stripped = _ANSWER.sub("YOUR ANSWER HERE\n", text).rstrip("\n")
            cell["source"] = [line + "\n" for line in stripped.split("\n")[:-1]] + [stripped.split("\n")[-1]]


def prepare_source(notebook: dict, language: str = "en") -> None:
    """A solution notebook (in one edition) as nbgrader's source holds it: each written
    question's points (sdskit/config.py) in its metadata and under its prompt, Part 7 left out
    if the config says so (`apply_settings`), and the ungraded questions' model answers cut."""
    written.apply_points(notebook, "the solution notebook")
    apply_settings(notebook)
    written.mark_points(notebook, language)
    strip_model_answers(notebook)


def apply_settings(notebook: dict, config=None) -> None:
    """sdskit/config.py's `experiments` applied to a source notebook, before nbgrader: with
    "off", every cell of Part 7 (grade_id exp...) is left out."""
    config = config or COURSE
    if config.experiments == "off":
        notebook["cells"] = [c for c in notebook["cells"] if not part7(_grade_id(c) or "")]


def generate_release(root: Path) -> Path:
    """Run `nbgrader generate_assignment`; return the folder holding the student notebooks."""
    nbgrader(root, "generate_assignment", COURSE.assignment, "--force")
    return root / "release" / COURSE.assignment
