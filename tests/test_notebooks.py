"""The notebooks run, and nbgrader agrees with them: the solutions run top to bottom on the CPU
offline and pass `nbgrader validate`; the release fails every test (`validate --invert`)."""

import os
import subprocess
import sys

import pytest

from sdskit.config import COURSE
from autograder.course import kit_env
from sdskit.paths import NOTEBOOKS, ROOT, SOLUTIONS


@pytest.mark.parametrize("name", COURSE.notebooks)
def test_solution_runs_top_to_bottom_offline(tmp_path, name):
    env = {k: v for k, v in kit_env().items() if k != "NBGRADER_EXECUTION"}
    before = sorted(SOLUTIONS.rglob("*"))
    done = subprocess.run([sys.executable, "scripts/run_notebooks.py", str(SOLUTIONS),
                           "--out", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / name).exists()
    assert sorted(SOLUTIONS.rglob("*")) == before, "running a notebook wrote into solutions/"


def _validate(*args):
    return subprocess.run([sys.executable, "-m", "nbgrader", "validate", *args], cwd=ROOT,
                          env=kit_env(), capture_output=True, text=True)


@pytest.mark.parametrize("name", COURSE.notebooks)
def test_nbgrader_validate_passes_the_solution(name):
    done = _validate(str(SOLUTIONS / name))
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("name", COURSE.notebooks)
def test_nbgrader_validate_invert_passes_the_release(name):
    done = _validate("--invert", str(NOTEBOOKS / name))
    assert "Success! The notebook does not pass any tests." in done.stdout, done.stdout[-3000:]
