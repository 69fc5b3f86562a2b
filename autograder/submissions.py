"""Make student submissions from the release notebook: for the demo and the grading tests.

A submission is the released notebook with each blank's `# YOUR CODE HERE` stub replaced by
some answer: the solution's own lines, another correct way of writing them, a typical
mistake, or nothing (the stub stays). Generated, so nothing hand-edited is checked in.
"""

import copy
import json
import re
from pathlib import Path

from sdskit.paths import NOTEBOOKS, SOLUTIONS

NOTEBOOK = "sds_assignment.ipynb"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_STUB_LINES = re.compile(r"^([ \t]*)# YOUR CODE HERE\n\1raise NotImplementedError\(\)\n?", re.M)
_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n?", re.S | re.M)

# Where each blank is: (grade_id of its cell, which solution region in that cell).
BLANKS = {
    1: ("blank1_2_class", 0),
    2: ("blank1_2_class", 1),
    3: ("blank3_code", 0),
    4: ("blank4_code", 0),
    5: ("blank5_code", 0),
    6: ("blank6_code", 0),
    7: ("blank7_code", 0),
}
# Part 7's three functions, by experiment (absent from a release made with experiments = "off").
EXPERIMENTS = {"exp1": ("exp1_code", 0), "exp2": ("exp2_code", 0), "exp3": ("exp3_code", 0)}
REGIONS = {**BLANKS, **EXPERIMENTS}

# Other correct ways of writing each blank: every one must earn full points.
ALTERNATIVES = {
    1: "super(StableDiffusion, self).__init__()",
    2: "self.min_step = int(t_range[0] * self.num_train_timesteps)\n"
       "self.max_step = int(t_range[1] * self.num_train_timesteps)",
    3: "latents = F.interpolate(pred_rgb, (64, 64), mode='bilinear', align_corners=False) * 2 - 1",
    4: "pred_rgb_512 = F.interpolate(pred_rgb, (512, 512), mode='bilinear')\n"
       "latents = self.encode_imgs(pred_rgb_512)",
    5: "t = torch.randint(self.min_step, self.max_step + 1, (batch_size,), dtype=torch.long,\n"
       "                  device=self.device)",
    6: "grad = w * noise_pred - w * noise",
    7: "targets = latents.detach() - grad",
}

# Other correct ways of writing each experiment's function.
EXPERIMENT_ALTERNATIVES = {
    "exp1": "weights = {'dreamfusion': 1 - abar, 'uniform': abar * 0 + 1,\n"
            "           'fantasia3d': abar ** 0.5 * (1 - abar)}\n"
            "if kind not in weights:\n"
            "    raise ValueError(f'no weighting called {kind}')\n"
            "w = weights[kind]",
    "exp2": "t = int(max_step - (max_step - min_step) * step / (total_steps - 1))",
    "exp3": "grad = w * noise_pred_cond - w * noise_pred_uncond",
}

# A typical mistake for each experiment's function: each must lose exactly its own points.
# Experiment 1's makes the uniform weight on the CPU: right values, wrong device on a GPU.
EXPERIMENT_MISTAKES = {
    "exp1": "if kind == 'dreamfusion':\n    w = 1 - abar\nelif kind == 'uniform':\n"
            "    w = torch.ones(abar.shape[0])\nelif kind == 'fantasia3d':\n"
            "    w = abar.sqrt() * (1 - abar)\nelse:\n    raise ValueError(kind)",
    "exp2": "t = round(max_step - (max_step - min_step) * step / total_steps)",
    "exp3": "grad = w * (noise_pred_uncond - noise_pred_cond)",
}

# A typical mistake for each blank: each must lose exactly that blank's points.
MISTAKES = {
    1: "pass  # forgot to initialise nn.Module",
    2: "self.min_step = t_range[0]\nself.max_step = t_range[1]",
    3: "latents = F.interpolate(pred_rgb, size=(64, 64), mode='bilinear', align_corners=False)",
    4: "latents = self.encode_imgs(pred_rgb)",
    5: "t = torch.randint(self.min_step, self.max_step, (1,), device=self.device)",
    6: "grad = w * (noise - noise_pred)",
    7: "targets = latents - grad",
}


