"""nbgrader agrees with the notebooks: the solutions pass `nbgrader validate`; the release fails
every test (`validate --invert`). The full top-to-bottom run, heavy cells included, is in
tests/test_student_bundle.py: the release filled with the solutions' code, run from a copy of
the student bundle (the same code as solutions/, minus the hidden tests)."""

import subprocess
import sys

import pytest

from sdskit.config import COURSE
from autograder.course import kit_env
from sdskit.paths import NOTEBOOKS, ROOT, SOLUTIONS


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
