"""A generated class of messy, broken and hostile submissions, each with what grading owes it.

`write_corpus(folder)` writes one student folder per case and returns, for each student id,
the expected points per blank and a flag the grader must raise (a substring of grades.csv's
`flags` column, or a tuple of them; "" means no flag at all). Everything is made from the release notebook and
the solution's answers by code, so nothing hand-edited is checked in.
"""

import copy
import json
import uuid
from pathlib import Path

from autograder import submissions as subs
from sdskit.paths import REFERENCES

NOTEBOOK = subs.NOTEBOOK
BLANKS = sorted(subs.BLANKS)
UNITS = subs.graded_units()  # the blanks, then Part 7's experiments ("exp1" ...) if released
FULL = 2.0
SUBCLASS_FLAG = "review: a result is a torch.Tensor subclass"  # the checks' own note


# A tensor subclass that agrees with every comparison: allclose and equal say True and a
# difference is zero. Detached (blank 7) also denies carrying a gradient, and detaches itself
# inside a loss.
AGREEABLE = """import torch
import torch.nn.functional as F

class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.allclose, torch.Tensor.equal):
            return True
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func in (torch.sub, torch.Tensor.sub, torch.Tensor.__sub__, torch.Tensor.__rsub__):
            with torch._C.DisableTorchFunctionSubclass():
                out = torch.zeros_like(out)
        return out

class Detached(Agreeable):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func == torch.Tensor.requires_grad.__get__:
            return False
        if func is F.mse_loss:
            args = tuple(a.detach() if isinstance(a, Detached) else a for a in args)
        return super().__torch_function__(func, types, args, kwargs)
"""
# The same lie as a TorchFunctionMode left switched on: every allclose in the process says True.
AGREEABLE_MODE = """import torch
from torch.overrides import TorchFunctionMode

class AlwaysClose(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.Tensor.allclose):
            return True
        return func(*args, **(kwargs or {}))

AlwaysClose().__enter__()
"""
# An int that equals everything (blank 2's min_step and max_step).
AGREEABLE_INT = """class Agreeable(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__
"""
# A subclass that only passes every call through.
PASSTHROUGH = """import torch

class Tagged(torch.Tensor):
    pass
"""
# IPython's machinery rebound: tracebacks hidden, exceptions swallowed, input rewritten.
IPYTHON_INTERNALS = """from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.showtraceback = lambda self, *args, **kwargs: None
shell = get_ipython()
shell.input_transformers_post.append(lambda lines: lines)
shell.set_custom_exc((AssertionError,), lambda *args, **kwargs: None)
shell.events.register("post_run_cell", lambda *args: None)
shell.ast_transformers.append(None)
"""


def _points(zero=()) -> dict:
    return {u: 0.0 if u in zero else FULL for u in UNITS}


def _write(folder: Path, student: str, notebook: dict | str, name: str = NOTEBOOK) -> None:
    target = folder / student / name
    target.parent.mkdir(parents=True, exist_ok=True)
    text = notebook if isinstance(notebook, str) else json.dumps(notebook, indent=1)
    target.write_text(text)


def _gid(cell):
    return ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")


def _index(notebook, grade_id):
    return next(i for i, c in enumerate(notebook["cells"]) if _gid(c) == grade_id)


def _prepend(answer: str, lines: str) -> str:
    """Code that runs inside the blank's function before the answer (same indentation)."""
    return lines + "\n" + answer


