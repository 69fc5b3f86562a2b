"""A font for each language's letters in the figures: matplotlib's own font, DejaVu Sans, has
no Hangul, so a Korean label would print as boxes.

The Korean font is NanumGothic, from the PyPI package koreanize-matplotlib (pinned in
requirements.txt and requirements-colab.txt, since Colab has no Korean font). The package's own
import changes matplotlib's settings and needs `distutils`, which Python 3.12 removed, so only
its font file is used here, found without importing it. The font is Nanum Gothic (copyright
2010 NAVER Corporation), under the SIL Open Font License 1.1, which allows redistribution;
the package's own code is MIT. Debian's fonts-nanum ships the same file (its copyright file
states OFL-1.1). The kit copies the font nowhere (the student bundle pins the package); the
stored figures only carry pictures drawn with it.

`use(language)` sets matplotlib's font for `language` ("en": back to what it was), with DejaVu
Sans behind it for any glyph the font lacks. `sdskit.i18n.set_language` calls it, so the Korean
notebook's setup cell chooses the font too; scripts/make_figures.py draws each edition's stored
figures inside `sdskit.i18n.speaking(language)`.
"""

import importlib.util
from pathlib import Path

# language -> (the package that ships the font, its files (regular, bold), its family name)
FONTS = {"ko": ("koreanize_matplotlib", ("fonts/NanumGothic.ttf", "fonts/NanumGothicBold.ttf"),
                "NanumGothic")}
FALLBACK = "DejaVu Sans"  # matplotlib's own font, for the glyphs the language's font lacks

_default_family = None  # matplotlib's font.family and text.hinting before the first change
_default_hinting = None
_active: str | None = None  # the language whose font is in use, if any


def font_files(language: str) -> list[Path]:
    """The font files for `language`'s letters (regular, bold), or [] (no font needed, or not
    installed)."""
    if language not in FONTS:
        return []
    package, names, _family = FONTS[language]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    paths = [Path(list(spec.submodule_search_locations)[0]) / name for name in names]
    return paths if all(path.is_file() for path in paths) else []


def use(language: str) -> bool:
    """Draw figures in `language`'s font from now on; False where that font is missing (a
    one-line note says what to install)."""
    import matplotlib
    from matplotlib import font_manager

    global _default_family, _default_hinting, _active
    if _default_family is None:
        _default_family = list(matplotlib.rcParams["font.family"])
        _default_hinting = matplotlib.rcParams["text.hinting"]
    if language not in FONTS:
        matplotlib.rcParams["font.family"] = _default_family
        matplotlib.rcParams["text.hinting"] = _default_hinting
        _active = None
        return True
    paths = font_files(language)
    if not paths:
        from sdskit.i18n import tr

        package = FONTS[language][0].replace("_", "-")
        print(tr("The figures' font for this language is not installed, so their letters may "
                 "show as boxes. Install it with: pip install {package}", package=package))
        return False
    family = FONTS[language][2]
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for path in paths:
        if str(path) not in known:
            font_manager.fontManager.addfont(str(path))
    matplotlib.rcParams["font.family"] = [family, FALLBACK]
    # FreeType's own hinting of NanumGothic loses thin strokes at figure sizes (the underscore
    # of min_step vanishes at 8 pt, 80 dpi); its autohinter keeps them.
    matplotlib.rcParams["text.hinting"] = "force_autohint"
    _active = language
    return True


def log_ticks(axis) -> None:
    """Decade labels 10^k of a log-scale axis (`ax.yaxis`), drawn where the language's font
    lacks the minus sign. Matplotlib writes them as mathtext in the text's own font
    (`\\mathdefault`), which for Hangul must be the language's; NanumGothic has no U+2212, so
    10^-3 would show a box. Here they are plain math, in mathtext's own DejaVu Sans. With no
    language font in use (English) the axis keeps matplotlib's labels."""
    if _active is None:
        return
    import math

    from matplotlib import ticker

    def decade(value, _position):
        exponent = math.log10(value) if value > 0 else float("nan")
        return f"$10^{{{round(exponent)}}}$" if abs(exponent - round(exponent)) < 1e-9 else ""

    axis.set_major_formatter(ticker.FuncFormatter(decade))
    axis.set_minor_formatter(ticker.NullFormatter())
