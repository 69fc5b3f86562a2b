"""The notebook's stored figures (scripts/make_figures.py): the attachments are the committed PNGs,
in the solutions and in the release (each edition its own: the Korean notebook the Korean
drawings in assets/figures/ko/), and the PNGs are what the script makes now, in every language
(decoded pixels, within a small tolerance). The oracle check's figure takes about a minute, so
it is not remade here; `make figures` remakes it. A Korean figure is drawn with every glyph
from a real font (no missing-glyph boxes), and the Korean notebook shows the Korean figures in
its HTML too."""

import base64
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from sdskit.config import COURSE
from sdskit.paths import NOTEBOOKS, ROOT, SOLUTIONS
from scripts import make_translation

sys.path.insert(0, str(ROOT / "scripts"))
import make_figures  # noqa: E402

REGENERATE = "run `make figures` (then `make release`)"


def _attachments(path):
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): c.get("attachments", {}) for c in cells}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _notebooks(folder):
    """(notebook, language) in `folder`: the release holds every edition."""
    if folder == SOLUTIONS:
        return [(name, "en") for name in COURSE.notebooks]
    return [(name, "en") for name in COURSE.notebooks] + [
        (COURSE.edition(name, language), language) for name, language in make_translation.editions()]


@pytest.mark.parametrize("folder", [SOLUTIONS, NOTEBOOKS], ids=["solutions", "release"])
def test_attachments_are_the_committed_figures(folder):
    for name, language in _notebooks(folder):
        attachments = _attachments(folder / name)
        drawn = make_figures.folder(language)
        for figure, grade_id in make_figures.CELLS.items():
            if folder == NOTEBOOKS and COURSE.experiments == "off" and grade_id.startswith("exp"):
                continue  # the release has no Part 7 (sdskit/config.py)
            stored = attachments.get(grade_id, {}).get(figure, {}).get("image/png")
            assert stored, f"{folder.name}/{name}: cell {grade_id} lacks {figure}; {REGENERATE}"
            assert base64.b64decode(stored) == (drawn / figure).read_bytes(), \
                f"{folder.name}/{name}: {figure} differs from {drawn.relative_to(ROOT)}; {REGENERATE}"


def test_figures_are_small():
    for language in make_figures.LANGUAGES:
        folder = make_figures.folder(language)
        total = sum((folder / figure).stat().st_size for figure in make_figures.CELLS)
        assert total < 400_000, (language, total)


def test_figures_are_what_the_script_makes(tmp_path):
    made = make_figures.make(tmp_path, skip_slow=True)
    assert {path.parent for path in made} == {make_figures.folder(language, tmp_path)
                                              for language in make_figures.LANGUAGES}
    for path in made:
        committed = ROOT / "assets" / "figures" / path.relative_to(tmp_path)
        new, old = _pixels(path.read_bytes()), _pixels(committed.read_bytes())
        assert new.shape == old.shape, f"{path.name} changed size; {REGENERATE}"
        differs = (np.abs(new - old).max(axis=-1) > 24).mean()
        assert differs < 0.005, f"{path.name}: {differs:.1%} of its pixels changed; {REGENERATE}"


def test_the_korean_figures_are_korean():
    """Each Korean figure is its own drawing, not the English one (the same size: same layout)."""
    for figure in make_figures.CELLS:
        english = _pixels((make_figures.FIGURES / figure).read_bytes())
        korean = _pixels((make_figures.folder("ko") / figure).read_bytes())
        assert korean.shape[:2] == english.shape[:2], figure
        if figure != "noising.png":  # its only words are t = ... and formulas
            assert (korean != english).any(), f"{figure}: the Korean drawing is the English one"


def test_a_korean_figure_has_no_missing_glyphs(caplog):
    """Every Hangul glyph comes from the pinned Korean font: matplotlib's "Glyph ... missing
    from font" warning (plain text) is an error here, and so is mathtext's "does not have a
    glyph" (text mixed with formulas, log-axis labels). The test fails this way with the font
    taken away."""
    import warnings

    import matplotlib.pyplot as plt

    from sdskit import fonts, i18n

    assert fonts.font_files("ko"), "the Korean font is not installed: run `make env`"
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="matplotlib"):
        warnings.filterwarnings("error", message=r"Glyph .* missing from font")
        with i18n.speaking("ko"):
            data = make_figures.noise_schedule() + make_figures.pipeline()  # a log axis; formulas
    assert data
    missing = [r.getMessage() for r in caplog.records if "does not have a glyph" in r.getMessage()]
    assert not missing, missing
    plt.close("all")


def test_without_the_font_the_glyph_check_fails(monkeypatch):
    """The check above can fail: with the Korean font's package gone, Hangul is a missing glyph."""
    import warnings

    import matplotlib.pyplot as plt

    from sdskit import fonts, i18n

    monkeypatch.setattr(fonts, "font_files", lambda language: [])
    with warnings.catch_warnings(), i18n.speaking("ko"):
        assert plt.rcParams["font.family"] == ["DejaVu Sans"]  # no Korean font chosen
        warnings.filterwarnings("error", message=r"Glyph .* missing from font")
        with pytest.raises(UserWarning, match="missing from font"):
            make_figures.noise_schedule()
    plt.close("all")


def test_the_korean_notebook_shows_its_figures_in_html(tmp_path):
    """nbconvert --to html, without running anything: the Korean figures are in the page."""
    import subprocess
    import sys

    korean = COURSE.edition(COURSE.notebooks[0], "ko")
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                           "--output-dir", str(tmp_path), str(NOTEBOOKS / korean)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / korean.replace(".ipynb", ".html")).read_text(encoding="utf-8")
    for figure in make_figures.CELLS:
        data = base64.b64encode((make_figures.folder("ko") / figure).read_bytes()).decode()
        assert f"data:image/png;base64,{data}" in page, f"{figure} is not shown in the HTML"
