"""The notebook's stored figures (scripts/make_figures.py): the attachments are the committed PNGs,
in the solutions and in the release, and the PNGs are what the script makes now (decoded pixels,
within a small tolerance). The oracle check's figure takes about a minute, so it is not remade
here; `make figures` remakes it."""

import base64
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT, SOLUTIONS

sys.path.insert(0, str(ROOT / "scripts"))
import make_figures  # noqa: E402

REGENERATE = "run `make figures` (then `make release`)"


def _attachments(path):
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): c.get("attachments", {}) for c in cells}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("folder", [SOLUTIONS, NOTEBOOKS], ids=["solutions", "release"])
def test_attachments_are_the_committed_figures(folder):
    for name in COURSE.released if folder == NOTEBOOKS else COURSE.notebooks:  # editions too
        attachments = _attachments(folder / name)
        for figure, grade_id in make_figures.CELLS.items():
            if folder == NOTEBOOKS and COURSE.experiments == "off" and grade_id.startswith("exp"):
                continue  # the release has no Part 7 (sdskit/config.py)
            stored = attachments.get(grade_id, {}).get(figure, {}).get("image/png")
            assert stored, f"{folder.name}/{name}: cell {grade_id} lacks {figure}; {REGENERATE}"
            assert base64.b64decode(stored) == (make_figures.FIGURES / figure).read_bytes(), \
                f"{folder.name}/{name}: {figure} differs from assets/figures; {REGENERATE}"


def test_figures_are_small():
    total = sum((make_figures.FIGURES / figure).stat().st_size for figure in make_figures.CELLS)
    assert total < 400_000, total


def test_figures_are_what_the_script_makes(tmp_path):
    made = make_figures.make(tmp_path, skip_slow=True)
    assert made
    for path in made:
        new, old = _pixels(path.read_bytes()), _pixels((make_figures.FIGURES / path.name).read_bytes())
        assert new.shape == old.shape, f"{path.name} changed size; {REGENERATE}"
        differs = (np.abs(new - old).max(axis=-1) > 24).mean()
        assert differs < 0.005, f"{path.name}: {differs:.1%} of its pixels changed; {REGENERATE}"
