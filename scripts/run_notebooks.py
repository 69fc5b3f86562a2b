"""Run notebooks top to bottom on the CPU, offline, as a student would: `run_notebooks.py DIR --out OUT`.

Exits non-zero, naming the cell, if any cell raises.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit.config import COURSE  # noqa: E402
from sdskit.paths import ROOT  # noqa: E402


def run(path: Path, out: Path) -> float:
    """Execute `path` with OUT as its working folder (what it writes lands there), save it to OUT."""
    notebook = nbformat.read(path, as_version=4)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=COURSE.cell_timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(out)}}).execute()
    nbformat.write(notebook, out / path.name)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # The kernel finds the kit through PYTHONPATH, whatever folder it runs in.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for name in COURSE.notebooks:
        try:
            seconds = run(args.folder / name, args.out)
        except CellExecutionError as error:
            sys.exit(f"{args.folder / name} failed:\n{error}")
        print(f"ran {args.folder / name} in {seconds:.0f} s -> {args.out / name}")


if __name__ == "__main__":
    main()
