"""Make the student notebooks: notebooks/ is what `nbgrader generate_assignment` makes of solutions/.

Each edition in another language (sdskit/config.py's `editions`) is made the same way from the
English solution notebook with its markdown translated (scripts/make_translation.py).

    python scripts/make_release.py              # regenerate notebooks/
    python scripts/make_release.py --out DIR    # write elsewhere (the drift test uses this)
    python scripts/make_release.py --nbgrader-source COURSE/source/sds [--edition ko]
                                                # the source for your own nbgrader course

Before that, the repository URL and branch from sdskit/config.py are written into the
solutions' setup cell, and the written questions' points (`written_points`) into their answer
cells' metadata (autograder/written.py), so that config.py stays the one place to set them.
"""

import sys
import argparse
import json
import shutil
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from autograder import course, written  # noqa: E402
from scripts import make_translation  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.i18n import tr  # noqa: E402
from sdskit.paths import NOTEBOOKS, SOLUTIONS  # noqa: E402


def source_notebook(notebook: str, language: str | None = None) -> dict:
    """A solution notebook as nbgrader's source should hold it: in the given edition (None:
    English), with the ungraded model answers cut (nbgrader refuses them; course.py)."""
    if language is None:
        source = json.loads((SOLUTIONS / notebook).read_text())
    else:
        path = make_translation.translation_file(notebook, language)
        stale = make_translation.problems(make_translation.read_notebook(notebook),
                                          make_translation.read_translation(path), str(path),
                                          language)
        if stale:
            print(f"note: {COURSE.edition(notebook, language)} has {len(stale)} translation "
                  "problems (`python scripts/make_translation.py` lists them); cells without a "
                  "translation stay in English")
        source = make_translation.edition_notebook(notebook, language)
    course.prepare_source(source, language or "en")
    return source


def write_source(folder: Path, language: str | None = None) -> list[Path]:
    """Write the nbgrader source notebooks of one edition into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in COURSE.notebooks:
        name = notebook if language is None else COURSE.edition(notebook, language)
        (folder / name).write_text(json.dumps(source_notebook(notebook, language), indent=1,
                                              ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(folder / name)
    return written


def make_release(out: Path) -> list[Path]:
    for name in COURSE.notebooks:
        if course.sync_setup_cell(SOLUTIONS / name):
            print(f"updated the setup cell of solutions/{name} from sdskit/config.py")
        if written.sync_points(SOLUTIONS / name):
            print(tr(written.SYNCED, name=name))
    with tempfile.TemporaryDirectory() as tmp:
        root = course.create(Path(tmp) / "course")
        for language in COURSE.editions:
            write_source(root / "source" / COURSE.assignment, language)
        release = course.generate_release(root)
        out.mkdir(parents=True, exist_ok=True)
        made = []
        for name in COURSE.released:
            shutil.copy(release / name, out / name)
            made.append(out / name)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=NOTEBOOKS)
    parser.add_argument("--nbgrader-source", type=Path, metavar="DIR",
                        help="instead, write the source notebook for your own nbgrader course "
                             "(ungraded model answers cut; the graded ones' are nbgrader's to "
                             "clear) into DIR, e.g. source/sds")
    parser.add_argument("--edition", choices=COURSE.editions, default=None,
                        help="with --nbgrader-source: a translated edition instead of English")
    args = parser.parse_args()
    if args.nbgrader_source is not None:
        paths = write_source(args.nbgrader_source, args.edition)
    else:
        paths = make_release(args.out)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
