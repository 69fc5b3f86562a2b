"""Run the code of a notebook's class and blank cells outside Jupyter.

The solution notebook is the single source of the reference implementation: the reference
tensors (scripts/make_references.py), the kit's own tests and the text-to-3D oracle all take
`StableDiffusion` from it through `solution_class()`, rather than from a second copy.
"""

import json
from pathlib import Path

from sdskit.paths import SOLUTIONS

# The cells that define the guidance class, by nbgrader grade_id, in notebook order.
CLASS_CELLS = ("imports", "blank1_2_class", "blank3_code", "blank4_code", "blank5_code",
               "blank6_code", "blank7_code")
# Part 7's cells, each defining one function (sdskit/experiment_checks.py grades them).
EXPERIMENT_CELLS = ("imports", "exp1_code", "exp2_code", "exp3_code")
SOLUTION_NOTEBOOK = SOLUTIONS / "sds_assignment.ipynb"


def cell_sources(path: Path, grade_ids=CLASS_CELLS) -> list[str]:
    """The sources of the code cells with these grade_ids, in notebook order."""
    notebook = json.loads(Path(path).read_text())
    sources = []
    for cell in notebook["cells"]:
        grade_id = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if cell["cell_type"] == "code" and grade_id in grade_ids:
            source = cell["source"]
            sources.append(source if isinstance(source, str) else "".join(source))
    if len(sources) != len(grade_ids):
        raise ValueError(f"{path} should have one code cell for each of {list(grade_ids)}, "
                         f"found {len(sources)}; was a cell deleted or its grade_id changed?")
    return sources


def run_cells(path: Path, grade_ids=CLASS_CELLS) -> dict:
    """Execute those cells in one fresh namespace and return it."""
    namespace: dict = {"__name__": "notebook_cells"}
    for source in cell_sources(path, grade_ids):
        exec(compile(source, f"<{Path(path).name}>", "exec"), namespace)  # noqa: S102
    return namespace


def solution_class():
    """`StableDiffusion` as the solution notebook defines it, every blank filled in."""
    return run_cells(SOLUTION_NOTEBOOK)["StableDiffusion"]


def solution_functions() -> dict:
    """Part 7's functions as the solution notebook defines them: {"sds_weight": ..., ...}."""
    namespace = run_cells(SOLUTION_NOTEBOOK, EXPERIMENT_CELLS)
    return {name: namespace[name] for name in ("sds_weight", "annealed_timestep", "csd_gradient")}
