"""README.md and the guides in docs/ say only what runs: every command they show is run by a
test, or is a make target that `make demo`, `make test` or a test runs; every relative link
resolves. Cheap: it reads the docs, the Makefile and the tests' sources (no command is run here
but the two of scripts/make_translation.py that no other test runs).

A command is a line of a ```bash, ```sh or ```console block (every fenced block must name its
language), or an inline code span that starts with `make ` or `python `. Each step of it (split
on `&&`; `cd` is skipped) is one of:
- `make TARGET`: TARGET is in the Makefile, and it is reached from `make demo` or `make test`,
  or each of its prerequisites is covered and each of its recipe lines is a covered command;
- a kit command (`python autograder/...`, `python scripts/...`, `python -m autograder...`,
  `nbgrader SUB`, `DIR/run_autograder`, with any `NAME=value` in front): the script exists, it
  has every option used (read from its argparse calls), and RUN_BY names the tests that run
  this exact set of options: their source (with the helpers named with them) holds the script's
  name and each option;
- or one of the few in NOT_RUN_HERE, each with the reason no test can run it.
A wrong command (a misspelt option, a missing target, an option no test runs) fails with the
file, the line and the command; `test_a_wrong_command_is_named` shows it does.
"""

from __future__ import annotations

import ast
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"bash", "sh", "console", "python"}  # python: configuration lines, not run
SHELL = {"bash", "sh", "console"}

# A command's signature (program, its options and the variables set in front of it, sorted) ->
# the tests that run it ("file::function", helpers after a "+"), whose sources together must
# hold the program's name and every option; or (tests, [strings]) where a test calls the
# function behind the command, and the strings, which its source must hold, say how.
RUN_BY = {
    ("autograder/grade.py", ("--out",)): "test_grading.py::graded",
    ("autograder/grade.py", ("--jobs", "--out")): "test_corpus.py::grade",
    ("autograder/grade.py", ("--out", "--written-scores")):
        "test_grading.py::test_written_scores_round_trip+_regrade",
    ("autograder/grade.py", ("--blind", "--out")):
        "test_grading.py::test_written_scores_round_trip+_regrade",
    ("autograder/grade.py", ("--blind", "--out", "--written-scores")):
        "test_grading.py::test_written_scores_round_trip+_regrade",
    ("autograder/grade.py", ("--canvas-gradebook", "--out")): "test_grading.py::regraded_with_options",
    ("autograder/grade.py", ("--moodle-worksheet", "--out")): "test_grading.py::regraded_with_options",
    ("autograder/grade.py", ("--out", "--similarity")): "test_grading.py::regraded_with_options",
    # The test builds the zip through the function the command calls, with its own folder.
    ("-m autograder.gradescope build", ("--out",)): ("test_gradescope.py::emulated",
                                                     ["gradescope.build("]),
    ("run_autograder", ("GRADESCOPE_PYTHON", "GRADESCOPE_ROOT")):
        "test_gradescope.py::_run_autograder+_environment",
    ("scripts/make_release.py", ()): "test_generated.py::test_release_is_what_nbgrader_makes_of_the_solutions",
    ("scripts/make_release.py", ("--nbgrader-source",)):
        "test_grading.py::test_plain_nbgrader_recipe_gives_the_same_marks",
    ("scripts/make_references.py", ()): "test_generated.py::test_references_match_the_solution",
    ("scripts/make_figures.py", ()): "test_figures.py::test_figures_are_what_the_script_makes",
    ("scripts/make_catalogue.py", ()):
        "test_catalogue.py::test_every_message_has_a_current_translation_and_the_files_are_generated",
    ("scripts/make_translation.py", ()): "test_docs.py::test_make_translation_reports_and_accepts",
    ("scripts/make_translation.py", ("--accept",)):
        "test_docs.py::test_make_translation_reports_and_accepts",
    ("nbgrader generate_assignment", ()): "test_grading.py::test_plain_nbgrader_recipe_gives_the_same_marks",
    ("nbgrader zip_collect", ()): "test_grading.py::test_plain_nbgrader_recipe_gives_the_same_marks",
    ("nbgrader autograde", ()): "test_grading.py::test_plain_nbgrader_recipe_gives_the_same_marks",
    ("nbgrader generate_feedback", ()): "test_grading.py::test_plain_nbgrader_recipe_gives_the_same_marks",
}

