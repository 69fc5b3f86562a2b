"""The checks behind Part 7's test cells, one per function the student writes there.

They work like the blanks' checks (sdskit/checks.py, whose Report and helpers they use): each
takes the student's function, calls it on the reference cases of `assets/references.pt`
(visible) or `autograder/hidden_references.pt` (hidden, instructor's copy only), and returns a
Report whose message names what is wrong in the student's terms. Every result is read through
`checks._plain` (a plain tensor the check owns), so a tensor that lies about itself earns
nothing here either. A test cell reads

    report = experiment_checks.exp1_weighting(sds_weight, "visible")
    assert report.passed, report.message

A function that creates a tensor is also run on inputs on the `meta` device (shapes, no data),
so that a result made on the CPU, which would fail in the real run on a GPU, fails here too.
"""

import torch

from sdskit.checks import (ATOL, RTOL, Report, _call, _cannot_run, _plain, _plain_int, _run,
                           _tensor_problem, references)
from sdskit.i18n import N_, lazy

KINDS = ("dreamfusion", "uniform", "fantasia3d")
WHAT = {"dreamfusion": N_("w for kind='dreamfusion'"), "uniform": N_("w for kind='uniform'"),
        "fantasia3d": N_("w for kind='fantasia3d'")}


# ---------------------------------------------------------------------------------------
# Experiment 1: sds_weight(abar, kind)
# ---------------------------------------------------------------------------------------
def _weight_hints(kind: str, abar: torch.Tensor) -> list:
    """(what a common mistake gives, its hint) for one kind."""
    column = abar.view(-1, 1, 1, 1)
    if kind == "dreamfusion":
        return [((1 - column).sqrt(), N_("that is sigma_t; DreamFusion's weight is its square, "
                                         "sigma_t^2 = 1 - abar_t.")),
                (column, N_("that is abar_t itself; the weight is 1 - abar_t."))]
    if kind == "fantasia3d":
        return [(column * (1 - column), N_("take the square root of abar_t in the first factor: "
                                           "sqrt(abar_t) (1 - abar_t).")),
                ((column * (1 - column)).sqrt(), N_("the square root is of abar_t alone, not of "
                                                     "the whole product."))]
    return [(torch.zeros_like(column), N_("the uniform weight is 1 for every image, not 0."))]


def _rejects_unknown_kind(experiment, sds_weight, abar, kind, problems) -> None:
    try:
        got = sds_weight(abar.clone(), kind)
    except ValueError as error:
        if kind not in str(error):
            problems.append(lazy("sds_weight(abar, {kind}) raised ValueError, but its message "
                                 "({message}) does not say which kind it got: name it, so that "
                                 "whoever passed it sees the typo.", kind=repr(kind),
                                 message=repr(str(error)[:120])))
        return
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything
        problems.append(lazy("sds_weight(abar, {kind}) raised {error} ({text}); for a kind it "
                             "does not know it should raise ValueError.", kind=repr(kind),
                             error=type(error).__name__, text=str(error).strip()[:120]))
        return
    problems.append(lazy("sds_weight(abar, {kind}) returned a {result} instead of raising "
                         "ValueError: an unknown kind must be an error, not a silent weight.",
                         kind=repr(kind), result=type(got).__name__))


def exp1_weighting(sds_weight, cases: str = "visible") -> Report:
    """sds_weight gives DreamFusion's, the uniform and Fantasia3D's w(t) as [B, 1, 1, 1]
    tensors on abar's device, and raises ValueError (naming it) for an unknown kind."""
    experiment = N_("Experiment 1 (the weight w(t))")
    if (skipped := _cannot_run(experiment, cases)) is not None:
        return skipped
    case = references()["exp1"][cases]

    def body(problems):
        abar = case["abar"]
        for kind in KINDS:
            w = _plain(_call(experiment, "sds_weight", sds_weight, abar.clone(), kind))
            problem = _tensor_problem(WHAT[kind], w, case[kind], ATOL, RTOL,
                                      hints=_weight_hints(kind, abar))
            if problem:
                problems.append(problem)
                continue
            meta = _plain(_call(experiment, "sds_weight", sds_weight, abar.to("meta"), kind))
            if type(meta) is torch.Tensor and meta.device.type != "meta":
                problems.append(lazy("{what} is made on {device}, not where abar is: with abar "
                                     "on a GPU it would not be on the GPU. Make it on "
                                     "abar.device, or compute it from abar.", what=lazy(WHAT[kind]),
                                     device=meta.device))
        if not problems:
            _rejects_unknown_kind(experiment, sds_weight, abar, case["unknown_kind"], problems)

    return _run(experiment, body)


