"""Editions of the notebooks in other languages, made from one source: the English solution
notebook, and beside it the translation of its markdown cells, solutions/translations/
<notebook>_<language>.md (sds_assignment_ko.md). Code cells, tests, points and grade ids come
from the English notebook unchanged; only the markdown cells' text is replaced, their figures
by the edition's own (assets/figures/<language>/, drawn by scripts/make_figures.py with the
edition's words), and the setup cell's language and messages (it runs before the kit is there;
its messages are in the kit's catalogue, sdskit/locale/, and `localize_setup` writes them in).

    python scripts/make_translation.py                   # what is missing or out of date
    python scripts/make_translation.py --accept ko md_9  # md_9's Korean matches its English now
    python scripts/make_translation.py --out DIR         # the translated solution notebooks

In the translation file each cell's text follows a marker line naming its grade_id and the
SHA-256 of the English source it was translated from:

    <!-- cell md_9 | English sha256 3f2a... -->
    ## 3부. 2D 사전 분포에서 3D 그래디언트로 ...

When a cell's English changes, its hash no longer matches and tests/test_translation.py names the
cell: translate the change, then `--accept` records the new hash. Text before the first marker
is a note for people and is ignored. `make release` (scripts/make_release.py) builds the
editions' release notebooks with nbgrader, like the English one.
"""

import argparse
import ast
import base64
import copy
import hashlib
import io
import json
import re
import sys
import tokenize
import unicodedata
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from autograder.locate import grade_id, source  # noqa: E402  (re-used by the tests)
from sdskit.config import COURSE  # noqa: E402
from sdskit.paths import ASSETS, SOLUTIONS  # noqa: E402

TRANSLATIONS = SOLUTIONS / "translations"
FIGURES = ASSETS / "figures"  # English; each edition's own in FIGURES / <language>
_MARKER = re.compile(r"^<!-- cell (\S+) \| English sha256 ([0-9a-f]{64}) -->$", re.M)
_HEADER = ("<!-- Translation ({language}) of every markdown cell of solutions/{notebook}.\n"
           "Edit the text under a cell's marker; the marker holds the hash of the English it\n"
           "translates. scripts/make_translation.py says how to update a cell. -->\n")

