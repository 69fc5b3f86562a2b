"""Which edition a student handed in, so that their feedback speaks its language.

The editions share every code cell, so grading treats them alike; only what the student reads
differs. The language is read from the notebook, by the first of these that answers:

1. its setup cell's `LANGUAGE = "ko"` (each edition's release writes its own; it is what the
   kit spoke to the student while they worked, even in a renamed copy);
2. the script of its markdown cells: mostly Hangul is the Korean edition (where Colab or an
   editor dropped the setup cell);
3. its file name: `sds_assignment_ko.ipynb`, also as Colab and Drive name copies
   (`Copy of sds_assignment_ko.ipynb`, `sds_assignment_ko.ipynb의 사본`), or a copy that
   Korean Colab named (`sds_assignment.ipynb의 사본`, `사본 - ...`): the student reads Korean.

Otherwise, and for a file that is no readable notebook, English. A student who wrote Korean
answers into the English edition still gets English: its setup cell says "en".
"""

import json
import re
from pathlib import Path

from autograder import locate
from sdskit.config import COURSE
from sdskit.i18n import LANGUAGES

_SETTING = re.compile(r'^LANGUAGE = "([A-Za-z_-]+)"', re.M)
# The letters of each edition's script, and the share of a notebook's letters that tells it.
SCRIPTS = {"ko": re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")}
SHARE = 0.3
_KOREAN_COPY = re.compile(r"의[ _]?사본|^사본 ?-")


def _from_setup(cells: list) -> str | None:
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            match = _SETTING.search(locate.source(cell))
            if match and match.group(1) in LANGUAGES:
                return match.group(1)
    return None


def _from_script(cells: list) -> str | None:
    text = "".join(locate.source(c) for c in cells
                   if isinstance(c, dict) and c.get("cell_type") == "markdown")
    letters = sum(ch.isalpha() for ch in text)
    for language, script in SCRIPTS.items():
        if letters and len(script.findall(text)) / letters >= SHARE:
            return language
    return None


def _from_name(name: str) -> str | None:
    normal = locate._normal_name(name)
    for notebook in COURSE.notebooks:
        for language in COURSE.editions:
            if normal == COURSE.edition(notebook, language):
                return language
    if "ko" in LANGUAGES and _KOREAN_COPY.search(Path(name).stem):
        return "ko"
    return None


def detect(path: Path | None) -> tuple[str, str]:
    """(language, how it was told) for a submitted notebook; ("en", ...) when nothing says."""
    if path is None:
        return "en", "no notebook"
    try:
        cells = json.loads(path.read_bytes().decode("utf-8", errors="replace"))["cells"]
        cells = cells if isinstance(cells, list) else []
    except Exception:  # noqa: BLE001 - an unreadable file still has a name
        cells = []
    for how, language in (("setup cell", _from_setup(cells)),
                          ("markdown script", _from_script(cells)),
                          ("file name", _from_name(path.name))):
        if language is not None:
            return language, how
    return "en", "nothing says otherwise"
