"""Run notebooks top to bottom on the CPU, offline, as a student would: `run_notebooks.py DIR --out OUT`.

Exits non-zero, naming the cell, if any cell raises.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit.config import COURSE  # noqa: E402


def run(path: Path, out: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=COURSE.cell_timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / path.name)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for name in COURSE.notebooks:
        try:
            seconds = run(args.folder / name, args.out)
        except CellExecutionError as error:
            sys.exit(f"{args.folder / name} failed:\n{error}")
        print(f"ran {args.folder / name} in {seconds:.0f} s -> {args.out / name}")


if __name__ == "__main__":
    main()
