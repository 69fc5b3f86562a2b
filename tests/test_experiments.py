"""Part 7, the experiments: the checks of its three functions (sdskit/experiment_checks.py) on
the solution, the other correct ways of writing them and the known mistakes; the oracle's
algebra that the notebook's text relies on (PriorOracle); the three CPU experiments and the
numbers the model answers quote; the course setting that grades Part 7, makes it bonus points
or leaves it out of the release."""

import dataclasses
import json

import pytest
import torch

from autograder import course, grade, gradebook, gradescope, locate, submissions
from autograder.notebook_code import EXPERIMENT_CELLS, run_cells, solution_class, solution_functions
from sdskit import checks, experiment_checks, experiments
from sdskit.config import COURSE
from sdskit.oracle import OracleUNet, PriorOracle
from sdskit.paths import SOLUTIONS

FUNCTIONS = experiment_checks.FUNCTIONS  # "exp1" -> "sds_weight", ...


@pytest.fixture(scope="module")
def solution():
    return solution_functions()


def _functions_from(tmp_path, answers) -> dict:
    """The release filled with these answers, its Part 7 cells run: {name: function}."""
    path = submissions.write_submission(tmp_path, "student", answers)
    namespace = run_cells(path, EXPERIMENT_CELLS)
    return {name: namespace[name] for name in FUNCTIONS.values()}


def _results(functions) -> dict:
    return {(unit, cases): check(functions[FUNCTIONS[unit]], cases)
            for unit, check in experiment_checks.CHECKS.items() for cases in ("visible", "hidden")}


def test_solution_passes_every_check(solution):
    for key, report in _results(solution).items():
        assert report.passed, f"the solution fails {key}: {report.message}"


def test_every_alternative_correct_answer_passes(tmp_path):
    answers = {**submissions.solution_answers(), **submissions.EXPERIMENT_ALTERNATIVES}
    for key, report in _results(_functions_from(tmp_path, answers)).items():
        assert report.passed, f"a correct alternative fails {key}: {report.message}"


@pytest.mark.parametrize("unit", sorted(submissions.EXPERIMENT_MISTAKES))
def test_a_mistake_fails_only_its_own_check(tmp_path, unit):
    answers = {**submissions.solution_answers(), unit: submissions.EXPERIMENT_MISTAKES[unit]}
    for (checked, cases), report in _results(_functions_from(tmp_path, answers)).items():
        if checked == unit:
            assert not report.passed, f"{unit}'s mistake passes its {cases} check"
        else:
            assert report.passed, f"{unit}'s mistake leaks into {checked}: {report.message}"


@pytest.mark.parametrize("unit", sorted(submissions.EXPERIMENTS))
def test_an_empty_function_fails_only_its_own_check(tmp_path, unit):
    answers = {**submissions.solution_answers(), unit: None}
    for (checked, cases), report in _results(_functions_from(tmp_path, answers)).items():
        if checked == unit:
            assert "not filled in yet" in report.message, report.message
        else:
            assert report.passed, report.message


