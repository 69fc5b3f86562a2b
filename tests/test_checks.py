"""The checks behind the test cells, run in-process on the solution and on generated answers.

The same cases go through nbgrader in test_grading.py; here they are fast and say exactly
which check disagreed.
"""

import pytest

from sdskit import checks
from autograder import submissions
from autograder.notebook_code import run_cells


def _class_from(tmp_path, answers):
    path = submissions.write_submission(tmp_path, "student", answers)
    return run_cells(path)["StableDiffusion"]


def _results(cls, both=None):
    """Every blank's visible and hidden checks; with `both`, the hidden ones of that blank only
    (a mistake in one blank is shown not to reach the others by their visible checks, which run
    the same isolation on fewer cases)."""
    return {(blank, split): check(cls, split)
            for blank, check in checks.CHECKS.items() for split in ("visible", "hidden")
            if both is None or blank == both or split == "visible"}


def test_solution_passes_every_check(solution_class):
    for key, report in _results(solution_class).items():
        assert report.passed, f"the solution fails {key}: {report.message}"


@pytest.mark.parametrize("blank", sorted(submissions.MISTAKES))
def test_a_mistake_fails_only_its_own_blank(tmp_path, blank):
    answers = {**submissions.solution_answers(), blank: submissions.MISTAKES[blank]}
    for (checked, split), report in _results(_class_from(tmp_path, answers), blank).items():
        if checked == blank:
            assert not report.passed, f"blank {blank}'s mistake passes its {split} check"
            assert report.message.strip(), "a failure must come with a message"
        else:
            assert report.passed, (f"blank {blank}'s mistake leaks into blank {checked} "
                                   f"({split}): {report.message}")


@pytest.mark.parametrize("blank", sorted(submissions.BLANKS))
def test_an_empty_blank_fails_only_its_own_blank(tmp_path, blank):
    answers = {**submissions.solution_answers(), blank: None}
    for (checked, split), report in _results(_class_from(tmp_path, answers), blank).items():
        if checked == blank:
            assert not report.passed
            assert "not filled in yet" in report.message, report.message
        else:
            assert report.passed, f"empty blank {blank} leaks into blank {checked}: {report.message}"


def test_every_alternative_correct_answer_passes(tmp_path):
    cls = _class_from(tmp_path, {**submissions.solution_answers(), **submissions.ALTERNATIVES})
    for key, report in _results(cls).items():
        assert report.passed, f"a correct alternative fails {key}: {report.message}"


@pytest.mark.parametrize("blank, expected", [
    (1, "super().__init__()"),
    (2, "int(...)"),
    (3, "[-1, 1]"),
    (4, "(512, 512)"),
    (5, "never returns high"),
    (6, "sign is flipped"),
    (7, ".detach()"),
])
def test_messages_name_the_mistake(tmp_path, blank, expected):
    answers = {**submissions.solution_answers(), blank: submissions.MISTAKES[blank]}
    report = checks.CHECKS[blank](_class_from(tmp_path, answers), "visible")
    assert expected in report.message, report.message
    assert "Traceback" not in report.message


def test_sds_loss_gradient_is_grad_over_batch(solution_class):
    """train_step end to end: the loss's gradient on the latents is grad / B."""
    import torch

    sd = checks.reference_instance(solution_class)
    latents = torch.randn(3, 4, 64, 64, requires_grad=True)
    grad = torch.randn(3, 4, 64, 64)
    loss = 0.5 * torch.nn.functional.mse_loss(latents, sd.sds_targets(latents, grad),
                                              reduction="sum") / 3
    loss.backward()
    torch.testing.assert_close(latents.grad, grad / 3, atol=1e-6, rtol=1e-5)


def test_train_step_runs_on_the_tiny_model(solution_class):
    import torch

    from sdskit.paths import TINY_SD

    sd = solution_class("cpu", False, False, hf_key=str(TINY_SD))
    embeddings = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds(["a cat"])])
    pred_rgb = torch.rand(2, 3, 64, 64, requires_grad=True)
    loss = sd.train_step(embeddings, pred_rgb)
    loss.backward()
    assert torch.isfinite(loss), loss
    assert pred_rgb.grad is not None and pred_rgb.grad.abs().sum() > 0, "no gradient reached the render"
    with pytest.raises(ValueError, match=r"\[uncond, cond\]"):
        sd.train_step(embeddings[:1], pred_rgb)