# What a translation keeps exactly as the English has it: code, formulas, links and images,
# and nbgrader's solution markers (in a markdown answer cell, what lies between them is cleared).
_SOLUTION = re.compile(r"^[ \t]*### (?:BEGIN|END) SOLUTION[ \t]*$", re.M)
_FENCED = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]+`")
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
_INLINE_MATH = re.compile(r"\$[^$\n]+?\$")
_TARGET = re.compile(r"\]\(\s*([^)\s]+)|<img[^>]*?src=\"([^\"]+)\"")


@dataclass
class Translated:
    """One cell's translation, and the hash of the English source it was made from."""

    grade_id: str
    sha256: str
    text: str


def translation_file(notebook: str, language: str) -> Path:
    """solutions/translations/sds_assignment_ko.md for ("sds_assignment.ipynb", "ko")."""
    return TRANSLATIONS / f"{Path(COURSE.edition(notebook, language)).stem}.md"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_translation(path: Path) -> dict[str, Translated]:
    """grade_id -> Translated, in the file's order. A missing file holds no translations."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    markers = list(_MARKER.finditer(text))
    cells: dict[str, Translated] = {}
    for marker, following in zip(markers, markers[1:] + [None]):
        end = following.start() if following else len(text)
        gid = marker.group(1)
        if gid in cells:
            raise ValueError(f"{path}: cell {gid} is translated twice; keep one of the two")
        cells[gid] = Translated(gid, marker.group(2), text[marker.end():end].strip("\n"))
    return cells


def write_translation(path: Path, notebook: str, language: str,
                      cells: dict[str, Translated]) -> None:
    blocks = [f"<!-- cell {c.grade_id} | English sha256 {c.sha256} -->\n{c.text}\n"
              for c in cells.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_HEADER.format(language=language, notebook=notebook) + "\n"
                    + "\n".join(blocks), encoding="utf-8")


def _kept(text: str) -> dict[str, set[str]]:
    """The code, formulas, link targets and solution markers of a markdown text, by kind."""
    markers = set(_SOLUTION.findall(text))
    fenced = set(_FENCED.findall(text))
    text = _FENCED.sub(" ", text)
    code = set(_CODE.findall(text))
    text = _CODE.sub(" ", text)
    display = set(_DISPLAY_MATH.findall(text))
    text = _DISPLAY_MATH.sub(" ", text)
    inline = set(_INLINE_MATH.findall(text))
    return {"code block": fenced, "code": code, "formula": display | inline,
            "link or image": {a or b for a, b in _TARGET.findall(text)},
            "solution marker": markers}


def differences(english: str, translated: str) -> list[str]:
    """What the translation lost or added of the English's code, formulas, links and images."""
    found = []
    theirs, ours = _kept(english), _kept(translated)
    for kind in theirs:
        lost, added = sorted(theirs[kind] - ours[kind]), sorted(ours[kind] - theirs[kind])
        if lost:
            found.append(f"lacks the {kind} {', '.join(lost)}")
        if added:
            found.append(f"has the {kind} {', '.join(added)} that the English does not")
    return found


def problems(notebook: dict, translation: dict[str, Translated], where: str,
             language: str) -> list[str]:
    """Every way the translation falls short of the English notebook, each naming the cell
    and what to do. Empty when every markdown cell is translated from its current English."""
    found = []
    ids = set()
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "markdown":
            continue
        gid = grade_id(cell)
        if gid is None:
            found.append(f"markdown cell {index} has no nbgrader grade_id, so it cannot be "
                         "matched with a translation: give it one (every cell needs one)")
            continue
        ids.add(gid)
        english = source(cell)
        if gid not in translation:
            found.append(f"{gid} has no translation in {where}: run `python scripts/make_"
                         f"translation.py`, paste the block it prints for {gid}, translate it")
        elif translation[gid].sha256 != sha256(english):
            found.append(f"{gid} changed in English since it was translated: update its text in "
                         f"{where} (`git log -p solutions/` shows the change), then run `python "
                         f"scripts/make_translation.py --accept {language} {gid}`")
        else:
            found.extend(f"{gid}: the translation {what}: keep code, formulas, links and images "
                         "exactly as in the English" for what in differences(english,
                                                                            translation[gid].text))
    for gid in translation:
        if gid not in ids:
            found.append(f"{where} translates {gid}, which is no markdown cell of the notebook "
                         "any more: delete it there")
    return found


def _set_source(cell: dict, text: str) -> None:
    lines = text.split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + lines[-1:]


def _literal(text: str, indent: str, width: int = 88) -> str:
    """`text` as Python string literals, implicitly joined, one per line under `indent`."""
    def shown(piece: str) -> int:  # columns on screen: Hangul and other wide letters take two
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in repr(piece))

    pieces, line = [], ""
    for word in re.split(r"(?<= )", text):
        if line and shown(line + word) > width - len(indent):
            pieces.append(line)
            line = ""
        line += word
    pieces.append(line)
    return f"\n{indent}".join(repr(piece) for piece in pieces)


def localize_setup(code: str, language: str) -> str:
    """The setup cell of an edition: `LANGUAGE = "<language>"`, and the text of each `_say(...)`
    message replaced by its translation from the catalogue (sdskit/locale/; `make catalogue`).
    The cell runs before the kit's files are on the machine, so it carries its own words."""
    from sdskit.i18n import tr_in

    code = re.sub(r'^LANGUAGE = "[a-z]+"', f'LANGUAGE = "{language}"', code, count=1, flags=re.M)
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    lines = code.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    spans = []
    for i, token in enumerate(tokens[:-2]):
        if token.type == tokenize.NAME and token.string == "_say" and tokens[i + 1].string == "(":
            strings = []
            for following in tokens[i + 2:]:
                if following.type == tokenize.STRING:
                    strings.append(following)
                elif following.type not in (tokenize.NL, tokenize.COMMENT):
                    break
            if not strings:
                continue
            english = ast.literal_eval(" ".join(t.string for t in strings))
            start = offsets[strings[0].start[0] - 1] + strings[0].start[1]
            end = offsets[strings[-1].end[0] - 1] + strings[-1].end[1]
            indent = " " * strings[0].start[1]
            spans.append((start, end, _literal(tr_in(language, english), indent)))
    for start, end, replacement in reversed(spans):
        code = code[:start] + replacement + code[end:]
    return code


