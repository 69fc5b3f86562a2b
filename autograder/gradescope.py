"""Gradescope: the autograder zip, and the grading of one submission in Gradescope's container.

    python -m autograder.gradescope build [--out build/gradescope]   (make gradescope)
    python -m autograder.gradescope grade [ROOT ...]                 (what run_autograder runs)

Gradescope's autograder format: a zip with `setup.sh` and `run_autograder` at its root.
Gradescope unpacks it into `/autograder/source/`, runs `setup.sh` once when it builds the
image, and for every submission puts the student's files in `/autograder/submission/`, runs
`/autograder/run_autograder` from `/autograder`, and reads `/autograder/results/results.json`.

The zip holds what grading needs and nothing else: the kit's package (`sdskit/`), the tiny
model and the visible references (`assets/`), the release notebook (`notebooks/`, where the
cells are found), the grading harness (`autograder/`, with the hidden references) and the pins
(`requirements.txt`). Gradescope keeps the zip from students. The solution notebook and the
generated example answers stay out.

Each submission is graded exactly as `autograder/grade.py` grades one student
(`grade.grade_student`: the same cell finding, the same sandboxed worker, the same checks).
results.json holds one Gradescope test per test cell (`Blank N: visible test`, `Blank N: hidden
test`), each with the student's message as its output; the hidden tests' results show only once
the grades are published. The written answers are not tests: the staff grade them as manually
graded questions of the same assignment, and the output says so. The flags go to the
submission's output and, for the staff, to `extra_data`. What the student reads is in the
language of the edition they handed in (a Korean notebook gets Korean names, messages and flags;
`extra_data` stays English). results.json is written whatever the submission does;
run_autograder writes a zero-point result that asks for a regrade if this program itself cannot
run.

GRADESCOPE_ROOT moves `/autograder` (for a test, or a trial run on any machine), and
GRADESCOPE_PYTHON picks the interpreter run_autograder uses (default: the environment that
setup.sh makes, ROOT/venv).
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from sdskit.config import COURSE
from sdskit.i18n import LANGUAGES, N_, tr_in
from sdskit.paths import ROOT

BLANK_NUMBERS = range(1, 8)  # the seven blanks; experiment N is test number 7 + N

# What of the repository goes into the zip (folders recursively), relative to ROOT, and what
# of those folders stays out: the generated answers and the solution notebook's reader.
CONTENTS = ("requirements.txt", "sdskit", "assets", "notebooks", "autograder")
LEFT_OUT = ("autograder/corpus.py", "autograder/submissions.py", "autograder/notebook_code.py")
SKIP = re.compile(r"(^|/)(__pycache__|\.ipynb_checkpoints)(/|$)|\.pyc$")
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed, so that the same kit makes the same zip

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
# It installs bubblewrap (the grading sandbox) and the kit's pinned packages, CPU builds,
# into /autograder/venv. The pins are those of requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq bubblewrap python3 python3-venv python3-pip

# The pins need Python 3.11 or newer (Ubuntu 24.04 has 3.12; 22.04 gets 3.11 from apt).
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        PYTHON="$candidate"
        break
    fi
done
if [ -z "$PYTHON" ]; then
    apt-get install -y -qq python3.11
    PYTHON=python3.11
fi
apt-get install -y -qq "$PYTHON-venv" >/dev/null 2>&1 || true

"$PYTHON" -m venv /autograder/venv
PIP="/autograder/venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
# torch from PyTorch's CPU index (no CUDA libraries), at the version requirements.txt pins.
$PIP install --quiet "$(grep -E '^torch==' requirements.txt)" \\
    --index-url https://download.pytorch.org/whl/cpu
$PIP install --quiet -r requirements.txt
/autograder/venv/bin/python -c "import torch, diffusers; print('torch', torch.__version__)"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades /autograder/submission/ and writes
# /autograder/results/results.json. GRADESCOPE_ROOT moves /autograder; GRADESCOPE_PYTHON picks
# the interpreter (default: the environment setup.sh made).
ROOT="${GRADESCOPE_ROOT:-/autograder}"
PYTHON="${GRADESCOPE_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT/source" && PYTHONPATH="$ROOT/source" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \\
    "$PYTHON" -m autograder.gradescope grade "$ROOT"
status=$?
if [ "$status" -ne 0 ] || [ ! -s "$RESULTS" ]; then
    # The grader itself could not run or was stopped: never leave the student without a result.
    cat > "$RESULTS" <<'EOF'
@GRADER_FAILED@
EOF
    echo "run_autograder: the grader exited with status $status; wrote a zero-point result"
fi
exit 0
"""

