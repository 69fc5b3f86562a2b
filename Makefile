# Two commands set everything up on a fresh machine:
#   make demo   create the environment, build the tiny model, the release and the student bundle,
#               grade the example class, run the solution notebooks on the CPU
#   make test   create the environment and run the whole test suite
# And for instructors:
#   make regenerate   rebuild every generated file (tiny model, reference tensors, figures,
#                     message catalogues, notebooks/)
#   make student      build the student repository build/student/ and its zip (nothing secret in it)
#   make grade SUBMISSIONS=path/to/class OUT=path/to/results
#   make gradescope   write build/gradescope/autograder.zip (Gradescope's autograder format)
# What each does, and the rest: README.md and the guides in docs/.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
export HF_HUB_OFFLINE := 1

.PHONY: env sandbox demo test regenerate tiny-model references figures catalogue release student grade gradescope benchmark clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

env: $(VENV)/.installed

# Grading runs each blank inside bubblewrap. Install it where we can (root, apt); elsewhere
# grading still works, with rlimits and a fresh process per blank but no namespaces.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq bubblewrap >/dev/null 2>&1)); } \
		|| echo "note: bubblewrap is not installed; grading runs without namespaces (docs/sandbox.md)"

tiny-model: env
	$(PY) scripts/make_tiny_model.py

references: env
	$(PY) scripts/make_references.py

# The notebook's stored figures (assets/figures/*.png), attached to its markdown cells.
figures: env
	$(PY) scripts/make_figures.py

# The message catalogues (sdskit/locale/): extract every tr("...") with Babel, merge into each
# language's .po, compile the .mo files; it lists what still needs a translation.
catalogue: env
	$(PY) scripts/make_catalogue.py

release: env
	$(PY) scripts/make_release.py

regenerate: tiny-model references figures catalogue release

student: release
	$(PY) scripts/make_student.py

demo: tiny-model student sandbox
	rm -rf build/examples build/demo
	$(PY) -m autograder.submissions build/examples
	$(PY) autograder/grade.py build/examples --out build/demo
	$(PY) scripts/run_notebooks.py solutions --out build/executed

test: env sandbox
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 tests  # two workers, a test file each

JOBS ?= 2
grade: env sandbox
	$(PY) autograder/grade.py $(SUBMISSIONS) --out $(OUT) --jobs $(JOBS)

gradescope: env
	$(PY) -m autograder.gradescope build --out build/gradescope

benchmark: env sandbox
	$(PY) scripts/benchmark_grading.py --jobs $(JOBS)

clean:
	rm -rf build $(VENV)
