"""The similarity report (autograder/similarity.py) on a generated class: one planted pair (the
same unusual wrong answers, and prose one copied from the other) among independent students, some
of whom share what means nothing (a correct answer, a known mistake, a mistake many made, the
question's own words). The planted pair must come first. No grading is needed: the report reads
the notebooks; test_grading.py runs it through grade.py --similarity."""

import csv
import json

import pytest

from autograder import similarity, submissions

SOLUTION = submissions.solution_answers()
# Our own words, one answer text per independent student.
PROSE = [
    "1. Backpropagating through the U-Net costs a second pass and all its activations.\n"
    "2. The pixels would drift away from the target.\n3. It lowers the variance.",
    "Dropping the Jacobian saves memory; the gradient still points the right way on average. "
    "A flipped sign makes the picture diverge until it saturates. The known noise is a control "
    "variate.",
    "Without the Jacobian term we skip the expensive backward through the denoiser. With the "
    "wrong sign the warm-up moves each pixel the wrong way. Subtracting epsilon keeps the mean "
    "and removes most of the randomness.",
    "1) cheaper, and the Jacobian is badly conditioned anyway\n2) runs away to 0 or 1\n"
    "3) less noisy estimate, same expectation",
    "The U-Net Jacobian would need gradients through the whole network each step, which is slow. "
    "If blank 6 were negated the optimiser climbs the loss instead. The subtraction is there so "
    "that the estimate is not dominated by the injected noise.",
    "It is dropped for speed. Sign flip: divergence. Subtract to reduce variance.",
    "Keeping it triples the cost. The image gets worse every step with a flipped sign, because "
    "it is pushed from the optimum. Removing the added noise leaves only the prior's correction.",
]
COPIED = ("The Jacobian of the denoiser is skipped because differentiating through it would mean "
          "storing every activation of the network for each view; besides, near small noise "
          "levels it behaves like an ill-conditioned curvature term. Flipping the sign in the "
          "sixth blank turns the descent into an ascent, so the oracle warm-up drives each value "
          "to the clamp. Epsilon is subtracted as a baseline with known zero mean.")
# The planted pair's answers: unusual and wrong (neither the solution, an alternative, nor a
# known mistake).
UNUSUAL = {6: "grad = w * (noise_pred - noise) * noise_pred.abs().mean() / noise.std()",
           3: "latents = F.interpolate(pred_rgb * 2 - 1, size=(64, 64), mode='nearest')"}
COMMON = "grad = noise_pred - noise  # forgot the weight"


def _write(folder, student, answers, prose):
    notebook = submissions.fill(answers)
    cell = next(c for c in notebook["cells"]
                if (c["metadata"].get("nbgrader") or {}).get("grade_id") == "think_answers")
    cell["source"] = "**Your answers**\n\n" + prose
    target = folder / student / submissions.NOTEBOOK
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(notebook, indent=1))


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    alternative = {**SOLUTION, **submissions.ALTERNATIVES}
    students = {
        "s01": (SOLUTION, PROSE[0]),
        "s02": (alternative, PROSE[1]),
        "s03": (alternative, PROSE[2]),  # the same correct alternative as s02: nothing
        "s04": ({**SOLUTION, **UNUSUAL}, COPIED),  # the planted pair, with s09
        "s05": ({**SOLUTION, 7: submissions.MISTAKES[7]}, PROSE[3]),
        "s06": ({**SOLUTION, 7: submissions.MISTAKES[7]}, PROSE[4]),  # a known mistake, as s05
        "s07": ({**SOLUTION, 6: COMMON}, PROSE[5]),
        "s08": ({**SOLUTION, 6: COMMON}, PROSE[6] + " " + PROSE[0][:60]),  # as s07 and s10
        "s09": ({**SOLUTION, **UNUSUAL, 5: submissions.ALTERNATIVES[5]},
                COPIED.replace("besides", "also").replace("sixth blank", "6th blank")),
        "s10": ({**SOLUTION, 6: COMMON}, "I did not have time for these."),
        "s11": ({}, ""),  # handed in the release untouched
    }
    for student, (answers, prose) in students.items():
        _write(folder, student, answers, prose)
    out = tmp_path_factory.mktemp("out")
    pairs = similarity.report(sorted(folder.iterdir()), out)
    return {"pairs": pairs, "out": out}


def test_the_planted_pair_comes_first(ranked):
    pairs = ranked["pairs"]
    top = pairs[0]
    assert (top.a, top.b) == ("s04", "s09"), [(p.a, p.b, p.score) for p in pairs[:5]]
    assert top.code > 0.8 and top.prose > 0.6, top
    assert set(top.cells) == {"blank3_code", "blank6_code", "think_answers"}, top.cells
    others = [p.score for p in pairs[1:]]
    assert all(score < top.score / 3 for score in others), [(p.a, p.b, p.score) for p in pairs]


def test_what_means_nothing_is_not_counted(ranked):
    shared = {(p.a, p.b): p for p in ranked["pairs"]}
    assert ("s02", "s03") not in shared, "a shared correct alternative counts for nothing"
    assert ("s05", "s06") not in shared, "a known mistake counts for nothing"
    for pair in (("s07", "s08"), ("s07", "s10"), ("s08", "s10")):
        assert pair not in shared or not shared[pair].code, "a mistake 3 students made"
    assert all("s11" not in (p.a, p.b) for p in ranked["pairs"]), "the release's own text"


def test_the_report_says_it_is_not_a_verdict_and_marks_the_shared_passages(ranked):
    out = ranked["out"]
    with open(out / similarity.CSV_OUT) as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["rank"] == "1" and (rows[0]["student_a"], rows[0]["student_b"]) == ("s04", "s09")
    assert rows[0]["flagged"] == "1" and float(rows[0]["score"]) == ranked["pairs"][0].score
    page = (out / similarity.HTML_OUT).read_text()
    assert "never a verdict" in page
    assert "<mark>" in page and "noise_pred.abs().mean()" in page
    assert "<mark>Flipping the sign in the" in page or "Flipping the sign in the" in page
    first = page.index("id='pair1'")
    assert "s04" in page[first:first + 200] and "s09" in page[first:first + 200]
