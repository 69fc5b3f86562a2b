"""Which edition a submission is (autograder/edition.py), so that its feedback speaks the
student's language: the setup cell first, then the markdown's script, then the file name."""

import copy
import json

import pytest

from autograder import edition, locate, submissions
from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS

KOREAN = COURSE.edition(submissions.NOTEBOOK, "ko")


def _release(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def _without(notebook: dict, *kinds: str, grade_ids=("setup",)) -> dict:
    """A copy without the setup cell (as an editor may lose it), and without cells of `kinds`."""
    out = copy.deepcopy(notebook)
    out["cells"] = [c for c in out["cells"]
                    if locate.grade_id(c) not in grade_ids and c["cell_type"] not in kinds]
    return out


def _korean_answers(notebook: dict) -> dict:
    """The English edition with the think-about-it answers written in Korean."""
    out = copy.deepcopy(notebook)
    for cell in out["cells"]:
        if "YOUR ANSWER HERE" in locate.source(cell):
            cell["source"] = "1. 야코비안을 버리면 U-Net을 거치는 역전파가 필요 없습니다.\n" * 3
    return out


ENGLISH, EDITION = _release(submissions.NOTEBOOK), _release(KOREAN)
CASES = {
    # name: (file name, notebook or raw bytes, language, how it is told)
    "the Korean release": (KOREAN, EDITION, "ko", "setup cell"),
    "the English release": (submissions.NOTEBOOK, ENGLISH, "en", "setup cell"),
    "Korean, renamed to the English name": ("Copy of sds_assignment.ipynb", EDITION, "ko",
                                            "setup cell"),
    "English, saved under the Korean name": (KOREAN, ENGLISH, "en", "setup cell"),
    "English with Korean answers": (submissions.NOTEBOOK, _korean_answers(ENGLISH), "en",
                                    "setup cell"),
    "Korean, setup cell lost": (submissions.NOTEBOOK, _without(EDITION), "ko",
                                "markdown script"),
    "English, setup cell lost, Korean answers": (
        submissions.NOTEBOOK, _without(_korean_answers(ENGLISH)), "en", "nothing says otherwise"),
    "Korean Colab's copy, only code left": (f"{KOREAN}의 사본.ipynb",
                                           _without(EDITION, "markdown"), "ko", "file name"),
    "a copy Korean Colab made of the English": ("사본 - sds_assignment (1).ipynb",
                                               _without(ENGLISH, "markdown"), "ko", "file name"),
    "the Korean name, not a notebook": (KOREAN, b"{not json", "ko", "file name"),
    "an unknown language": ("sds_assignment.ipynb",
                            {"cells": [{"cell_type": "code", "source": 'LANGUAGE = "xx"\n'}]},
                            "en", "nothing says otherwise"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_edition_is_told(tmp_path, case):
    name, notebook, language, how = CASES[case]
    path = tmp_path / name
    path.write_bytes(notebook if isinstance(notebook, bytes)
                     else json.dumps(notebook, ensure_ascii=False).encode("utf-8"))
    assert edition.detect(path) == (language, how)


def test_no_notebook_is_english():
    assert edition.detect(None) == ("en", "no notebook")