# Commands no test can run, and why. The docs may show them; each is still checked for its
# script and options. Keep this short: a command that can run in a test belongs in RUN_BY.
GPU = "needs a CUDA GPU (make test has none); the lead runs it on the lent GPU"
NOT_RUN_HERE = {
    ("scripts/benchmark_sds_step.py", ()): GPU,
    ("scripts/gpu_student_check.py", ()): GPU,
    ("scripts/run_experiments_gpu.py", ("--out",)): GPU,
    ("scripts/offline_hub_cache.py", ("--random-sd21",)):
        GPU + " (it writes the random SD 2.1 cache for the GPU run of the notebook)",
    ("scripts/run_notebooks.py", ("--out", "HF_HOME", "HF_HUB_OFFLINE")): GPU,
    ("make benchmark", ()): "grades a class of 100: minutes, a benchmark, not a test",
    ("nbgrader quickstart", ()): "nbgrader's own course template; the recipe's test makes the "
                                 "course folder itself",
    ("nbgrader formgrader", ()): "starts a web server for a person to grade in",
    ("git clone", ()): "talks to GitHub",
    ("git remote", ()): "talks to GitHub (set-url, add origin)",
    ("git push", ("-u",)): "talks to GitHub",
}

# Inline `--option` spans that are not the kit's options.
FOREIGN_OPTIONS = {"--force": "git push", "--perpneg": "stable-dreamfusion's trainer"}


# ---------------------------------------------------------------------------------------
# Reading the docs
# ---------------------------------------------------------------------------------------
def fenced_blocks(text: str):
    """(language, [(line number, line)], opening line number) of each fenced block."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"\s*```(.*)$", line)
        if fence and current is None:
            current = (fence.group(1).strip(), [], number)
        elif fence:
            blocks.append(current)
            current = None
        elif current is not None:
            current[1].append((number, line))
    if current is not None:
        blocks.append(current)
    return blocks


def prose_lines(text: str):
    """(line number, line) outside fenced blocks."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*```", line):
            inside = not inside
        elif not inside:
            yield number, line


def inline_spans(text: str):
    """(line number, code) of each inline code span outside fenced blocks."""
    for number, line in prose_lines(text):
        for span in re.findall(r"`([^`\n]+)`", line):
            yield number, span


def commands(text: str):
    """(line number, command) of each shell command: block lines (backslash continuations
    joined; in console blocks, the lines after "$ ") and inline spans that start with make or
    python (or NAME=value python)."""
    found = []
    for language, lines, _ in fenced_blocks(text):
        if language not in SHELL:
            continue
        pending, start = "", None
        for number, line in lines:
            line = line.strip()
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not pending and (not line or line.startswith("#")):
                continue
            start = start or number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            found.append((start, pending + line))
            pending, start = "", None
    for number, span in inline_spans(text):
        if re.match(r"(?:[A-Z_]+=\S+ )*(?:make|python) ", span):
            found.append((number, span))
    return found


# ---------------------------------------------------------------------------------------
# What exists: Makefile targets, scripts' options, tests' sources
# ---------------------------------------------------------------------------------------
@cache
def makefile():
    """target -> (prerequisites, recipe lines)."""
    targets, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        rule = re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)\s*(.*)$", line)
        if rule and not line.startswith("\t"):
            current = rule.group(1)
            targets[current] = (rule.group(2).split(), [])
        elif line.startswith("\t") and current:
            targets[current][1].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


@cache
def reached_from(*roots: str) -> frozenset:
    seen, todo = set(), list(roots)
    while todo:
        target = todo.pop()
        if target in seen or target not in makefile():
            continue
        seen.add(target)
        todo.extend(makefile()[target][0])
    return frozenset(seen)