# More wrong answers than the corpus's one per function, each with what its message must say.
WRONG = [
    ("exp1", "w = {'dreamfusion': (1 - abar).sqrt(), 'uniform': torch.ones_like(abar),\n"
             "     'fantasia3d': abar.sqrt() * (1 - abar)}[kind]", "sigma_t^2 = 1 - abar_t"),
    ("exp1", "w = {'dreamfusion': 1 - abar, 'uniform': torch.ones_like(abar),\n"
             "     'fantasia3d': abar * (1 - abar)}[kind]", "square root of abar_t"),
    ("exp1", "w = {'dreamfusion': 1 - abar, 'uniform': torch.ones_like(abar),\n"
             "     'fantasia3d': abar.sqrt() * (1 - abar)}.get(kind, 1 - abar)",
     "instead of raising ValueError"),
    ("exp1", "if kind not in ('dreamfusion', 'uniform', 'fantasia3d'):\n"
             "    raise ValueError('unknown weighting')\n"
             "w = 1 - abar if kind == 'dreamfusion' else abar * 0 + 1 if kind == 'uniform' \\\n"
             "    else abar.sqrt() * (1 - abar)", "does not say which kind"),
    ("exp1", "return {'dreamfusion': 1 - abar, 'uniform': torch.ones_like(abar),\n"
             "        'fantasia3d': abar.sqrt() * (1 - abar)}[kind]", "shape [3, 1, 1, 1]"),
    ("exp2", "t = round(min_step + (max_step - min_step) * step / (total_steps - 1))",
     "falls to min_step"),
    ("exp2", "t = max_step - (max_step - min_step) * step / (total_steps - 1)", "round(...)"),
    ("exp2", "t = round(max_step - (max_step - min_step) * (step / (total_steps - 1)) ** 2)",
     "straight line"),
    ("exp3", "grad = noise_pred_cond - noise_pred_uncond", "multiply by the weight w"),
    ("exp3", "grad = w * noise_pred_cond", "subtract the unconditional prediction"),
    ("exp3", "grad = w * (noise_pred_uncond - noise_pred_cond)", "sign is flipped"),
]


@pytest.mark.parametrize("unit, answer, says", WRONG)
def test_wrong_answers_fail_with_a_message_that_names_the_mistake(tmp_path, unit, answer, says):
    answers = {**submissions.solution_answers(), unit: answer}
    check = experiment_checks.CHECKS[unit]
    report = check(_functions_from(tmp_path, answers)[FUNCTIONS[unit]], "visible")
    assert not report.passed
    assert says in report.message, report.message
    assert "Traceback" not in report.message
    assert says in report.message_in("en") and report.message_in("ko") != report.message_in("en")


def test_a_weight_made_on_the_cpu_fails_as_it_would_on_a_gpu(tmp_path):
    """The corpus's mistake for experiment 1 gives the right values on the CPU; the check runs
    it on the meta device too, where it shows that it ignores abar's device."""
    answers = {**submissions.solution_answers(), "exp1": submissions.EXPERIMENT_MISTAKES["exp1"]}
    weight = _functions_from(tmp_path, answers)["sds_weight"]
    abar = torch.tensor([0.2, 0.9])
    assert torch.allclose(weight(abar, "uniform"), torch.ones(2, 1, 1, 1))
    report = experiment_checks.exp1_weighting(weight, "visible")
    assert "is made on cpu" in report.message, report.message


# ---------------------------------------------------------------------------------------
# The oracle of Part 7: what the text says of it holds
# ---------------------------------------------------------------------------------------
def _oracle_setup():
    sd = checks.reference_instance(solution_class())
    generator = torch.Generator().manual_seed(0)
    cond, uncond, z_t = (torch.randn(1, 4, 64, 64, generator=generator) for _ in range(3))
    t = torch.tensor([300, 300])
    return sd.scheduler.alphas_cumprod, cond, uncond, z_t, t


def test_prior_oracle_without_a_spread_is_the_point_oracle():
    abar, cond, uncond, z_t, t = _oracle_setup()
    point = OracleUNet(abar)
    point.target = cond
    spread = PriorOracle(abar, cond, uncond, spread=0.0)
    expected = point(torch.cat([z_t, z_t]), t).sample[1:]
    torch.testing.assert_close(spread(torch.cat([z_t, z_t]), t).sample[1:], expected,
                               atol=1e-4, rtol=1e-4)