def edition_figure(name: str, language: str) -> Path:
    """The edition's own drawing of the stored figure `name` (scripts/make_figures.py)."""
    return FIGURES / language / name


def translate(notebook: dict, translation: dict[str, Translated], language: str) -> dict:
    """The notebook with each translated markdown cell's text replaced (ids and metadata kept;
    cells without a translation stay in English), each stored figure replaced by the
    edition's drawing of it where there is one, and its setup cell in `language`
    (`localize_setup`)."""
    edition = copy.deepcopy(notebook)
    for cell in edition["cells"]:
        gid = grade_id(cell)
        for name, data in cell.get("attachments", {}).items():
            if edition_figure(name, language).is_file() and "image/png" in data:
                data["image/png"] = base64.b64encode(
                    edition_figure(name, language).read_bytes()).decode("ascii")
        if cell.get("cell_type") == "markdown" and gid in translation:
            _set_source(cell, translation[gid].text)
        elif cell.get("cell_type") == "code" and gid == "setup":
            _set_source(cell, localize_setup(source(cell), language))
    return edition


def read_notebook(name: str) -> dict:
    return json.loads((SOLUTIONS / name).read_text(encoding="utf-8"))


def editions() -> list[tuple[str, str]]:
    """(notebook, language) for every edition in sdskit/config.py."""
    return [(notebook, language) for notebook in COURSE.notebooks for language in COURSE.editions]


def edition_notebook(notebook: str, language: str) -> dict:
    """The translated solution notebook: nbgrader's source for the edition's release."""
    translation = read_translation(translation_file(notebook, language))
    return translate(read_notebook(notebook), translation, language)


def report() -> int:
    """Print what is missing or out of date, with a block to paste for each missing cell."""
    count = 0
    for notebook, language in editions():
        path = translation_file(notebook, language)
        english = read_notebook(notebook)
        found = problems(english, read_translation(path), str(path.relative_to(SOLUTIONS.parent)),
                         language)
        count += len(found)
        print(f"{COURSE.edition(notebook, language)}: "
              + ("every markdown cell is translated from its current English" if not found
                 else f"{len(found)} problems"))
        for problem in found:
            print(f"  - {problem}")
        translated = read_translation(path)
        for cell in english["cells"]:
            gid = grade_id(cell)
            if cell.get("cell_type") == "markdown" and gid and gid not in translated:
                print(f"\n<!-- cell {gid} | English sha256 {sha256(source(cell))} -->\n"
                      f"{source(cell)}\n")
    return count


def accept(language: str, ids: list[str]) -> None:
    """Record that the translations of `ids` now match their cells' current English."""
    for notebook in COURSE.notebooks:
        path = translation_file(notebook, language)
        cells = read_translation(path)
        english = {grade_id(c): source(c) for c in read_notebook(notebook)["cells"]
                   if c.get("cell_type") == "markdown"}
        for gid in ids:
            if gid not in english:
                raise SystemExit(f"error: {notebook} has no markdown cell {gid}")
            if gid not in cells:
                raise SystemExit(f"error: {path} has no translation of {gid} yet: add it "
                                 "first (running this script without options prints the block)")
            cells[gid].sha256 = sha256(english[gid])
            print(f"{gid}: recorded as translated from its current English")
        write_translation(path, notebook, language, cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accept", nargs="+", metavar=("LANGUAGE", "GRADE_ID"),
                        help="record that these cells' translations match their current English")
    parser.add_argument("--out", type=Path, help="write the translated solution notebooks here")
    args = parser.parse_args()
    if args.accept:
        language, *ids = args.accept
        if language not in COURSE.editions or not ids:
            raise SystemExit(f"error: --accept takes a language of sdskit/config.py's editions "
                             f"{COURSE.editions} and then grade ids, not {args.accept}")
        accept(language, ids)
    elif args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for notebook, language in editions():
            target = args.out / COURSE.edition(notebook, language)
            target.write_text(json.dumps(edition_notebook(notebook, language), indent=1,
                                         ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {target}")
    else:
        sys.exit(1 if report() else 0)


if __name__ == "__main__":
    main()
