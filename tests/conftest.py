"""Shared fixtures. Tests run offline on the CPU with the tiny model."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def solution_class():
    from autograder.notebook_code import solution_class

    return solution_class()