GRADER_FAILED = N_("The autograder could not grade this submission (an error in the grader, not "
                   "in your notebook). Your submission is saved; the course staff will grade it. "
                   "You may also resubmit.")
HAND_IN_HINT = N_("Hand in the notebook file itself, {notebook}: in Colab, File > Download > "
                  "Download .ipynb, then upload that file here.")


def _in_every_language(message: str) -> str:
    """Where the submission's language is unknown (the grader itself failed): each language's
    text, English first."""
    return "\n\n".join(tr_in(code, message) for code in LANGUAGES)


# ---------------------------------------------------------------------------------------
# Building the zip (instructor's machine).
# ---------------------------------------------------------------------------------------
def zip_members() -> list[Path]:
    """The kit's files that go into the zip, relative to ROOT, sorted."""
    members = []
    for entry in CONTENTS:
        path = ROOT / entry
        if not path.exists():
            raise SystemExit(f"error: {entry} is missing; run `make regenerate` first.")
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        members += [p.relative_to(ROOT) for p in files
                    if not SKIP.search(p.relative_to(ROOT).as_posix())
                    and p.relative_to(ROOT).as_posix() not in LEFT_OUT]
    return sorted(members)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16
    archive.writestr(info, data)


def build(out: Path) -> Path:
    """Write out/autograder.zip and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / "autograder.zip"
    with zipfile.ZipFile(target, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), executable=True)
        fallback = json.dumps(failed_json("run_autograder: the grader did not finish"))
        _add(archive, "run_autograder", RUN_AUTOGRADER.replace("@GRADER_FAILED@", fallback)
             .encode(), executable=True)
        for member in zip_members():
            _add(archive, member.as_posix(), (ROOT / member).read_bytes())
    return target


# ---------------------------------------------------------------------------------------
# Grading one submission (Gradescope's container).
# ---------------------------------------------------------------------------------------
def results_json(result) -> dict:
    """grade.py's StudentResult -> Gradescope's results.json, in the student's language: the
    automatic points only (one test per test cell). The written questions are manually graded
    questions of the same Gradescope assignment (docs/gradescope.md), so they are not
    tests here. Part 7's tests, with experiments = "bonus", are worth 0 and add their points
    to the score."""
    from autograder import gradebook, written
    from autograder.grade import is_bonus

    language = result.language
    notebook = (COURSE.notebooks[0] if language == "en"
                else COURSE.edition(COURSE.notebooks[0], language))
    tests = []
    for _, grade_id, score, maximum in result.cells:
        match = re.match(r"(blank|exp)(\d+)_(visible|hidden)$", grade_id)
        kind, unit, cases = match.groups() if match else ("blank", grade_id, "visible")
        # Experiments are numbered after the seven blanks (8, 9, 10), so they sort after them.
        number = unit if kind == "blank" else str(len(BLANK_NUMBERS) + int(unit))
        bonus = is_bonus(grade_id)  # worth 0 of the total, but its score adds to it
        name = gradebook.cell_label(grade_id, True, language) if match else grade_id
        if bonus:
            name += " (" + tr_in(language, "bonus") + ")"
        tests.append({
            "name": name,
            "number": f"{number}.{1 if cases == 'visible' else 2}",
            "score": score,
            "max_score": 0.0 if bonus else maximum,
            "output": result.messages_shown.get(grade_id,
                                                result.messages.get(grade_id, "")).strip(),
            "visibility": "after_published" if cases == "hidden" else "visible",
            **({"tags": ["bonus"]} if bonus else {}),
        })
    total = sum(test["score"] for test in tests)
    maximum = sum(test["max_score"] for test in tests)
    extra = sum(test["score"] for test in tests if "tags" in test)
    lines = [tr_in(language, "{notebook}: {total} of {maximum} points. Each blank has a visible "
                   "test and a hidden one; the hidden tests' results show once grades are "
                   "published.", notebook=notebook, total=format(total, "g"),
                   maximum=format(maximum, "g"))]
    if extra:
        lines.append(tr_in(language, "Of these, {bonus} are bonus points (Part 7).",
                           bonus=format(extra, "g")))
    asked = written.questions()
    if asked:
        lines.append(tr_in(language, "Your written answers ({titles}: {points} points) are graded "
                           "by hand, not here: the course staff adds their points to this "
                           "assignment.", titles=", ".join(q.title(language) for q in asked),
                           points=written.points_text(sum(q.points for q in asked))))
    notes = (result.flags_shown or result.flags) + (result.notes_shown or result.notes)
    if notes:
        lines += ["", tr_in(language, "Notes on your submission:")] + [f"- {n}" for n in notes]
    if any(note.endswith("0 points for it") for note in result.notes):
        lines += ["", tr_in(language, HAND_IN_HINT, notebook=notebook)]
    return {"score": total, "output": "\n".join(lines), "stdout_visibility": "hidden",
            "tests": tests, "extra_data": {"flags": result.flags, "notes": result.notes}}


def failed_json(error: str) -> dict:
    """results.json when grading itself failed: zero points, and a message that says so."""
    return {"score": 0, "stdout_visibility": "hidden", "tests": [],
            "output": _in_every_language(GRADER_FAILED),
            "extra_data": {"grader_error": error[-4000:]}}


def write_results(root: Path, results: dict) -> None:
    destination = root / "results" / "results.json"
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(temporary, destination)


def grade_roots(roots: list[Path]) -> None:
    """Grade ROOT/submission/ into ROOT/results/results.json for each root, with one warm
    grading worker (Gradescope passes one root; a local trial may pass several)."""
    from autograder import grade  # here, not above: building the zip needs none of it

    worker_box: list = [None]
    prepared = None
    try:
        for root in roots:
            started = time.monotonic()
            try:
                if prepared is None:
                    prepared = _prepare()
                points, release = prepared
                with tempfile.TemporaryDirectory() as scratch:
                    result = grade.grade_student(worker_box, root / "submission", points,
                                                 release, Path(scratch))
                results = results_json(result)
            except BaseException:  # noqa: BLE001 - the student must get a results.json
                print(traceback.format_exc(), flush=True)
                results = failed_json(traceback.format_exc())
            results["execution_time"] = round(time.monotonic() - started, 1)
            write_results(root, results)
            print(f"{root}: {results['score']:g} points; {results['output']}", flush=True)
    finally:
        if worker_box[0] is not None:
            worker_box[0].close()


def _prepare() -> tuple[dict, dict]:
    """What grade.grade() sets up before its students: the sandbox, the points, the release."""
    from autograder import grade, locate, sandbox

    kind = sandbox.sandbox_kind()
    grade.sandbox_kind_cache["kind"] = kind
    if kind == "none":
        print("warning: bubblewrap does not work in this container: grading runs each blank "
              "in a fresh process with rlimits, but without namespaces (docs/sandbox.md).",
              flush=True)
        grade.references_changed()  # the reference files' contents, to check after grading
    return grade.max_points(), locate.release_cells()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write OUT/autograder.zip")
    make.add_argument("--out", type=Path, default=ROOT / "build" / "gradescope")
    run = commands.add_parser("grade", help="grade ROOT/submission into ROOT/results")
    run.add_argument("roots", type=Path, nargs="*",
                     default=[Path(os.environ.get("GRADESCOPE_ROOT", "/autograder"))])
    args = parser.parse_args(argv)
    if args.command == "build":
        target = build(args.out)
        print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB): upload it as the "
              "assignment's autograder on Gradescope")
    else:
        grade_roots(args.roots)


if __name__ == "__main__":
    main()
