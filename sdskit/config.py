"""Every knob an instructor may want, in one place.

Edit this file, then run `make release` to carry the changes into the notebooks.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class CourseConfig:
    # Where Colab fetches the kit from (the first cell of each notebook clones it).
    # `make release` copies these two values into the notebooks' setup cell.
    repo_url: str = "https://github.com/sds-course/sds-assignment-kit"
    repo_branch: str = "main"

    # The nbgrader assignment: its name, and the notebooks it holds (solutions/ -> notebooks/).
    assignment: str = "sds"
    notebooks: tuple[str, ...] = ("sds_assignment.ipynb",)

    # Grading: seconds one cell may run, and one whole notebook, before it is stopped.
    cell_timeout_s: int = 300
    notebook_timeout_s: int = 1200

    # The real model students use on a Colab GPU (a key of sdskit.loading.MODEL_IDS).
    sd_version: str = "2.1"


COURSE = CourseConfig()
