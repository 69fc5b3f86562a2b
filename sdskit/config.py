"""Every knob an instructor may want, in one place.

Edit this file, then run `make release` to carry the changes into the notebooks.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CourseConfig:
    # The public repository students get (`make student` builds it in build/student/; you push
    # it there). Colab opens the notebooks from it, and their first cell fetches it.
    # `make release` and `make student` write these two values into the notebooks' setup cell,
    # the Open-in-Colab links and the student README. Must be a GitHub https URL for Colab.
    student_repo_url: str = "https://github.com/YOUR-ORG/sds-assignment"
    student_repo_branch: str = "main"

    # The nbgrader assignment: its name, and the notebooks it holds (solutions/ -> notebooks/).
    assignment: str = "sds"
    notebooks: tuple[str, ...] = ("sds_assignment.ipynb",)
    # Each notebook in other languages. For "ko", solutions/translations/sds_assignment_ko.md
    # holds the Korean of every markdown cell and `make release` builds
    # notebooks/sds_assignment_ko.ipynb: the same code cells, tests and points, other prose.
    # A student hands in either edition; both are graded alike.
    editions: tuple[str, ...] = ("ko",)

    def edition(self, notebook: str, language: str) -> str:
        """`sds_assignment.ipynb`, "ko" -> `sds_assignment_ko.ipynb`."""
        return f"{notebook.removesuffix('.ipynb')}_{language}.ipynb"

    @property
    def released(self) -> tuple[str, ...]:
        """Every notebook in notebooks/: each of `notebooks`, then its editions."""
        return tuple(name for notebook in self.notebooks for name in
                     (notebook, *(self.edition(notebook, lang) for lang in self.editions)))

    # Written answers, graded by hand (autograder/written.py): the points of each written
    # question, by the grade_id of its answer cell. An answer cell is a markdown cell of
    # solutions/ whose text holds a `### BEGIN SOLUTION` ... `### END SOLUTION` region: the model
    # answer, then its rubric. `make release` writes these points into the cells' nbgrader
    # metadata (a manually graded answer) and under each question's prompt; they add to the
    # blanks' 14 points. 0 points: the question is not graded, and its model answer is cut from
    # the release. Every answer cell needs an entry here.
    # Part 7's three questions (exp1_answer ... exp3_answer) follow its `experiments` setting
    # below: bonus points with "bonus", left out with "off".
    written_points: dict[str, float] = field(default_factory=lambda: {
        "think_answers": 3, "exp1_answer": 2, "exp2_answer": 2, "exp3_answer": 2})

    # Grading: seconds one cell may run, and one whole notebook, before it is stopped.
    cell_timeout_s: int = 300
    notebook_timeout_s: int = 1200

    # The sandboxed grader (autograder/grade.py, autograder/sandbox.py). Each blank of each student
    # runs in a fresh process with these limits; a blank that hits one loses its points only.
    blank_timeout_s: float = 60.0  # wall-clock seconds for one blank (its two tests)
    blank_cpu_s: int = 60  # CPU seconds for one blank
    blank_memory_mb: int = 3072  # address space one blank may add to the warm grader
    blank_file_mb: int = 64  # the largest file one blank may write (in its private scratch)
    blank_output_kb: int = 64  # printed output kept from one blank (the rest is dropped)
    student_timeout_s: float = 300.0  # all seven blanks of one student together
    sandbox: str = "auto"  # "bwrap" (required), "auto" (bwrap if it works), "none" (rlimits only)

    # Grades into the LMS (grade.py --canvas-gradebook / --moodle-worksheet, autograder/lms.py):
    # the Canvas assignment column to fill is the one whose title contains this (case ignored),
    # unless --canvas-column names it; students with no submission get 0 only if this is True
    # (or with --missing-as-zero), else their cell stays as the export had it.
    lms_assignment: str = "SDS"
    lms_missing_as_zero: bool = False

    # The similarity report (grade.py --similarity, autograder/similarity.py): a passage shared by
    # more than this share of the class (and at least 3 students) counts for nothing; pairs
    # scoring at least similarity_flag_score are flagged and shown side by side (at most
    # similarity_pairs_shown of them).
    similarity_common_share: float = 0.05
    similarity_flag_score: float = 0.2
    similarity_pairs_shown: int = 50

    # The real model students use on a Colab GPU (a key of sdskit.loading.MODEL_IDS).
    sd_version: str = "2.1"

    # Part 7, the experiments: three functions graded like the blanks (exp1..exp3, a visible
    # and a hidden test of 1 point each) and three written answers graded by hand.
    #   "graded": their points count like the blanks' (max_total includes them);
    #   "bonus":  their points are reported in a column of their own, `bonus`, and left out of
    #             `total` and `max_total` (Gradescope: tests worth 0 that add to the score);
    #   "off":    the release has no Part 7 at all, and nothing of it is graded.
    # `make release` applies it (scripts/make_release.py); re-run it after a change.
    experiments: str = "graded"

    def __post_init__(self):
        if self.experiments not in ("graded", "bonus", "off"):
            raise ValueError(f"sdskit/config.py: experiments = {self.experiments!r}, but it must "
                             "be 'graded', 'bonus' or 'off' (see the comment above it).")


def _from_environment(config: CourseConfig) -> CourseConfig:
    """The grading limits may be overridden by SDSKIT_<FIELD> variables (the tests use this to
    keep runaway cases short), e.g. SDSKIT_BLANK_TIMEOUT_S=5."""
    import dataclasses
    import os

    changes = {}
    for item in dataclasses.fields(config):
        value = os.environ.get(f"SDSKIT_{item.name.upper()}")
        if value is not None and item.name.startswith(("blank_", "student_", "sandbox")):
            changes[item.name] = type(getattr(config, item.name))(value)
    return dataclasses.replace(config, **changes)


COURSE = _from_environment(CourseConfig())
