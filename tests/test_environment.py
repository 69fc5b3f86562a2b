"""The pins in requirements.txt, environment.yml and requirements-colab.txt agree."""

import re

from sdskit.paths import ROOT

PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def _pins(path):
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_environment_yml_has_the_same_pins_as_requirements():
    assert _pins("environment.yml") == _pins("requirements.txt")


def test_colab_pins_agree_and_leave_torch_alone():
    colab, full = _pins("requirements-colab.txt"), _pins("requirements.txt")
    assert "torch" not in colab, "Colab brings its own torch; do not reinstall it"
    for name, version in colab.items():
        assert full.get(name) == version, f"{name}: colab {version} vs requirements {full.get(name)}"


def test_colab_pins_every_package_that_decides_what_the_tests_see():
    colab = _pins("requirements-colab.txt")
    for name in ("diffusers", "transformers", "accelerate", "safetensors", "huggingface-hub",
                 "tokenizers"):
        assert name in colab, f"requirements-colab.txt should pin {name}"
