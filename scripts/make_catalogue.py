"""The message catalogues (sdskit/i18n.py): extract, merge, compile, check. Babel does the work.

    python scripts/make_catalogue.py           # `make catalogue`: regenerate, then list what
                                               # still needs a translator
    python scripts/make_catalogue.py --check   # exit 1 if anything is missing, stale or drifted

What it does, in gettext's usual steps:
1. extract every `tr("...")`, `lazy("...")`, `tr_in(code, "...")`, `tr_pair(code, "...")` and
   `N_("...")` from the kit's code (`sdskit/`, `autograder/`, and the figures' script
   `scripts/make_figures.py`) and from the solution notebooks' code cells, and every
   `_say("...")` from their setup cell (which runs before the kit is there, so `make release` writes each
   edition's text into it), into the template `sdskit/locale/sdskit.pot`;
2. merge the template into each language's `sdskit/locale/<code>/LC_MESSAGES/sdskit.po`: a new
   English message arrives untranslated; a message whose English changed is kept with its old
   translation, marked fuzzy, its old English beside it (`#| msgid`); a message no longer said
   goes to the end as obsolete (`#~`);
3. compile each `.po` into the `.mo` that `gettext` reads.

The `.pot` and the `.mo` files are generated: never edit them. The `.po` files are where the
translations live: edit a msgstr, remove the `fuzzy` flag once it matches its English again,
and run this script. `tests/test_catalogue.py` runs `problems()`.
"""

import argparse
import contextlib
import datetime
import io
import json
import re
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.extract import extract, extract_from_dir, extract_python  # noqa: E402
from babel.messages.mofile import write_mo  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402

from sdskit.config import COURSE  # noqa: E402
from sdskit.i18n import DOMAIN, LANGUAGES, LOCALE  # noqa: E402
from sdskit.paths import ROOT, SOLUTIONS  # noqa: E402

TEMPLATE = LOCALE / f"{DOMAIN}.pot"
KEYWORDS = {"tr": (1,), "N_": (1,), "lazy": (1,), "tr_in": (2,), "tr_pair": (2,)}
SETUP_KEYWORDS = {"_say": (1,)}
CODE_FOLDERS = ("sdskit", "autograder")
CODE_FILES = ("scripts/make_figures.py",)  # the stored figures' words (one set per edition)
# Dates in the files' headers are fixed, so that the files are a function of their inputs.
_DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
_PROJECT = "sds-assignment-kit"
_HEADER = ("# The SDS assignment kit's messages{where}.\n"
           "# msgid is the English, the source (in the kit's code, inside tr(...)); msgstr is its\n"
           "# translation. Edit msgstr only, then run: python scripts/make_catalogue.py\n"
           "# (sdskit/i18n.py says how the catalogues work).\n#")
_FIELDS = dict(project=_PROJECT, version="1", domain=DOMAIN, creation_date=_DATE,
               revision_date=_DATE, fuzzy=False, copyright_holder="the kit's authors",
               msgid_bugs_address="the course staff", last_translator="the kit's authors",
               language_team="the kit's authors")


def catalogue_file(code: str, suffix: str = ".po") -> Path:
    return LOCALE / code / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


def translated_languages() -> tuple[str, ...]:
    return tuple(code for code in LANGUAGES if code != "en")


def _notebook_code(path: Path):
    """(grade_id, code) for each code cell of a notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            yield cell["metadata"].get("nbgrader", {}).get("grade_id", "?"), text


def extracted(skipped: list | None = None) -> list[tuple[str, str]]:
    """(message, where) for every message of the kit, in a stable order. What Babel skipped (an
    f-string given as a message cannot be translated; Babel says so on stderr) is appended to
    `skipped`."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        found = _extract()
    if skipped is not None:
        skipped.extend(line.strip() for line in said.getvalue().splitlines() if "warning" in line)
    return found


def messages_in_code(code: str, keywords=None, where: str = "(code)") -> list[str]:
    """The messages of one piece of Python code (a notebook cell)."""
    fileobj = io.BytesIO(code.encode("utf-8"))
    fileobj.name = where
    return [message for _line, message, _comments, _context in extract(
        extract_python, fileobj, keywords=keywords or KEYWORDS)]


def _extract() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for folder in CODE_FOLDERS:
        for filename, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS,
                directory_filter=lambda d: "__pycache__" not in d):
            found.append((message, f"{folder}/{filename}"))
    for name in CODE_FILES:
        found.extend((message, name) for message in
                     messages_in_code((ROOT / name).read_text(encoding="utf-8"), where=name))
    for notebook in COURSE.notebooks:
        for gid, code in _notebook_code(SOLUTIONS / notebook):
            where = f"solutions/{notebook}#{gid}"
            keywords = SETUP_KEYWORDS if gid == "setup" else KEYWORDS
            found.extend((message, where) for message in messages_in_code(code, keywords, where))
    return [(m, w) for m, w in found if isinstance(m, str) and m]