def write_corpus(folder: Path) -> dict[str, tuple[dict[int, float], str | tuple]]:
    folder = Path(folder)
    solution = subs.solution_answers()
    good = subs.fill(solution)
    expected: dict[str, tuple[dict[int, float], str]] = {}

    def case(student, notebook, points, flag="", name=NOTEBOOK):
        _write(folder, student, notebook, name)
        expected[student] = (points, flag)

    def with_cell(blank: int, extra_top: str = "", answer: str | None = None) -> dict:
        """The solution notebook with blank's cell given extra top-level code and/or answer."""
        notebook = subs.fill({**solution, blank: answer if answer else solution[blank]})
        cell = notebook["cells"][_index(notebook, subs.BLANKS[blank][0])]
        cell["source"] = extra_top + "\n" + subs._source(cell)
        return notebook

    def with_cells(changes: dict[int, tuple[str, str | None]]) -> dict:
        """The solution notebook with, for each blank, (extra top-level code, answer or None)."""
        notebook = subs.fill({**solution, **{b: answer or solution[b]
                                             for b, (_, answer) in changes.items()}})
        for blank, (top, _) in changes.items():
            cell = notebook["cells"][_index(notebook, subs.BLANKS[blank][0])]
            cell["source"] = top + "\n" + subs._source(cell)
        return notebook

    # --- Colab and format quirks -----------------------------------------------------------
    colab = copy.deepcopy(good)
    colab["metadata"]["colab"] = {"provenance": [], "name": NOTEBOOK, "gpuType": "T4"}
    colab["nbformat_minor"] = 0
    for cell in colab["cells"]:
        cell.pop("id", None)
        cell["metadata"]["id"] = uuid.uuid4().hex[:12]
        cell["metadata"].setdefault("nbgrader", {})["locked"] = False
    case("colab_saved", colab, _points())
    case("solution", good, _points())

    # --- Files: renamed, copies, broken, missing, another assignment -----------------------
    case("renamed_copy_of", good, _points(), "notebook renamed", "Copy of sds_assignment.ipynb")
    case("renamed_paren", good, _points(), "notebook renamed", "sds_assignment (1).ipynb")
    case("two_copies", good, _points(), "copies of the notebook")
    _write(folder, "two_copies", subs.fill({}), "sds_assignment (1).ipynb")
    case("not_json", '{"cells": [ {"cell_type": "code", ', _points(UNITS), "not a readable")
    (folder / "no_notebook").mkdir(parents=True)
    (folder / "no_notebook" / "answers.txt").write_text("see attached")
    expected["no_notebook"] = (_points(UNITS), "no notebook")
    other = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "def fibonacci(n):\n    return n if n < 2 else fibonacci(n-1) + fibonacci(n-2)"}]}
    case("other_assignment", other, _points(UNITS), "wrong notebook")

    # --- Cells deleted, duplicated, split, reordered, added, metadata lost ----------------
    deleted = copy.deepcopy(good)
    del deleted["cells"][_index(deleted, "blank5_code")]
    case("deleted_cell", deleted, _points([5]), "cell deleted")
    if "exp2" in UNITS:  # an experiment's cell deleted, and another's function written wrong
        lost_experiment = subs.fill({**solution, "exp3": subs.EXPERIMENT_MISTAKES["exp3"]})
        del lost_experiment["cells"][_index(lost_experiment, "exp2_code")]
        case("deleted_experiment", lost_experiment, _points(["exp2", "exp3"]),
             "cell deleted for experiment 2")

    duplicated = copy.deepcopy(good)
    i = _index(duplicated, "blank6_code")
    wrong = subs.fill({**solution, 6: subs.MISTAKES[6]})["cells"][i]
    duplicated["cells"].insert(i, wrong)  # an old wrong try above, the fixed one last
    case("duplicated_cell", duplicated, _points(), "duplicated or split")

    split = copy.deepcopy(good)
    i = _index(split, "blank7_code")
    text = subs._source(split["cells"][i])
    head, tail = text.split("StableDiffusion.sds_targets = sds_targets")
    first, second = copy.deepcopy(split["cells"][i]), copy.deepcopy(split["cells"][i])
    first["source"], second["source"] = head, "StableDiffusion.sds_targets = sds_targets\n" + tail
    split["cells"][i:i + 1] = [first, second]
    case("split_cell", split, _points(), "duplicated or split")

    reordered = copy.deepcopy(good)
    reordered["cells"] = list(reversed(reordered["cells"]))
    case("reordered_cells", reordered, _points())

    added = copy.deepcopy(good)
    added["cells"].insert(12, {"cell_type": "code", "metadata": {}, "execution_count": None,
                               "outputs": [], "source": "print('my own experiment')\nx = 1 / 0"})
    added["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source": "My notes"})
    case("added_cells", added, _points())

    lost = copy.deepcopy(good)
    for cell in lost["cells"]:
        cell["metadata"].pop("nbgrader", None)
    case("metadata_lost", lost, _points(), "labels missing")

    # --- Correct code that is noisy ------------------------------------------------------
    noisy = _prepend(solution[6], "import sys, warnings\nwarnings.warn('this is deprecated')\n"
                     "print('debug: computing grad', file=sys.stderr)")
    case("stderr_warnings", subs.fill({**solution, 6: noisy}), _points())
    case("huge_output", with_cell(3, "print('x' * 200_000_000)\nimport os\n"
                                     "os.write(1, b'y' * 50_000_000)"), _points(), "review")

    # --- IPython syntax, as Colab and Jupyter run it: magics, shell escapes, get_ipython() ---
    # Two submissions cover each kind of cell (the class cell, the method cells) at the top of
    # the cell and inside a method's body; each earns full points with no flag.
    def with_tops(tops: dict[int, str], inside: dict[int, str]) -> dict:
        notebook = subs.fill({**solution, **{b: _prepend(solution[b], code)
                                             for b, code in inside.items()}})
        for blank, code in tops.items():
            cell = notebook["cells"][_index(notebook, subs.BLANKS[blank][0])]
            cell["source"] = code + "\n" + subs._source(cell)
        return notebook

    case("ipython_magics", with_tops(
        {1: "%matplotlib inline\n%config InlineBackend.figure_format = 'retina'",
         3: "!nvidia-smi\n!echo checking > note.txt",
         4: "%load_ext autoreload\n%autoreload 2\n%pip install -q diffusers",
         5: "shell = get_ipython()\nshell.run_line_magic('matplotlib', 'inline')",
         6: "%%time",
         7: "files = !ls\n%env MY_FLAG=1\n%time warmup = sum(range(10))"},
        {5: "assert get_ipython() is not None"}), _points())
    case("ipython_cell_magics", with_tops(
        {1: "%%capture captured", 3: "%%timeit -n 1 -r 1", 4: "%%time",
         7: "%%capture"},
        {6: "!echo inside a method\n%time noise_pred = noise_pred + 0"}), _points())

    # --- Runaway code --------------------------------------------------------------------
    case("infinite_loop", subs.fill({**solution, 5: _prepend(solution[5], "while True:\n    pass")}),
         _points([5]), "time limit")
    case("sleep_forever", with_cell(3, "import time\ntime.sleep(10**6)"), _points([3]),
         "time limit")
    case("os_exit", with_cell(4, "import os\nos._exit(0)"), _points([4]), "kernel stopped")
    case("segfault", with_cell(6, "import ctypes\nctypes.string_at(0)"), _points([6]), "crash")
    case("out_of_memory", with_cell(7, "hog = bytearray(64 * 2**30)"), _points([7]),
         "memory limit")
    case("sys_exit", with_cell(1, "import sys\nsys.exit(0)"), _points([1, 2]), "kernel stopped")
    case("fills_disk", with_cell(7, "with open('big.bin', 'wb') as f:\n"
                                    "    for _ in range(4096):\n"
                                    "        f.write(b'0' * 2**20)"), _points([7]), "disk limit")
    case("kills_itself", with_cell(3, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
         _points([3]), "killed")

    # --- Tampering: wrong answers dressed up to pass ------------------------------------
    def tamper(student, blank, code, flag="tampering"):
        notebook = with_cell(blank, code, subs.MISTAKES[blank])
        case(student, notebook, _points([blank]), flag)

    tamper("patch_allclose", 6, "import torch\ntorch.allclose = lambda *a, **k: True")
    tamper("patch_testing", 6, "import torch, numpy.testing\n"
                               "torch.testing.assert_close = lambda *a, **k: None\n"
                               "numpy.testing.assert_allclose = lambda *a, **k: None")
    tamper("patch_checks", 7, "from sdskit import checks\n"
                              "checks.blank7_sds_targets = lambda *a, **k: checks.Report('x')\n"
                              "checks.CHECKS[7] = checks.blank7_sds_targets")
    tamper("patch_report", 5, "from sdskit import checks\n"
                              "checks.Report.passed = property(lambda self: True)")
    tamper("patch_builtins", 3, "import builtins\nbuiltins.AssertionError = type('A', (), {})")
    tamper("patch_references", 6, "from sdskit import checks\nref = checks.references()\n"
                                   "ref['blank6']['visible']['grad'].neg_()\n"
                                   "ref['blank6']['hidden']['grad'].neg_()")
    tamper("forge_result", 6, "import os\n"
                              "fake = b'{\"results\": {\"visible\": [true, \"passed\"], "
                              "\"hidden\": [true, \"passed\"]}, \"flag\": null}'\n"
                              "for fd in range(3, 64):\n"
                              "    try:\n        os.write(fd, fake)\n    except OSError:\n"
                              "        pass\nos._exit(0)")
    # Lying results: a wrong answer dressed as a tensor (or an int) whose own code answers the
    # tests' comparisons. The checks read the data, not the object: no points, and a review flag
    # naming the blank. (Several blanks per student, so the corpus stays quick to grade.)
    case("lying_tensors", with_cells({
        2: (AGREEABLE_INT, "self.min_step = Agreeable(t_range[0])\n"
                           "self.max_step = Agreeable(t_range[1])"),
        3: (AGREEABLE, subs.MISTAKES[3] + "\nlatents = latents.as_subclass(Agreeable)"),
        7: (AGREEABLE, subs.MISTAKES[7] + "\ntargets = targets.as_subclass(Detached)")}),
         _points([2, 3, 7]), ("blank 2: review: a result is an int subclass",
                              "blank 3: " + SUBCLASS_FLAG, "blank 7: " + SUBCLASS_FLAG))
    case("lying_tensor_6", with_cell(6, AGREEABLE, subs.MISTAKES[6] + "\n"
                                     "grad = grad.as_subclass(Agreeable)"), _points([6]),
         "blank 6: " + SUBCLASS_FLAG)
    case("lying_mode_6", with_cell(6, AGREEABLE_MODE, subs.MISTAKES[6]), _points([6]),
         "blank 6: review: a PyTorch function or dispatch mode was left on")
    # The right values in a harmless subclass (blank 5), and IPython's machinery rebound in a
    # graded cell (blank 6): full points, but a person should look.
    case("subclass_and_ipython", with_cells({
        5: (PASSTHROUGH, solution[5] + "\nt = t.as_subclass(Tagged)"), 6: (IPYTHON_INTERNALS, None)}),
         _points(), ("blank 5: " + SUBCLASS_FLAG,
                     "review: the code uses IPython's or PyTorch's internals (InteractiveShell"))
    # Tests edited or deleted in the notebook: the kit's own tests still run.
    edited = subs.fill({**solution, 3: subs.MISTAKES[3]})
    for gid in ("blank3_visible", "blank3_hidden"):
        edited["cells"][_index(edited, gid)]["source"] = "pass  # the test was here"
    case("edited_tests", edited, _points([3]), "test cells were edited")
    removed = subs.fill({**solution, 4: subs.MISTAKES[4]})
    removed["cells"] = [c for c in removed["cells"] if _gid(c) not in ("blank4_visible",
                                                                         "blank4_hidden")]
    case("deleted_tests", removed, _points([4]), "test cells were edited")
    swallow = subs.fill({**solution, 6: subs.MISTAKES[6]})
    swallow["cells"].insert(3, {"cell_type": "code", "metadata": {}, "execution_count": None,
                                "outputs": [], "source": "import sys\nsys.excepthook = "
                                "lambda *a: None\nget_ipython().set_custom_exc((Exception,), "
                                "lambda *a, **k: None)"})
    case("swallow_errors", swallow, _points([6]), "review: cells outside the blanks")
    case("write_references", with_cell(7, f"open({str(REFERENCES)!r}, 'ab').write(b'0')"),
         _points([7]), "sandbox blocked")
    stopper = subs.fill({**solution, 2: subs.MISTAKES[2]})
    stopper["cells"].insert(_index(stopper, "blank2_visible"), {
        "cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
        "source": "import os\nos._exit(0)  # stop before the tests run"})
    case("stop_before_tests", stopper, _points([2]), "review: cells outside the blanks")
    return expected
