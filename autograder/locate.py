"""Find a student's notebook and, in it, the cell that holds each blank.

Submissions come in every shape: saved by Colab (extra metadata, old nbformat, no cell ids),
renamed (`Copy of sds_assignment.ipynb`, `sds_assignment (1).ipynb`), with cells deleted,
duplicated, split, reordered or added, or not a notebook at all. Grading never trusts the
notebook's test cells or its order: it takes each blank's solution cell as text, found by its
nbgrader grade_id or, where that metadata is lost, by what the cell defines, and runs the kit's
own tests against it. Anything unusual becomes a flag: a short reason, in the student's terms.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sdskit.config import COURSE
from sdskit.i18n import joined, lazy
from sdskit.paths import NOTEBOOKS

NOTEBOOK = COURSE.notebooks[0]
# The names a submission may carry: the English notebook's and each edition's
# (sds_assignment_ko.ipynb). The editions share every code cell, so all are graded alike.
NAMES = COURSE.released

# The cell each blank lives in (by grade_id), and what that cell defines (to find it without
# its metadata). Blanks 1 and 2 share the class cell.
BLANK_CELLS = {1: "blank1_2_class", 2: "blank1_2_class", 3: "blank3_code", 4: "blank4_code",
               5: "blank5_code", 6: "blank6_code", 7: "blank7_code"}
SIGNATURES = {
    "blank1_2_class": re.compile(r"^class StableDiffusion\b", re.M),
    "blank3_code": re.compile(r"^def interpolate_latents\(", re.M),
    "blank4_code": re.compile(r"^def encode_rgb\(", re.M),
    "blank5_code": re.compile(r"^def sample_timestep\(", re.M),
    "blank6_code": re.compile(r"^def sds_gradient\(", re.M),
    "blank7_code": re.compile(r"^def sds_targets\(", re.M),
}
# The method each cell defines (the grader binds it to the class if the student's cell forgot).
METHODS = {"blank3_code": "interpolate_latents", "blank4_code": "encode_rgb",
           "blank5_code": "sample_timestep", "blank6_code": "sds_gradient",
           "blank7_code": "sds_targets"}


# Part 7 (sdskit/config.py's `experiments`): every cell whose grade_id starts with "exp".
# Each of its three graded functions is found like a blank, by grade_id or by what it defines.
EXPERIMENT_CELLS = {"exp1": "exp1_code", "exp2": "exp2_code", "exp3": "exp3_code"}
EXPERIMENT_SIGNATURES = {
    "exp1_code": re.compile(r"^def sds_weight\(", re.M),
    "exp2_code": re.compile(r"^def annealed_timestep\(", re.M),
    "exp3_code": re.compile(r"^def csd_gradient\(", re.M),
}
FUNCTIONS = {"exp1_code": "sds_weight", "exp2_code": "annealed_timestep",
             "exp3_code": "csd_gradient"}


def part7(grade_id: str) -> bool:
    """True for the cells of Part 7, the experiments."""
    return grade_id.startswith("exp")


def graded_signatures() -> dict:
    """grade_id -> what the cell defines, for every graded code cell the release has: the
    blanks' and, unless sdskit/config.py leaves Part 7 out, the experiments'."""
    released = {grade_id(c) for c in _release()}
    return {**SIGNATURES, **{gid: signature for gid, signature in EXPERIMENT_SIGNATURES.items()
                             if gid in released}}


def experiments_released() -> dict[str, str]:
    """{"exp1": "exp1_code", ...} for the experiments the release holds (none when off)."""
    released = {grade_id(c) for c in _release()}
    return {unit: gid for unit, gid in EXPERIMENT_CELLS.items() if gid in released}


# Code that can reach past the harness (interpreter internals, raw file descriptors, /proc):
# not forbidden, but worth a human look, since the tests run in the same process.
_INTROSPECTION = re.compile(r"sys\._getframe|_current_frames|\bgc\.get_\w+|\bctypes\b|"
                            r"/proc/|os\.write\(|os\.dup2?\(|\bf_back\b|\bf_locals\b|"
                            r"\bf_globals\b|__code__|\bptrace\b")
# Code that rebinds IPython's own machinery (how cells are transformed, how errors are shown
# or swallowed, what runs around a cell) or PyTorch's (its modes and dispatcher, a tensor's own
# __torch_function__): grading runs none of it for its verdict, so it gains nothing, but in a
# blank it can have only one purpose. Flagged for review wherever it is.
_MACHINERY = re.compile(r"\binput_transformers?_\w+|\binput_transformer_manager\b|"
                        r"\bset_custom_exc\b|\bshowtraceback\b|\bshowsyntaxerror\b|"
                        r"\bevents\.(?:register|unregister|trigger)\b|\bast_transformers\b|"
                        r"\bInteractiveShell\b|\bregister_magic_function\b|"
                        r"\b_showtraceback\b|\bcustom_exceptions\b|"
                        r"\b__torch_function__\b|\b__torch_dispatch__\b|\bTorch\w*Mode\b|"
                        r"\btorch\.library\b|\btorch\._C\.\w+|\bas_subclass\b")
# Code outside the blanks that would stop the kernel or hide the tests' failures in a plain
# nbgrader run. Grading never runs those cells, so it gains nothing; the flag says it was tried.
_AGAINST_THE_TESTS = re.compile(r"set_custom_exc|\bexcepthook\b|\bos\._exit\b|\bsys\.exit\b|"
                                r"\bos\.kill\b|^\s*(exit|quit)\(|\ballclose\s*=|"
                                r"\bassert_close\s*=", re.M)


def source(cell: dict) -> str:
    """A cell's text: a string, or a list of strings (anything else in a broken file: none)."""
    text = cell.get("source", "")
    if isinstance(text, list):
        return "".join(line for line in text if isinstance(line, str))
    return text if isinstance(text, str) else ""


def grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None


def _release() -> list[dict]:
    """The cells of the released notebook (the trusted copy)."""
    return json.loads((NOTEBOOKS / NOTEBOOK).read_text())["cells"]


def release_cells() -> dict[str, str]:
    """grade_id -> source of every cell of the released notebook."""
    return {grade_id(c): source(c) for c in _release() if grade_id(c)}


def release_code() -> set[str]:
    """The sources of the released notebook's code cells, with or without a grade_id."""
    return {source(c) for c in _release() if c.get("cell_type") == "code"}


def written_cells() -> set[str]:
    """The grade ids of the release's written answers: markdown cells graded by hand."""
    return {grade_id(c) for c in _release() if c.get("cell_type") == "markdown"
            and (c.get("metadata", {}).get("nbgrader") or {}).get("grade")}


def test_cells() -> dict[str, str]:
    """The release's test cells (graded code cells; a written answer is graded too, by hand)."""
    return {grade_id(c): source(c) for c in _release() if c.get("cell_type") == "code"
            and (c.get("metadata", {}).get("nbgrader") or {}).get("grade")}


@dataclass
class Located:
    """What grading needs from one submission."""

    path: Path | None = None
    cells: dict[str, str] = field(default_factory=dict)  # grade_id -> the student's source
    missing: dict[str, str] = field(default_factory=dict)  # grade_id -> why it was not found
    # short reasons, for grades.csv and feedback: catalogue messages (sdskit/i18n.py's lazy),
    # which grade.py words in English for the staff and in the student's language for them
    flags: list = field(default_factory=list)
    fatal: object = None  # set when nothing can be graded (a message, as the flags)


def _normal_name(name: str) -> str:
    """`Copy of sds_assignment (1).ipynb` -> `sds_assignment.ipynb`; Colab and Drive in Korean
    name copies `sds_assignment_ko.ipynb의 사본` and `사본 - sds_assignment_ko.ipynb`."""
    stem = Path(name).stem
    stem = re.sub(r"^(copy of |copie de |kopie von |사본 ?- ?)+", "", stem, flags=re.I)
    stem = re.sub(r"(\.ipynb)?[ _]?의[ _]?사본$", "", stem)
    stem = re.sub(r"(\s*\(\d+\)|[ _-]copy|[ _-]\d+)+$", "", stem, flags=re.I)
    return stem.strip().lower() + ".ipynb"


def find_notebook(student_dir: Path, located: Located) -> Path | None:
    exact = [student_dir / name for name in NAMES if (student_dir / name).is_file()]
    candidates = sorted(p for p in student_dir.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts and p.is_file())
    similar = [p for p in candidates if _normal_name(p.name) in NAMES]
    if exact:
        # Both editions handed in: the one saved last (on a tie, the English).
        chosen = max(exact, key=lambda p: (p.stat().st_mtime, -exact.index(p)))
        if len(similar) > 1:
            located.flags.append(lazy("{count} copies of the notebook were handed in: graded "
                                      "{name}", count=len(similar), name=chosen.name))
        return chosen
    if similar:
        chosen = max(similar, key=lambda p: (p.stat().st_mtime, p.name))
        located.flags.append(lazy("notebook renamed: graded '{name}'",
                                  name=str(chosen.relative_to(student_dir))))
        if len(similar) > 1:
            located.flags.append(lazy("{count} copies of the notebook were handed in: graded "
                                      "the newest", count=len(similar)))
        return chosen
    if len(candidates) == 1:
        located.flags.append(lazy("notebook renamed: graded '{name}'",
                                  name=str(candidates[0].relative_to(student_dir))))
        return candidates[0]
    return None


