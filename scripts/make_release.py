"""Make the student notebooks: notebooks/ is what `nbgrader generate_assignment` makes of solutions/.

Each edition in another language (sdskit/config.py's `editions`) is made the same way from the
English solution notebook with its markdown translated (scripts/make_translation.py).

    python scripts/make_release.py              # regenerate notebooks/
    python scripts/make_release.py --out DIR    # write elsewhere (the drift test uses this)

Before that, the repository URL and branch from sdskit/config.py are written into the
solutions' setup cell, so that config.py stays the one place to set them.
"""

import sys
import argparse
import json
import shutil
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from autograder import course  # noqa: E402
from scripts import make_translation  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.paths import NOTEBOOKS, SOLUTIONS  # noqa: E402


def make_release(out: Path) -> list[Path]:
    for name in COURSE.notebooks:
        if course.sync_setup_cell(SOLUTIONS / name):
            print(f"updated the setup cell of solutions/{name} from sdskit/config.py")
    with tempfile.TemporaryDirectory() as tmp:
        root = course.create(Path(tmp) / "course")
        for notebook, language in make_translation.editions():
            name = COURSE.edition(notebook, language)
            path = make_translation.translation_file(notebook, language)
            stale = make_translation.problems(make_translation.read_notebook(notebook),
                                              make_translation.read_translation(path), str(path),
                                              language)
            if stale:
                print(f"note: {name} has {len(stale)} translation problems (`python "
                      "scripts/make_translation.py` lists them); cells without a translation "
                      "stay in English")
            edition = make_translation.edition_notebook(notebook, language)
            course.strip_model_answers(edition)  # as course.create does for the English
            (root / "source" / COURSE.assignment / name).write_text(
                json.dumps(edition, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        release = course.generate_release(root)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in COURSE.released:
            shutil.copy(release / name, out / name)
            written.append(out / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=NOTEBOOKS)
    args = parser.parse_args()
    for path in make_release(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