def template(skipped: list | None = None) -> Catalog:
    """The template: every English message, with where it is said."""
    catalog = Catalog(header_comment=_HEADER.format(where=": the template"), **_FIELDS)
    for message, where in extracted(skipped):
        catalog.add(message, locations=[(where, None)])
    return catalog


def _po_bytes(catalog: Catalog, template_file: bool = False) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, sort_output=True, include_lineno=False,
             include_previous=True, omit_header=False, ignore_obsolete=template_file)
    return out.getvalue()


def _mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def read_catalogue(path: Path, code: str) -> Catalog:
    with open(path, "rb") as handle:
        return read_po(handle, locale=code, domain=DOMAIN)


def merged(code: str, tmpl: Catalog | None = None) -> Catalog:
    """The language's catalogue brought up to date with the template (Babel's `update`)."""
    tmpl = tmpl or template()
    path = catalogue_file(code)
    if path.exists():
        catalog = read_catalogue(path, code)
    else:
        catalog = Catalog(locale=code, header_comment=_HEADER.format(where=f" in {code}"),
                          **_FIELDS)
    catalog.update(tmpl, update_creation_date=False)
    catalog.revision_date = _DATE
    catalog.creation_date = _DATE
    return catalog


_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)")


def placeholders(text: str) -> list[str]:
    """The `{name}` fields of a message, sorted (`{{` is a literal brace, not a field)."""
    try:
        return sorted({field for _, field, _, _ in string.Formatter().parse(text) if field})
    except ValueError:  # a message formatted with no values may hold a lone brace
        return sorted(set(_FIELD.findall(text)))


def message_problems(catalog: Catalog, code: str) -> list[str]:
    """What is wrong with the translations in `catalog` (already merged with the template)."""
    found = []
    for message in catalog:
        if not message.id:
            continue  # the header
        english = message.id
        if not message.string:
            found.append(f"[{code}] no translation: {english!r}")
        elif message.fuzzy:
            old = message.previous_id[0] if message.previous_id else "(unknown)"
            found.append(f"[{code}] stale: its English changed from {old!r} to {english!r}; "
                         f"update the translation {message.string!r} and remove its fuzzy flag")
        elif placeholders(english) != placeholders(message.string):
            found.append(f"[{code}] placeholders differ in {english!r}: the English has "
                         f"{placeholders(english)}, the translation {placeholders(message.string)}")
    return found


def problems() -> list[str]:
    """Everything that `make catalogue` would change, and every message a translator owes."""
    found = []
    skipped: list[str] = []
    tmpl = template(skipped)
    found.extend(f"cannot be translated as written: {text}" for text in skipped)
    if not TEMPLATE.exists() or TEMPLATE.read_bytes() != _po_bytes(tmpl, template_file=True):
        found.append(f"{TEMPLATE.relative_to(ROOT)} is not what the code says now: run "
                     "`make catalogue`")
    for code in translated_languages():
        catalog = merged(code, tmpl)
        path = catalogue_file(code)
        if not path.exists() or path.read_bytes() != _po_bytes(catalog):
            found.append(f"{path.relative_to(ROOT)} is not merged with the template: run "
                         "`make catalogue`")
        mo = catalogue_file(code, ".mo")
        compiled = _mo_bytes(read_po(io.BytesIO(_po_bytes(catalog)), locale=code, domain=DOMAIN))
        if not mo.exists() or mo.read_bytes() != compiled:
            found.append(f"{mo.relative_to(ROOT)} is not compiled from its .po: run "
                         "`make catalogue`")
        found.extend(message_problems(catalog, code))
    return found


def write() -> list[str]:
    """Write the template, merge and compile every language; return what a translator owes."""
    tmpl = template()
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_bytes(_po_bytes(tmpl, template_file=True))
    owed = []
    for code in translated_languages():
        catalog = merged(code, tmpl)
        path = catalogue_file(code)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_po_bytes(catalog))
        # Compile what the file now holds (read back, so the .mo is the file's, byte for byte).
        catalogue_file(code, ".mo").write_bytes(_mo_bytes(read_catalogue(path, code)))
        owed.extend(message_problems(catalog, code))
    return owed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if anything is missing, stale or drifted")
    args = parser.parse_args()
    found = problems() if args.check else write()
    if not args.check:
        print(f"wrote {TEMPLATE.relative_to(ROOT)} and the catalogues of "
              f"{', '.join(translated_languages())}")
    for problem in found:
        print(f"- {problem}")
    if found:
        print(f"{len(found)} problem(s): translate in the .po file, then run "
              "`python scripts/make_catalogue.py`")
        sys.exit(1 if args.check else 0)


if __name__ == "__main__":
    main()