def locate(student_dir: Path) -> Located:
    located = Located()
    path = find_notebook(student_dir, located)
    if path is None:
        located.fatal = lazy("{notebook} is missing", notebook=NOTEBOOK)
        located.flags.append(lazy("no notebook: {notebook} is missing, 0 points",
                                  notebook=NOTEBOOK))
        return located
    located.path = path
    try:
        notebook = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
        cells = notebook["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except Exception as error:  # noqa: BLE001 - every unreadable file is reported the same way
        located.fatal = lazy("{name} is not a readable notebook ({error})", name=path.name,
                             error=type(error).__name__)
        located.flags.append(lazy("not a readable notebook (not valid JSON): 0 points"))
        return located
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    by_id: dict[str, list[dict]] = {}
    for cell in code:
        by_id.setdefault(grade_id(cell), []).append(cell)
    lost, duplicated = [], []
    for gid, signature in graded_signatures().items():
        tagged = by_id.get(gid, [])
        if tagged:
            # A cell split in Jupyter keeps its metadata on both halves: take the half that
            # defines the blank; of true duplicates, the last one (what "run all" keeps).
            defining = [c for c in tagged if signature.search(source(c))] or tagged
            if len(tagged) > 1:
                duplicated.append(gid)
            located.cells[gid] = source(defining[-1])
            continue
        found = [c for c in code if signature.search(source(c))]
        if found:
            located.cells[gid] = source(found[-1])
            lost.append(gid)
        else:
            located.missing[gid] = "its cell was deleted (no cell defines it)"
    if all(gid in located.missing for gid in SIGNATURES):
        located.fatal = lazy("this notebook is not the SDS assignment")
        located.flags.append(lazy("wrong notebook: it holds none of the SDS assignment's "
                                  "blanks, 0 points"))
        return located
    if lost:
        located.flags.append(lazy("grading labels missing: the notebook lost the hidden labels "
                                  "that mark its cells (Colab and some editors drop them), so "
                                  "each answer was found by its code; nothing to fix"))
    if duplicated:
        located.flags.append(lazy("duplicated or split cells: graded the last copy of each"))
    if located.missing:
        numbers = sorted({b for b, g in BLANK_CELLS.items() if g in located.missing})
        names = joined([*(lazy("blank {number}", number=b) for b in numbers),
                        *(lazy("experiment {number}", number=u[3:])
                          for u, g in EXPERIMENT_CELLS.items() if g in located.missing)])
        located.flags.append(lazy("cell deleted for {blanks}: 0 points for it", blanks=names))
    reaching = sorted({m.group(0) for text in located.cells.values()
                       for m in _INTROSPECTION.finditer(text)})
    if reaching:
        located.flags.append(lazy("review: the code reaches into the interpreter or the grader "
                                  "({found})", found=", ".join(reaching[:4])))
    machinery = sorted({m.group(0) for text in located.cells.values()
                        for m in _MACHINERY.finditer(text)})
    if machinery:
        located.flags.append(lazy("review: the code uses IPython's or PyTorch's internals "
                                  "({found}); grading does not rely on them",
                                  found=", ".join(machinery[:4])))
    released = release_code()
    others = [source(c) for c in code
              if source(c) not in released and source(c) not in located.cells.values()]
    against = sorted({m.group(0).strip() for text in others
                      for pattern in (_AGAINST_THE_TESTS, _MACHINERY)
                      for m in pattern.finditer(text)})
    if against:
        located.flags.append(lazy("review: cells outside the blanks try to stop or bypass the "
                                  "tests ({found}); grading does not run them",
                                  found=", ".join(against[:4])))
    # A test cell counts as changed only if its text is gone: with the labels lost, the
    # unchanged tests are still there, unlabelled.
    present = {source(c).strip() for c in code}
    if any(text.strip() not in present for text in test_cells().values()):
        located.flags.append(lazy("test cells were edited or deleted: the original tests were "
                                  "used"))
    return located
