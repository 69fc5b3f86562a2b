"""The release notebook's first cell, as Colab runs it: it fetches the student repository (git,
else its zip), installs the pinned packages and reports the GPU; if both fetches fail, the student
reads what failed and what to do. Each case runs the cell in a fresh Python that believes it is
on Colab, in an empty folder, with the repository URL pointed at a local stand-in."""

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from scripts import make_student
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS

RUN_AS_COLAB = """
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(compile(open("setup_cell.py").read(), "<setup cell>", "exec"))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_student.build(tmp_path_factory.mktemp("bundle") / "student", zip_path=None)


def _setup_cell() -> str:
    cells = json.loads((NOTEBOOKS / COURSE.notebooks[0]).read_text())["cells"]
    return "".join(next(c["source"] for c in cells
                        if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup"))


def _run_setup(folder, repo: str) -> subprocess.CompletedProcess:
    source = _setup_cell().replace(f'STUDENT_REPO = "{COURSE.student_repo_url}"', f'STUDENT_REPO = "{repo}"')
    assert repo in source, "the setup cell should set STUDENT_REPO from sdskit/config.py"
    (folder / "setup_cell.py").write_text(source)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", RUN_AS_COLAB], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


def test_fetches_the_student_repository_with_git(bundle, tmp_path):
    done = _run_setup(tmp_path, str(bundle))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "sds-assignment" / "sdskit" / "checks.py").is_file()
    assert "GPU" in done.stdout  # report_gpu() ran from the fetched copy


def test_falls_back_to_the_zip_when_git_fails(bundle, tmp_path):
    # Not a git repository, but it serves <url>/archive/refs/heads/<branch>.zip as GitHub does.
    site = tmp_path / "site"
    archive = site / "archive" / "refs" / "heads" / f"{COURSE.student_repo_branch}.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        for path in bundle.rglob("*"):
            if path.is_file() and ".git" not in path.relative_to(bundle).parts:
                handle.write(path, f"sds-assignment-main/{path.relative_to(bundle)}")
    work = tmp_path / "content"
    work.mkdir()
    done = _run_setup(work, site.as_uri())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / "sds-assignment" / "sdskit" / "checks.py").is_file()


def test_says_what_failed_and_what_to_do(tmp_path):
    done = _run_setup(tmp_path, (tmp_path / "nowhere").as_uri())
    assert done.returncode != 0
    assert "Could not fetch the assignment's files" in done.stderr
    assert "What to do" in done.stderr
    assert "CalledProcessError" not in done.stderr


def test_does_nothing_where_the_files_are_already_here(bundle, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "student", ignore=shutil.ignore_patterns(".git"))
    done = _run_setup(copy / "notebooks", (tmp_path / "nowhere").as_uri())
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (copy / "notebooks" / "sds-assignment").exists()