# ---------------------------------------------------------------------------------------
# Experiment 2: annealed_timestep(step, total_steps, min_step, max_step)
# ---------------------------------------------------------------------------------------
def _whole_number(value):
    """An int the check owns, from an int or a one-element integer tensor; None otherwise."""
    number = _plain_int(value)
    if type(number) is int:
        return number
    tensor = _plain(value)
    if type(tensor) is torch.Tensor and tensor.numel() == 1 and not tensor.is_floating_point() \
            and tensor.dtype != torch.bool:
        return int(tensor.item())
    return None


def exp2_schedule(annealed_timestep, cases: str = "visible") -> Report:
    """annealed_timestep gives whole numbers that fall in a straight line from max_step (the
    first step) to min_step (the last): each within 1 of the rounded line, so round() and
    int() are both accepted, with both ends exact and no step going up."""
    experiment = N_("Experiment 2 (an annealed timestep schedule)")
    if (skipped := _cannot_run(experiment, cases)) is not None:
        return skipped

    def body(problems):
        for case in references()["exp2"][cases]:
            lo, hi, total = case["min_step"], case["max_step"], case["total_steps"]
            where = lazy("with min_step={lo}, max_step={hi} and total_steps={total}", lo=lo,
                         hi=hi, total=total)
            got = []
            for step in range(total):
                value = _call(experiment, "annealed_timestep", annealed_timestep, step, total,
                              lo, hi)
                whole = _whole_number(value)
                if whole is None:
                    plain = _plain(value)
                    floating = type(value) is float or (type(plain) is torch.Tensor
                                                         and plain.is_floating_point())
                    hint = " " + lazy("Hint: round(...) turns it into an int.") if floating else ""
                    problems.append(lazy("annealed_timestep should return a whole number (an "
                                         "int), but at step {step} it returned {value} (a "
                                         "{kind}) {where}.", step=step,
                                         value=(repr(value)[:60] if type(value) in (float, str)
                                                else type(value).__name__),
                                         kind=type(value).__name__, where=where) + hint)
                    return
                got.append(whole)
            expected = list(case["t"])
            if got[0] != hi or got[-1] != lo:
                hint = ""
                if got[0] == lo and got[-1] == hi:
                    hint = " " + lazy("Hint: t starts at max_step (large noise) and falls to "
                                      "min_step.")
                elif got[0] == hi:
                    hint = " " + lazy("Hint: the last step is step total_steps - 1, so divide by "
                                      "total_steps - 1 for it to reach min_step.")
                problems.append(lazy("The first step should give max_step ({hi}) and the last "
                                     "min_step ({lo}), but they gave {first} and {last} {where}.",
                                     hi=hi, lo=lo, first=got[0], last=got[-1], where=where) + hint)
                return
            worst = max(range(total), key=lambda i: abs(got[i] - expected[i]))
            if abs(got[worst] - expected[worst]) > 1:
                problems.append(lazy("At step {step} t is {got}, but the straight line from "
                                     "max_step to min_step gives {want} {where} (within 1 is "
                                     "fine, for rounding).", step=worst, got=got[worst],
                                     want=expected[worst], where=where))
                return
            rising = next((i for i in range(1, total) if got[i] > got[i - 1]), None)
            if rising is not None:
                problems.append(lazy("t should never go up, but it goes from {before} at step "
                                     "{previous} to {after} at step {step} {where}.",
                                     before=got[rising - 1], previous=rising - 1,
                                     after=got[rising], step=rising, where=where))
                return

    return _run(experiment, body)


# ---------------------------------------------------------------------------------------
# Experiment 3: csd_gradient(noise_pred_uncond, noise_pred_cond, w)
# ---------------------------------------------------------------------------------------
def exp3_csd(csd_gradient, cases: str = "visible") -> Report:
    """csd_gradient returns the weighted guidance term, w (eps_cond - eps_uncond)."""
    experiment = N_("Experiment 3 (Classifier Score Distillation)")
    if (skipped := _cannot_run(experiment, cases)) is not None:
        return skipped
    case = references()["exp3"][cases]

    def body(problems):
        uncond, cond, w = case["noise_pred_uncond"], case["noise_pred_cond"], case["w"]
        grad = _plain(_call(experiment, "csd_gradient", csd_gradient, uncond.clone(),
                            cond.clone(), w.clone()))
        expected = case["grad"]
        problem = _tensor_problem("grad", grad, expected, ATOL, RTOL, hints=[
            (-expected, N_("the sign is flipped: the guidance term is the conditional prediction "
                           "minus the unconditional one.")),
            (cond - uncond, N_("multiply by the weight w.")),
            (w * cond, N_("subtract the unconditional prediction (noise_pred_uncond).")),
        ])
        if problem:
            problems.append(problem)

    return _run(experiment, body)


CHECKS = {"exp1": exp1_weighting, "exp2": exp2_schedule, "exp3": exp3_csd}
# The function each check grades: what the student's cell defines.
FUNCTIONS = {"exp1": "sds_weight", "exp2": "annealed_timestep", "exp3": "csd_gradient"}
