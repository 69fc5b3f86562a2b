"""Find anything in a folder that a student must not see: `find_leaks(folder)`.

The student bundle (scripts/make_student.py) is public, so before it is written, and in
`make test`, every file in it is searched for four kinds of secret:

1. **answers**: every line of every `### BEGIN SOLUTION` region in solutions/ (code, and the
   model answers of the "think about it" questions in every edition's translation too), the
   right-hand side of each answer line,
   the other correct ways of writing each blank that the grading corpus uses
   (autograder/submissions.py), and the known mistakes of each blank (autograder/mistakes.py:
   wrong code close to the answer). Whitespace is normalised; a secret counts whether it is a whole
   line or sits inside a longer one (a comment, a string, a message). What the release notebook
   itself shows a student (a blank's title, say) is public and not searched for.
2. **hidden tests**: the source of every `### BEGIN HIDDEN TESTS` region, and the lines in it
   that the release does not show.
3. **hidden data**: the hidden cases' tensors and case records (autograder/hidden_references.pt),
   compared by content: the raw bytes of every tensor are searched in every file, and every
   `.pt` file is loaded and searched for equal tensors and case dicts.
4. **instructor files**: any path under `solutions/` or `autograder/`, and any file whose
   content equals one of the instructor-only files (renamed copies included).

Each finding is a line "KIND: path: what".
"""

import hashlib
import json
import re
from pathlib import Path

import torch

from autograder import mistakes, submissions
from autograder.locate import grade_id, source
from sdskit.paths import HIDDEN_REFERENCES, NOTEBOOKS, ROOT, SOLUTIONS

_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.S | re.M)
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS",
                     re.S | re.M)
_ASSIGNMENT = re.compile(r"^[\w.\[\], ]+?\s*=\s*(.+)$")  # `lhs = rhs` -> rhs
MIN_SECRET = 6  # characters: shorter normalised fragments are too common to mean anything
TENSOR_PREFIX = 64  # bytes of each hidden tensor searched for in every file
INSTRUCTOR_FOLDERS = ("solutions", "autograder")


def _normal(text: str) -> str:
    """Whitespace collapsed, so that re-indented or re-wrapped copies still match."""
    return " ".join(text.split())


def _statement(line: str) -> bool:
    """True if the line is Python on its own (a whole statement or expression)."""
    try:
        compile(line.strip(), "<line>", "exec")
    except SyntaxError:
        return False
    return True


def _notebook_cells(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())["cells"]


def public_text() -> str:
    """Everything the release notebooks show a student, normalised: not a secret."""
    parts = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in _notebook_cells(path):
            parts.append(_normal(source(cell)))
    return "\n".join(parts)


def secret_texts() -> dict[str, str]:
    """{normalised secret: what it is}, minus what the release shows."""
    public = public_text()
    return {text: what for text, what in _secrets_before_public().items() if text not in public}


def _secrets_before_public() -> dict[str, str]:
    """{normalised secret: what it is}, everything the instructor's side holds."""
    secrets: dict[str, str] = {}

    def add(text: str, what: str, code: bool = False) -> None:
        """code: a single line counts only if it is a whole statement (not `device=x)`)."""
        if code and not _statement(text):
            return
        text = _normal(text)
        if len(text) >= MIN_SECRET:
            secrets.setdefault(text, what)

    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        name = path.name
        for cell in _notebook_cells(path):
            text = source(cell)
            cell_id = grade_id(cell) or "?"
            code = cell["cell_type"] == "code"
            for region in _SOLUTION.findall(text):
                add(region, f"answer in {name} cell {cell_id}")
                for line in region.splitlines():
                    add(line, f"answer line in {name} cell {cell_id}", code=code)
                    rhs = _ASSIGNMENT.match(line.strip())
                    if code and rhs:
                        add(rhs.group(1), f"answer expression in {name} cell {cell_id}", code=True)
            for region in _HIDDEN.findall(text):
                add(text, f"hidden test cell {cell_id} of {name}")
                add(region, f"hidden tests of {cell_id} in {name}")
                for line in region.splitlines():
                    add(line, f"hidden test line in {name} cell {cell_id}", code=True)
    for path in sorted(SOLUTIONS.rglob("*.md")):  # translations of the markdown cells
        for region in _SOLUTION.findall(path.read_text(encoding="utf-8")):
            add(region, f"model answer in {path.relative_to(SOLUTIONS)}")
            for line in region.splitlines():
                add(line, f"model answer line in {path.relative_to(SOLUTIONS)}")
    for blank, text in {**submissions.ALTERNATIVES,
                        **submissions.EXPERIMENT_ALTERNATIVES}.items():
        add(text, f"correct alternative for blank {blank}")
        for line in text.splitlines():
            add(line, f"correct alternative for blank {blank}", code=True)
    for mistake in mistakes.KNOWN:  # wrong code close to the answer (autograder/mistakes.py)
        what = f"known mistake {mistake.name!r} of blank {mistake.blank}"
        add(mistake.code, what)
        for line in mistake.code.splitlines():
            add(line, what, code=True)
    return secrets


