"""The try-it cells tell each known mistake from the right answer (autograder/mistakes.py).

For every blank, its try-it cell runs as the release has it, once with the solution's answer and
once with each known mistake in its place (the wrong-device answer of blank 5 among them): the
cell must run, and print something other than what the right answer prints. Each mistake must
also fail its blank's visible test. Everything runs on the CPU with the tiny model; the
mistakes that only fail on a GPU are caught by the meta and fp16 instances (sdskit/probes.py).
"""

import contextlib
import io

import pytest
import torch

from autograder import mistakes, submissions
from autograder.notebook_code import cell_sources, run_cells
from sdskit import checks

TRY_IT = {1: "try_blank1_2", 2: "try_blank1_2", 3: "try_blank3", 4: "try_blank4",
          5: "try_blank5", 6: "try_blank6", 7: "try_blank7"}


def _run(tmp_path, blank, answer, name):
    """(what the try-it cell prints, the class) with `answer` in blank `blank`."""
    path = submissions.write_submission(tmp_path, name, {**submissions.solution_answers(),
                                                         blank: answer})
    namespace = run_cells(path)
    source, = cell_sources(path, (TRY_IT[blank],))
    torch.manual_seed(0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, f"<{TRY_IT[blank]}>", "exec"), namespace)  # noqa: S102
    return printed.getvalue(), namespace["StableDiffusion"]


@pytest.fixture(scope="module")
def right(tmp_path_factory):
    """What each try-it cell prints for the solution."""
    folder = tmp_path_factory.mktemp("right")
    return {blank: _run(folder, blank, submissions.solution_answers()[blank], f"right{blank}")[0]
            for blank in sorted(set(TRY_IT))}


def test_the_table_covers_every_blank_and_the_demo_mistakes():
    for blank, code in submissions.MISTAKES.items():
        assert mistakes.for_blank(blank)[0].code == code, f"blank {blank}: MISTAKES is the first"
    assert mistakes.WRONG_DEVICE.gpu_only and mistakes.WRONG_DEVICE.blank == 5


def test_the_right_answers_print_what_is_expected(right):
    """The expected values printed beside each result are what the solution gives."""
    assert "expect 20, 980" in right[2] and "min_step = 20 (int), max_step = 980 (int)" in right[2]
    assert "min_step = 12 (int), max_step = 987 (int)" in right[2]
    assert "values [-0.5]; expect" in right[3]
    assert "[-1.0, -1.0, -0.969, 0.031, 0.969, 1.0, 1.0]; expect" in right[3]
    edge = "[0.062, 0.188, 0.312, 0.438, 0.562, 0.688, 0.812, 0.938]"
    assert f"{edge}; expect {edge}" in right[4]
    assert "dtype torch.float16" in right[4].split("with the model in fp16:")[1].split(";")[0]
    assert "t is on meta; expect meta" in right[5]
    assert "your grad: [0.5, -0.5, 0.0]; by hand" in right[6]
    assert "targets: [0.9, 2.2, -1.0]; by hand" in right[7]
    assert "loss's value: 0.025;" in right[7]


@pytest.mark.parametrize("mistake", mistakes.KNOWN, ids=lambda m: f"{m.blank}-{m.name}")
def test_each_known_mistake_shows_in_its_try_it_and_fails_its_visible_test(tmp_path, right,
                                                                           mistake):
    printed, cls = _run(tmp_path, mistake.blank, mistake.code, "wrong")
    assert printed != right[mistake.blank], f"the try-it prints the same for {mistake.name}"
    report = checks.CHECKS[mistake.blank](cls, "visible")
    assert not report.passed, f"blank {mistake.blank}'s visible test passes {mistake.name}"
    if mistake.gpu_only:
        assert "'meta'" in report.message or "fp16" in report.message, report.message