def test_guidance_on_the_oracle_is_the_prior_centred_further_out():
    """Part 7's text: eps_u + s (eps_c - eps_u) is the exact prediction for the prior centred
    on z_u + s (z_c - z_u)."""
    abar, cond, uncond, z_t, t = _oracle_setup()
    scale = 7.5
    oracle = PriorOracle(abar, cond, uncond)
    eps_u, eps_c = oracle(torch.cat([z_t, z_t]), t).sample.chunk(2)
    shifted = PriorOracle(abar, uncond + scale * (cond - uncond), uncond)
    torch.testing.assert_close(eps_u + scale * (eps_c - eps_u),
                               shifted(torch.cat([z_t, z_t]), t).sample[1:], atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------
# The three experiments on the CPU, and the numbers the notebook's answers quote
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(solution):
    sd_class = solution_class()
    return {"weighting": experiments.weighting_oracle(sd_class, solution["sds_weight"]),
            "schedule": experiments.schedule_oracle(sd_class, solution["annealed_timestep"]),
            "guidance": experiments.guidance_oracle(sd_class, solution["csd_gradient"])}


def test_experiment_1_what_question_1_says(runs):
    result = runs["weighting"]
    final = {kind: run.distances[-1] for kind, run in result.runs.items()}
    assert final["dreamfusion"] < final["fantasia3d"] < final["uniform"], final
    grid = result.grid
    for kind in experiments.KINDS:  # more noise than pull below t ~ 340, more pull above
        ratio = [n / s for s, n in zip(result.signal[kind], result.noise[kind])]
        assert all(r > 1 for t, r in zip(grid, ratio) if t < 330), (kind, ratio)
        assert all(r < 1 for t, r in zip(grid, ratio) if t > 350), (kind, ratio)
        assert 1.4 < ratio[0] < 1.8 and 2.5 < 1 / ratio[-1] < 3.5, ratio
    assert 45 < result.signal["uniform"][0] / result.signal["dreamfusion"][0] < 60


def test_experiment_1_measures_near_where_the_runs_end(runs):
    config = experiments.ExperimentConfig()
    target = runs["weighting"].target
    start = torch.rand(1, 3, config.size, config.size,
                       generator=torch.Generator().manual_seed(config.seed))
    near = (1 - experiments.NEAR) * target + experiments.NEAR * start
    assert 0.07 < float((near - target).pow(2).mean().sqrt()) < 0.09  # "about 0.08"


def test_experiment_2_what_question_2_says(runs):
    random, annealed = runs["schedule"].runs["random"], runs["schedule"].runs["annealed"]
    assert annealed.timesteps[0] == 980 and annealed.timesteps[-1] == 20
    assert 0.07 < annealed.distances[19] < 0.09 and 0.15 < random.distances[19] < 0.19
    assert annealed.distances[-1] > random.distances[-1]
    assert annealed.coarse[-1] > 1.5 * min(annealed.coarse), "the coarse scales drift late"


def test_experiment_3_what_question_3_says(runs):
    result = runs["guidance"]
    saturation = {key: run.saturation[-1] for key, run in result.runs.items()}
    assert (saturation["SDS, s = 1"] < saturation["SDS, s = 7.5"] < saturation["SDS, s = 100"]
            < saturation["CSD"]), saturation
    assert saturation["CSD"] > 0.95
    levelled = result.runs["SDS, s = 100"].saturation
    assert abs(levelled[-1] - levelled[-30]) < 0.02, "SDS at 100 levels off"
    ratio = [100 * c / g for c, g in zip(result.classifier, result.generative)]
    assert all(r > 1 for r in ratio) and all(2 <= r <= 7 for t, r in zip(result.grid, ratio)
                                             if t >= 220), ratio


# ---------------------------------------------------------------------------------------
# sdskit/config.py's `experiments`: graded, bonus or off
# ---------------------------------------------------------------------------------------
def _solution_notebook() -> dict:
    return json.loads((SOLUTIONS / "sds_assignment.ipynb").read_text())


def test_off_leaves_part_7_out_and_nothing_else():
    notebook = _solution_notebook()
    ids = [locate.grade_id(c) for c in notebook["cells"]]
    course.apply_settings(notebook, dataclasses.replace(COURSE, experiments="off"))
    kept = [locate.grade_id(c) for c in notebook["cells"]]
    assert kept == [gid for gid in ids if not locate.part7(gid or "")]
    assert len(kept) < len(ids) and "blank7_hidden" in kept and "md_hand_in" in kept


def test_the_setting_takes_three_values():
    with pytest.raises(ValueError, match="experiments = 'bonus points'"):
        dataclasses.replace(COURSE, experiments="bonus points")


def test_the_release_without_part_7(tmp_path, monkeypatch):
    """make release's two paths with experiments = "off" (the English source through
    course.create, each edition through source_notebook; nbgrader then only clears the
    answers): no Part 7, and grading looks for the seven blanks only."""
    from scripts import make_release

    monkeypatch.setattr(course, "COURSE", dataclasses.replace(COURSE, experiments="off"))
    root = course.create(tmp_path / "course")
    english = root / "source" / COURSE.assignment / submissions.NOTEBOOK
    sources = [json.loads(english.read_text())]
    sources += [make_release.source_notebook(submissions.NOTEBOOK, language)
                for language in COURSE.editions]
    for notebook in sources:
        ids = [locate.grade_id(c) or "" for c in notebook["cells"]]
        assert "blank7_hidden" in ids and not any(locate.part7(gid) for gid in ids)
    monkeypatch.setattr(locate, "NOTEBOOKS", english.parent)
    assert locate.experiments_released() == {}
    assert set(locate.graded_signatures()) == set(locate.SIGNATURES)
    assert submissions.graded_units(english) == sorted(submissions.BLANKS)


def _result(points: dict, score, written_points) -> grade.StudentResult:
    """A graded student: each test's score from `score`, each written answer's given."""
    asked = {q.grade_id for q in grade.written.questions()}
    result = grade.StudentResult("student")
    for (notebook, gid), maximum in points.items():
        if gid not in asked:
            result.cells.append((notebook, gid, score(gid, maximum), maximum))
            result.messages[gid] = "passed"
    result.written_points = {gid: written_points(gid) for gid in asked}
    return result


def _row(tmp_path) -> dict:
    lines = (tmp_path / "grades.csv").read_text().splitlines()
    header, values = (line.split(",") for line in lines)
    return dict(zip(header, values))


def test_bonus_points_are_reported_apart(tmp_path, monkeypatch):
    """With experiments = "bonus", Part 7's tests and written answers count apart."""
    monkeypatch.setattr(grade, "COURSE", dataclasses.replace(COURSE, experiments="bonus"))
    points = grade.max_points()
    result = _result(points, lambda gid, maximum: maximum,  # everything right
                     lambda gid: COURSE.written_points[gid])
    grade.write_tables([result], tmp_path, points)
    got = _row(tmp_path)
    think = COURSE.written_points["think_answers"]
    assert float(got["total"]) == float(got["max_total"]) == 14.0 + think
    part7_written = sum(p for gid, p in COURSE.written_points.items() if gid.startswith("exp"))
    assert float(got["bonus"]) == float(got["max_bonus"]) == 6.0 + part7_written
    assert float(got["exp1"]) == 2.0
    results = gradescope.results_json(result)
    bonus = [t for t in results["tests"] if t["name"].endswith("(bonus)")]
    assert len(bonus) == 6 and all(t["max_score"] == 0 and t["score"] == 1 for t in bonus)
    assert results["score"] == 20.0 and "Of these, 6 are bonus points (Part 7)." in results["output"]


def test_graded_points_count_in_the_total(tmp_path):
    assert COURSE.experiments == "graded"
    points = grade.max_points()
    result = _result(points, lambda gid, maximum: 0.0 if gid.startswith("exp2") else maximum,
                     lambda gid: None)  # no written answer graded yet
    grade.write_tables([result], tmp_path, points)
    got = _row(tmp_path)
    assert float(got["total"]) == 18.0 and "bonus" not in got
    assert float(got["max_total"]) == 20.0 + sum(COURSE.written_points.values())
    labels = {gradebook.cell_label("exp3_hidden", True), gradebook.cell_label("exp3_code", False)}
    assert labels == {"Experiment 3: hidden test", "Your answer to experiment 3"}