# Answers the release shows on purpose: blank 1's title is its answer, and the DreamFusion branch
# of Part 7's sds_weight is the weight train_step itself computes (w(t) = 1 - abar_t).
SHOWN_ON_PURPOSE = ("super().__init__()", "1 - abar")


def answers_shown_by_release(titles: tuple[str, ...] = SHOWN_ON_PURPOSE) -> list[str]:
    """Code answers that the release notebooks' own text shows, other than those it shows on
    purpose (SHOWN_ON_PURPOSE). The leak search treats the release as public, so prose that
    spells out an answer would pass it; this names such prose."""
    public = public_text()
    shown = []
    for secret, what in _secrets_before_public().items():
        if what.startswith("answer") and secret not in titles and secret in public:
            shown.append(f"{what}: {secret!r}")
    return shown


def _walk(value, found: list) -> None:
    """Every tensor and every dict inside a loaded object."""
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, dict):
        found.append(value)
        for item in value.values():
            _walk(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, found)


def hidden_data() -> tuple[list[torch.Tensor], list[dict]]:
    """The hidden cases' tensors and the case records (dicts without tensors) they hold."""
    found: list = []
    _walk(torch.load(HIDDEN_REFERENCES, map_location="cpu", weights_only=True), found)
    # A tensor of one repeated value (the uniform weight's ones) tells nothing, and its bytes are
    # everywhere (a model's norm weights): only tensors with two values or more are searched.
    tensors = [t for t in found if isinstance(t, torch.Tensor) and t.numel() >= 4
               and not bool((t.flatten() == t.flatten()[0]).all())]
    cases = [d for d in found if isinstance(d, dict) and d
             and not any(isinstance(v, (torch.Tensor, dict)) for v in d.values())]
    return tensors, cases


def instructor_digests() -> dict[str, str]:
    """{sha256 of content: path} for every instructor-only file."""
    digests = {}
    for folder in INSTRUCTOR_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.stat().st_size > 0:
                digests[hashlib.sha256(path.read_bytes()).hexdigest()] = str(path.relative_to(ROOT))
    return digests


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def find_leaks(folder: Path) -> list[str]:
    """Every secret found in the files under `folder`, as "KIND: path: what" lines."""
    folder = Path(folder)
    secrets = secret_texts()
    tensors, cases = hidden_data()
    prefixes = [(t.contiguous().numpy().tobytes()[:TENSOR_PREFIX], tuple(t.shape)) for t in tensors]
    digests = instructor_digests()
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        where = path.relative_to(folder)
        if where.parts[0] in INSTRUCTOR_FOLDERS:
            leaks.append(f"instructor file: {where}: the {where.parts[0]}/ folder is instructor-only")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in digests:
            leaks.append(f"instructor file: {where}: a copy of {digests[digest]}")
        text = _normal(data.decode("utf-8", errors="ignore"))
        if path.suffix == ".ipynb":  # a notebook's JSON escapes quotes and newlines: search its cells
            try:
                text += "\n" + "\n".join(_normal(source(c)) for c in json.loads(data)["cells"])
            except (ValueError, KeyError, TypeError):
                pass
        for secret, what in secrets.items():
            if secret in text:
                leaks.append(f"answer or hidden test: {where}: {what}: {secret[:80]!r}")
        for prefix, shape in prefixes:
            if prefix in data:
                leaks.append(f"hidden data: {where}: the bytes of a hidden tensor of shape {list(shape)}")
        if path.suffix in (".pt", ".pth", ".bin"):
            leaks.extend(f"hidden data: {where}: {what}" for what in _hidden_in_pickle(path, tensors, cases))
    return leaks


def _hidden_in_pickle(path: Path, tensors: list, cases: list) -> list[str]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a torch file: its bytes were searched already
        return []
    found: list = []
    _walk(loaded, found)
    hits = []
    for value in found:
        if isinstance(value, torch.Tensor):
            if any(_same_tensor(value, t) for t in tensors):
                hits.append(f"a hidden tensor of shape {list(value.shape)}")
        elif value in cases:
            hits.append(f"a hidden case {value}")
    return hits