def _cells_by_id(notebook: dict) -> dict:
    return {(c.get("metadata", {}).get("nbgrader") or {}).get("grade_id"): c
            for c in notebook["cells"]}


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def solution_answers() -> dict:
    """Each blank's lines (keys 1 ... 7) and each experiment's ("exp1" ... "exp3") as the
    solution notebook writes them (without indentation)."""
    solutions = json.loads((SOLUTIONS / NOTEBOOK).read_text())
    cells = _cells_by_id(solutions)
    answers = {}
    for blank, (grade_id, index) in REGIONS.items():
        indent, body = _REGION.findall(_source(cells[grade_id]))[index]
        answers[blank] = "\n".join(line[len(indent):] for line in body.rstrip("\n").split("\n"))
    return answers


def fill(answers: dict, release: Path = NOTEBOOKS / NOTEBOOK,
         written: dict[str, str] | None = None) -> dict:
    """The release notebook with blank k's stub replaced by answers[k] (None: left empty),
    each experiment's ("exp1" ...) by answers["exp1"] where the release has Part 7, and each
    written question's YOUR ANSWER HERE by written[grade_id] (where given)."""
    notebook = copy.deepcopy(json.loads(Path(release).read_text()))
    cells = _cells_by_id(notebook)
    for grade_id, text in (written or {}).items():
        cells[grade_id]["source"] = _source(cells[grade_id]).replace("YOUR ANSWER HERE", text)
    for grade_id in {g for g, _ in REGIONS.values()}:
        if grade_id not in cells:  # Part 7 left out (sdskit/config.py)
            continue
        cell = cells[grade_id]
        pieces = _STUB_LINES.split(_source(cell))
        # pieces: text, indent0, text, indent1, text, ...
        regions = [key for key in REGIONS if REGIONS[key][0] == grade_id]
        out = pieces[0]
        for number, blank in enumerate(regions):
            indent = pieces[1 + 2 * number]
            answer = answers.get(blank)
            text = STUB if answer is None else answer
            out += "".join(indent + line + "\n" for line in text.split("\n"))
            out += pieces[2 + 2 * number]
        cell["source"] = out
    return notebook


def write_submission(folder: Path, student_id: str, answers: dict[int, str | None],
                     release: Path = NOTEBOOKS / NOTEBOOK) -> Path:
    """Write `folder/student_id/sds_assignment.ipynb` (or another release notebook, such as the
    Korean edition's, under its own name) and return its path."""
    target = Path(folder) / student_id / Path(release).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(fill(answers, release), indent=1, ensure_ascii=False) + "\n",
                      encoding="utf-8")
    return target


def graded_units(release: Path = NOTEBOOKS / NOTEBOOK) -> list:
    """The blanks, then the experiments the release holds: [1, ..., 7, "exp1", ...]."""
    cells = _cells_by_id(json.loads(Path(release).read_text()))
    return [*BLANKS, *(unit for unit, (gid, _) in EXPERIMENTS.items() if gid in cells)]


def example_class(folder: Path) -> dict[str, dict]:
    """The demo's three students: complete, partly wrong (blanks 3, 5, 7 and experiment 2),
    blank. Returns the expected points per blank and per experiment for each (2 each: visible
    + hidden test)."""
    solution = solution_answers()
    partly = {**solution, 5: MISTAKES[5], 7: MISTAKES[7], 3: None,
              "exp2": EXPERIMENT_MISTAKES["exp2"]}
    write_submission(folder, "complete", solution)
    write_submission(folder, "partly_wrong", partly)
    write_submission(folder, "blank", {})
    units = graded_units()
    return {
        "complete": {u: 2.0 for u in units},
        "partly_wrong": {u: 0.0 if u in (3, 5, 7, "exp2") else 2.0 for u in units},
        "blank": {u: 0.0 for u in units},
    }


if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/examples")
    example_class(out)
    print(f"wrote the example class to {out}/")
