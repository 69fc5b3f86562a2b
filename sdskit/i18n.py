"""The kit's words in the reader's language: one gettext catalogue per language.

English is the source. Every sentence the kit shows a student or an instructor is written in
English where it is said, inside `tr(...)`:

    print(tr("With min_step={lo} and max_step={hi}, t took values from {low} to {high}.",
             lo=lo, hi=hi, low=low, high=high))

and its translation lives in `sdskit/locale/<language>/LC_MESSAGES/sdskit.po`, a standard
gettext catalogue (msgid: the English, msgstr: the translation). `scripts/make_catalogue.py`
(`make catalogue`) extracts every `tr(...)` of the kit and its notebooks with Babel into
`sdskit/locale/sdskit.pot`, merges it into each language's `.po` (a message whose English
changed is marked fuzzy there, with its old English beside it) and compiles the `.mo` files
that `gettext` reads here; `tests/test_catalogue.py` fails on a message with no translation,
a stale (fuzzy) one, or placeholders that differ. Another language is one more `.po` file and
its code in `LANGUAGES`.

Placeholders are `str.format` fields by name, `{name}`; a message is formatted only when values
are passed, so a message with no values may hold braces as they are. `N_("...")` marks a
message that is translated later (a table of texts defined at import time); `tr(text)` then
translates it where it is shown.

A check that must say the same thing in two languages (the grader writes a Korean student's
page in Korean and the class report in English) keeps its messages as `Text`, made by
`lazy(...)`: the message and its values, rendered in whichever language is asked for.

Which language: inside `with speaking(code):`, that one (scripts/make_figures.py draws each
edition's figures so); else the environment variable SDSKIT_LANG if set; else what
`set_language` chose (the Korean notebook's setup cell chooses "ko"); else English. Choosing a
language also chooses the figures' font for its letters (sdskit/fonts.py).
"""

import contextlib
import functools
import gettext
import os
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

DOMAIN = "sdskit"
LOCALE = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "ko")  # "en" is the source; every other one has a catalogue
ENVIRONMENT = "SDSKIT_LANG"

_chosen: str | None = None
_speaking: list[str] = []  # the languages of the `speaking` blocks we are in, innermost last


def _valid(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"Unknown language {language!r}: the kit speaks {', '.join(LANGUAGES)}. "
                         f"Use one of those (a new one needs sdskit/locale/<code>/).")
    return language


def language() -> str:
    """The language the kit speaks now: `speaking`'s, else SDSKIT_LANG, else `set_language`'s
    choice, else "en"."""
    if _speaking:
        return _speaking[-1]
    from_environment = os.environ.get(ENVIRONMENT, "").strip()
    if from_environment:
        return _valid(from_environment)
    return _chosen or "en"


def set_language(code: str) -> None:
    """Speak `code` from now on in this process (the notebook's setup cell calls this), and
    draw figures in a font that has its letters."""
    global _chosen
    _chosen = _valid(code)
    _use_font(language())


def _use_font(code: str) -> None:
    """The figures' font for `code` (sdskit/fonts.py); English needs no change, so matplotlib
    is not even imported for it unless another language changed the font before."""
    if code != "en" or "sdskit.fonts" in sys.modules:
        from sdskit import fonts

        fonts.use(code)


@contextlib.contextmanager
def speaking(code: str):
    """Inside the block, speak (and draw figures in) `code`, whatever else was chosen."""
    _speaking.append(_valid(code))
    _use_font(code)
    try:
        yield
    finally:
        _speaking.pop()
        _use_font(language())


@functools.lru_cache(maxsize=None)
def _catalogue(code: str) -> gettext.NullTranslations:
    if code == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE, languages=[code], fallback=True)


def tr(message: str, /, **values) -> str:
    """`message` in the current language, with `values` filled into its `{name}` fields."""
    return tr_in(language(), message, **values)


def tr_in(code: str, message: str, /, **values) -> str:
    """`message` in the language `code`, whatever the current one is (the grader writes each
    student's page in that student's edition)."""
    text = _catalogue(_valid(code)).gettext(message) if message else message
    return text.format(**values) if values else text


def width(text: str) -> int:
    """Columns `text` takes in a notebook's monospaced output: Hangul and other wide letters
    take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def pad(text, columns: int) -> str:
    """`text` left-aligned in `columns` columns (as f"{text:<{columns}}", counting wide letters
    as two), so that tables line up in every language."""
    text = str(text)
    return text + " " * max(0, columns - width(text))


def tr_pair(code: str, message: str, /, **values) -> list[str]:
    """[`message` in English, in `code`]: what the grader keeps of one message, the staff's
    rendering and the student's."""
    return [tr_in("en", message, **values), tr_in(code, message, **values)]


def N_(message: str) -> str:
    """Mark `message` for the catalogue without translating it yet: `tr(message)` later."""
    return message


@dataclass(frozen=True)
class Text:
    """A message not yet rendered: pieces that are plain text or (English message, values).

    `str(text)` renders it in the current language, `text.render(code)` in another; values that
    are themselves `Text` render in the same language. `+` joins pieces, as for strings."""

    pieces: tuple = ()

    def render(self, code: str | None = None) -> str:
        code = code or language()
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            message, values = piece
            shown = {k: v.render(code) if isinstance(v, Text) else v for k, v in values}
            out.append(tr_in(code, message, **shown))
        return "".join(out)

    def __str__(self) -> str:
        return self.render()

    def __add__(self, other) -> "Text":
        return Text(self.pieces + _pieces(other))

    def __radd__(self, other) -> "Text":
        return Text(_pieces(other) + self.pieces)

    def split(self, *args):
        return str(self).split(*args)

    def __len__(self) -> int:
        return len(str(self))

    def __contains__(self, part: str) -> bool:
        return part in str(self)


def _pieces(other) -> tuple:
    if isinstance(other, Text):
        return other.pieces
    if isinstance(other, str):
        return (other,)
    raise TypeError(f"cannot join a message with {type(other).__name__}")


@dataclass(frozen=True)
class _Rendered(Text):
    """A message another process already rendered, in English and other languages."""

    by_language: tuple = ()

    def render(self, code: str | None = None) -> str:
        texts = dict(self.by_language)
        return texts.get(code or language(), texts["en"])


def rendered(**by_language: str) -> Text:
    """A message already rendered (`en=...` and others), usable as a value of `lazy`: the
    grader gets the sandbox's flags so."""
    return _Rendered(by_language=tuple(by_language.items()))


def lazy(message: str, /, **values) -> Text:
    """`message` with its values, to be rendered later in any language (see `Text`)."""
    return Text(((message, tuple(values.items())),))


def joined(parts, separator: str = ", "):
    """The parts (`Text` or strings) one after another, `separator` between them."""
    out = ""
    for index, part in enumerate(parts):
        out = out + (separator if index else "") + part
    return out


def render(text, code: str | None = None) -> str:
    """A `Text` or a plain string, in the language `code` (default: the current one)."""
    return text.render(code) if isinstance(text, Text) else str(text)