@cache
def script_options(script: str) -> frozenset:
    """Every "--option" of a kit script's argparse calls (add_argument, its groups')."""
    path = ROOT / script
    tree = ast.parse(path.read_text())
    options = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            options |= {a.value for a in node.args
                        if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return frozenset(options)


@cache
def source_of(file: str, name: str) -> str | None:
    tree = ast.parse((ROOT / "tests" / file).read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_source_segment((ROOT / "tests" / file).read_text(), node)
    return None


# ---------------------------------------------------------------------------------------
# Checking one command
# ---------------------------------------------------------------------------------------
def signature(words: list[str]):
    """(program, sorted options and variables) of one step, and its script (None for make,
    nbgrader, git and run_autograder) -- or a problem."""
    variables = []
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        variables.append(words.pop(0).split("=", 1)[0])
    if not words:
        return None, None, "nothing to run"
    program, rest = words[0], words[1:]
    options = [w.split("=", 1)[0] for w in rest if w.startswith("-") and w != "-m"]
    script = None
    if program in ("python", "python3"):
        if rest[:1] == ["-m"]:
            module = rest[1] if len(rest) > 1 else ""
            script = module.replace(".", "/") + ".py"
            sub = [w for w in rest[2:3] if not w.startswith("-")]
            program = " ".join(["-m", module, *sub])
            options = [w.split("=", 1)[0] for w in rest[2:] if w.startswith("-")]
        elif rest:
            script = re.sub(r"^(KIT/|\./)", "", rest[0])
            program = script
        else:
            return None, None, "python with no script"
    elif program in ("make", "nbgrader", "git"):
        sub = [w for w in rest if not w.startswith("-") and "=" not in w][:1]
        program = " ".join([program, *sub])
        if program.startswith("make"):
            options = []  # VAR=value arguments are the Makefile's, not options
    elif program.endswith("/run_autograder"):
        program = "run_autograder"
    return (program, tuple(sorted({*options, *variables}))), script, None


def covered_target(target: str, seen=()) -> str | None:
    """None if `make target` runs in make demo/test or its recipe is run by tests, else why."""
    targets = makefile()
    if target not in targets:
        return f"the Makefile has no target {target!r}"
    if target in reached_from("demo", "test"):
        return None
    if ("make " + target, ()) in NOT_RUN_HERE:
        return None
    prerequisites, recipe = targets[target]
    for prerequisite in prerequisites:
        if prerequisite not in seen and (why := covered_target(prerequisite, (*seen, target))):
            return f"its prerequisite {prerequisite}: {why}"
    for line in recipe:
        line = line.replace("$(PY)", "python").lstrip("@")
        if line.startswith("rm "):
            continue
        why = check_step(re.sub(r"\$\((\w+)\)", r"\1", line))
        if why:
            return f"its recipe line {line!r}: {why}"
    return None


def check_step(step: str) -> str | None:
    """None if this step of a command is one a test runs (or NOT_RUN_HERE explains), else why."""
    try:
        words = shlex.split(step)
    except ValueError as error:
        return f"cannot be read as a shell command ({error})"
    if not words or words[0] == "cd":
        return None
    sig, script, problem = signature(words)
    if problem:
        return problem
    program, options = sig
    if script is not None:
        if not (ROOT / script).is_file():
            return f"there is no {script} in the kit"
        unknown = [o for o in options if o.startswith("-") and o not in script_options(script)]
        if unknown:
            return f"{script} has no option {', '.join(unknown)}"
    if program.startswith("make"):
        return covered_target(program.split()[1]) if " " in program else "make with no target"
    if sig in NOT_RUN_HERE:
        return None
    if sig not in RUN_BY:
        return (f"no test runs {program} with exactly {list(options) or 'no options'}: add the "
                "test to RUN_BY in tests/test_docs.py, or show a command a test runs")
    return run_by_problem(sig, script)


def run_by_problem(sig, script) -> str | None:
    """Why RUN_BY's tests for sig do not show the command, or None."""
    program, options = sig
    tests, evidence = RUN_BY[sig] if isinstance(RUN_BY[sig], tuple) else (RUN_BY[sig], None)
    file, names = tests.split("::")
    sources = [source_of(file, name) for name in names.split("+")]
    if None in sources:
        return f"RUN_BY names {tests}, which is not in tests/{file}"
    source = "\n".join(sources)
    if evidence is not None:
        missing = [e for e in evidence if e not in source]
        return f"{tests} does not hold {missing}" if missing else None
    if script is not None:
        stem = Path(script).stem
        names = [Path(script).name, f"{stem}.", ".".join(Path(script).with_suffix("").parts)]
    else:
        names = [program.split()[-1]]
    if not any(n in source for n in names):
        return f"{tests} does not run {program} (none of {names} is in its source)"
    for option in options:
        if option not in source:
            return f"{tests} does not use {option}"
    return None


def check_command(command: str) -> str | None:
    for step in command.split("&&"):
        why = check_step(step.strip())
        if why:
            return why
    return None


def doc_problems(path: Path, text: str) -> list[str]:
    """Every problem of one markdown file, each naming the file, the line and what is wrong."""
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    problems = []
    for language, _, number in fenced_blocks(text):
        if language not in LANGUAGES:
            problems.append(f"{where}:{number}: a fenced block must name its language, one of "
                            f"{sorted(LANGUAGES)} (seen {language!r}), so its commands are checked")
    for number, command in commands(text):
        why = check_command(command)
        if why:
            problems.append(f"{where}:{number}: `{command}`: {why}")
    for number, span in inline_spans(text):
        option = span.split()[0].split("=")[0]
        if re.fullmatch(r"--[a-z0-9-]+", option) and option not in FOREIGN_OPTIONS \
                and not any(option in script_options(s) for s in all_scripts()):
            problems.append(f"{where}:{number}: `{span}`: no kit script has the option {option}")
    for number, line in prose_lines(text):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            why = link_problem(path, target)
            if why:
                problems.append(f"{where}:{number}: link {target}: {why}")
    return problems


@cache
def all_scripts() -> tuple[str, ...]:
    return tuple(str(p.relative_to(ROOT)) for folder in ("autograder", "scripts")
                 for p in sorted((ROOT / folder).glob("*.py")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def link_problem(path: Path, target: str) -> str | None:
    if re.match(r"^[a-z]+:", target):  # https:, mailto:
        return None
    file, _, anchor = target.partition("#")
    destination = (path.parent / file).resolve() if file else path
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix == ".md":
        headings = {slug(h) for h in re.findall(r"^#+ (.+)$", destination.read_text(), re.M)}
        if anchor not in headings:
            return f"{destination.name} has no heading #{anchor}"
    return None


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_is_run_by_a_test_and_every_link_resolves(path):
    problems = doc_problems(path, path.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_the_tables_name_only_what_the_docs_show():
    """No stale entry: each RUN_BY and NOT_RUN_HERE signature is a command of the docs (or a
    make recipe line they reach), and each RUN_BY test exists."""
    shown = set()
    for path in DOCS:
        for _, command in commands(path.read_text(encoding="utf-8")):
            for step in command.split("&&"):
                sig, _, _ = signature(shlex.split(step.strip()) or ["cd"])
                shown.add(sig)
                if sig and sig[0].startswith("make ") and sig[0].split()[1] in makefile():
                    for target in reached_from(sig[0].split()[1]):
                        for line in makefile()[target][1]:
                            line = re.sub(r"\$\((\w+)\)", r"\1",
                                          line.replace("$(PY)", "python").lstrip("@"))
                            if line.startswith("python "):
                                shown.add(signature(shlex.split(line))[0])
    stale = [sig for sig in (*RUN_BY, *NOT_RUN_HERE) if sig not in shown]
    assert not stale, f"entries no doc shows any more (remove them): {stale}"
    for sig, tests in RUN_BY.items():
        tests = tests[0] if isinstance(tests, tuple) else tests
        file, names = tests.split("::")
        for name in names.split("+"):
            assert source_of(file, name), f"{tests}: no {name} in tests/{file}"


def test_the_two_commands_and_the_guides_are_on_the_front_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    linked = set(re.findall(r"\]\(docs/([^)#]+)", readme))
    guides = {p.name for p in DOCS[1:]}
    assert guides <= linked, f"guides the README does not link: {sorted(guides - linked)}"


WRONG = """\
```bash
make no-such-target
python autograder/grade.py SUBMISSIONS --out OUT --simlarity
python autograder/grade.py SUBMISSIONS --out OUT --missing-as-zero
python scripts/no_such_script.py
rm -rf build
```

```
make demo
```

Run `python autograder/grade.py SUBMISSIONS --out OUT --id-pattern X`; see [a guide](nowhere.md),
[a heading](grading.md#no-such-heading) and `--no-such-option`.
"""


def test_a_wrong_command_is_named():
    """Each kind of wrong command, link or block is found, with its line."""
    found = doc_problems(ROOT / "docs" / "wrong.md", WRONG)
    expected = [("2:", "no target 'no-such-target'"), ("3:", "no option --simlarity"),
                ("4:", "no test runs autograder/grade.py with exactly ['--missing-as-zero', "
                       "'--out']"),
                ("5:", "no scripts/no_such_script.py"), ("6:", "no test runs rm"),
                ("9:", "must name its language"), ("13:", "['--id-pattern', '--out']"),
                ("13:", "link nowhere.md: no such file"), ("14:", "has no heading #no-such-heading"),
                ("14:", "no kit script has the option --no-such-option")]
    for line, words in expected:
        assert any(p.startswith(f"docs/wrong.md:{line}") and words in p for p in found), \
            (line, words, found)
    assert len(found) == len(expected), found


def test_make_translation_reports_and_accepts(tmp_path, monkeypatch, capsys):
    """The two commands of docs/korean.md that no other test runs: `python
    scripts/make_translation.py` (it lists what is missing or stale; nothing is, so it exits 0)
    and `--accept ko GRADE_ID` (on a copy whose block for that cell is stale: afterwards it is
    current, and no other block changed)."""
    import shutil
    import sys

    from scripts import make_translation

    monkeypatch.setattr(sys, "argv", ["make_translation.py"])
    with pytest.raises(SystemExit) as done:
        make_translation.main()
    assert done.value.code == 0, capsys.readouterr().out
    copy = tmp_path / "translations"
    shutil.copytree(make_translation.TRANSLATIONS, copy)
    monkeypatch.setattr(make_translation, "TRANSLATIONS", copy)
    notebook, language = make_translation.editions()[0]
    path = make_translation.translation_file(notebook, language)
    cells = make_translation.read_translation(path)
    gid = next(iter(cells))
    cells[gid] = make_translation.Translated(gid, "0" * 64, cells[gid].text)
    make_translation.write_translation(path, notebook, language, cells)
    english = make_translation.read_notebook(notebook)
    assert make_translation.problems(english, make_translation.read_translation(path), "f",
                                     language), "the stale block should be named"
    monkeypatch.setattr(sys, "argv", ["make_translation.py", "--accept", language, gid])
    make_translation.main()
    assert make_translation.problems(english, make_translation.read_translation(path), "f",
                                     language) == []
    assert (path.read_text(encoding="utf-8")
            == (ROOT / "solutions" / "translations" / path.name).read_text(encoding="utf-8"))


# Papers are cited by title and arXiv id, never by their authors' names (the kit names no
# people). "et al." is how a name slips in; the others are the names earlier drafts used.
NAMES = re.compile(r"\bet al\b|\bPoole\b|\bRombach\b|\bMetzer\b|\bSalimans\b|\bTweedie\b"
                   r"|\bHo & |\bHo et\b")


def _prose_files():
    yield from DOCS
    yield ROOT / "solutions" / "sds_assignment.ipynb"
    yield from sorted((ROOT / "solutions" / "translations").glob("*.md"))
    yield from sorted((ROOT / "sdskit" / "locale").rglob("*.po"))


def test_no_names_of_people():
    """Check that the chapter, its translations, the messages and the guides cite no author by name."""
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
             for path in _prose_files()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if NAMES.search(line)]
    assert not found, "cite the paper by title and arXiv id instead:\n" + "\n".join(found)
