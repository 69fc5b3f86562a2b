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


def _results(cls):
    return {(blank, split): check(cls, split)
            for blank, check in checks.CHECKS.items() for split in ("visible", "hidden")}


def test_solution_passes_every_check(solution_class):
    for key, report in _results(solution_class).items():
        assert report.passed, f"the solution fails {key}: {report.message}"


@pytest.mark.parametrize("blank", sorted(submissions.MISTAKES))
def test_a_mistake_fails_only_its_own_blank(tmp_path, blank):
    answers = {**submissions.solution_answers(), blank: submissions.MISTAKES[blank]}
    for (checked, split), report in _results(_class_from(tmp_path, answers)).items():
        if checked == blank:
            assert not report.passed, f"blank {blank}'s mistake passes its {split} check"
            assert report.message.strip(), "a failure must come with a message"
        else:
            assert report.passed, (f"blank {blank}'s mistake leaks into blank {checked} "
                                   f"({split}): {report.message}")


@pytest.mark.parametrize("blank", sorted(submissions.BLANKS))
def test_an_empty_blank_fails_only_its_own_blank(tmp_path, blank):
    answers = {**submissions.solution_answers(), blank: None}
    for (checked, split), report in _results(_class_from(tmp_path, answers)).items():
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


# --- Lying results: a check reads the data, never the object's own code --------------------
def _liars():
    """corpus.py's tensor subclasses that say yes to every comparison."""
    from autograder import corpus

    namespace = {}
    exec(corpus.AGREEABLE, namespace)  # noqa: S102
    return namespace["Agreeable"], namespace["Detached"]


def test_the_lying_tensor_fools_a_naive_comparison():
    """Without _plain, the corpus's liars pass torch.allclose and deny a gradient: the tests
    below are not vacuous (before the fix, blanks 3, 6 and 7 passed with them)."""
    import torch

    agreeable, detached = _liars()
    lie = torch.ones(3).as_subclass(agreeable)
    assert torch.allclose(lie, torch.zeros(3)) and float((lie - 5).abs().max()) == 0.0
    assert not torch.ones(3, requires_grad=True).as_subclass(detached).requires_grad


@pytest.mark.parametrize("blank", [3, 6, 7])
def test_a_lying_tensor_earns_nothing_and_is_noted(solution_class, blank):
    agreeable, detached = _liars()
    liar = detached if blank == 7 else agreeable
    method = {3: "interpolate_latents", 6: "sds_gradient", 7: "sds_targets"}[blank]
    right = getattr(solution_class, method)
    wrong = {3: lambda self, x: (right(self, x) + 1) / 2,  # values left in [0, 1]
             6: lambda self, p, n, w: -right(self, p, n, w),  # sign flipped
             7: lambda self, x, g: x - g}[blank]  # not detached
    lying = type("Lying", (solution_class,), {
        method: lambda self, *args: wrong(self, *args).as_subclass(liar)})
    report = checks.CHECKS[blank](lying, "visible")
    assert not report.passed, f"blank {blank}: a lying tensor passed"
    assert list(map(str, report.review)) == [
        f"a result is a torch.Tensor subclass ({liar.__name__}): graded on its data"]
    honest = type("Honest", (solution_class,), {
        method: lambda self, *args: right(self, *args).as_subclass(agreeable)})
    report = checks.CHECKS[blank](honest, "visible")
    assert report.passed, report.message  # the right data passes, and is still noted
    assert "torch.Tensor subclass (Agreeable)" in report.review[0]


def test_plain_reads_past_every_override():
    import torch
    from torch.overrides import TorchFunctionMode

    class Poser:  # claims to be a tensor
        __class__ = property(lambda self: torch.Tensor)

    assert isinstance(Poser(), torch.Tensor)
    checks._REVIEW.clear()
    got = checks._plain(Poser())
    assert type(got) is checks._NotATensor and got.kind == "Poser"
    assert list(map(str, checks._REVIEW)) == ["a result is a Poser posing as a tensor"]
    for ordinary in (None, [1.0], 3.0):  # a wrong kind of result, but no impostor
        assert type(checks._plain(ordinary)) is checks._NotATensor
    assert list(map(str, checks._REVIEW)) == ["a result is a Poser posing as a tensor"]
    assert "should be a torch.Tensor, but it is a Poser" in str(
        checks._tensor_problem("grad", got, torch.zeros(1), 1e-5, 1e-4))

    plain = torch.ones(2, requires_grad=True) * 2
    plain.backward = lambda *args: None  # an instance attribute shadowing the method
    owned = checks._plain(plain)
    assert type(owned) is torch.Tensor and owned is not plain and owned.requires_grad
    owned.sum().backward()  # torch's own backward: it reaches the leaf

    class Wrapper(torch.Tensor):  # a __torch_dispatch__ wrapper: its values live in its code
        @staticmethod
        def __new__(cls, inner):
            return torch.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype)

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return torch.zeros(1)

    got = checks._plain(Wrapper(torch.ones(1)))
    assert type(got) is checks._NotATensor and got.unreadable
    assert "only its own code can read" in str(
        checks._tensor_problem("grad", got, torch.zeros(1), 1e-5, 1e-4))

    class AlwaysClose(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return True if func is torch.allclose else func(*args, **(kwargs or {}))

    with AlwaysClose():
        with pytest.raises(checks._StudentCodeFailed, match="PyTorch mode switched on"):
            checks._plain(torch.zeros(1))
    checks._REVIEW.clear()


def test_an_int_that_equals_everything_is_read_as_its_value(solution_class):
    class Agreeable(int):
        def __eq__(self, other):
            return True

        __ne__ = lambda self, other: False  # noqa: E731
        __hash__ = int.__hash__

    def set_step_range(self, t_range):
        self.min_step, self.max_step = Agreeable(t_range[0]), Agreeable(t_range[1])

    report = checks.blank2_step_range(type("Lying", (solution_class,),
                                           {"set_step_range": set_step_range}), "visible")
    assert not report.passed and "self.min_step is 0, expected" in report.message
    assert list(map(str, report.review)) == [
        "a result is an int subclass (Agreeable): graded on its value"]
