"""Generated files are what their scripts make now: the tiny model, the reference tensors,
the student notebooks (each edition too). Each test names the command that regenerates the file."""

import json
import subprocess
import sys

import torch
from safetensors.torch import load_file

from sdskit.config import COURSE
from sdskit.paths import HIDDEN_REFERENCES, NOTEBOOKS, REFERENCES, ROOT, SOLUTIONS, TINY_SD

REGENERATE = "run `make regenerate` and commit the result"


def _same(a, b, where=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor) and a.is_floating_point():
        # Another CPU may round differently in the last bits (other SIMD kernels: seen here,
        # 5e-7 on VAE latents); any change to a script moves values by orders of magnitude more.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"{where}: tensors differ")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where}: tensors differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_tiny_model_matches_its_script(tmp_path):
    from scripts.make_tiny_model import build_tiny_sd

    fresh = build_tiny_sd(tmp_path / "tiny-sd")
    committed = sorted(p.relative_to(TINY_SD) for p in TINY_SD.rglob("*") if p.is_file())
    made = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert committed == made, f"assets/tiny-sd has other files than the script makes; {REGENERATE}"
    for name in made:
        if name.suffix == ".safetensors":
            _same(load_file(TINY_SD / name), load_file(fresh / name), str(name))
        else:
            assert (TINY_SD / name).read_text() == (fresh / name).read_text(), \
                f"assets/tiny-sd/{name} drifted; {REGENERATE}"


def test_references_match_the_solution(tmp_path):
    out, hidden = tmp_path / "references.pt", tmp_path / "hidden_references.pt"
    subprocess.run([sys.executable, "scripts/make_references.py", "--out", str(out),
                    "--hidden-out", str(hidden)], cwd=ROOT, check=True, capture_output=True)
    for committed, made in ((REFERENCES, out), (HIDDEN_REFERENCES, hidden)):
        _same(torch.load(committed, weights_only=True), torch.load(made, weights_only=True),
              f"{committed.relative_to(ROOT)} ({REGENERATE})")


def test_release_is_what_nbgrader_makes_of_the_solutions(tmp_path):
    subprocess.run([sys.executable, "scripts/make_release.py", "--out", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    for name in COURSE.released:
        made = json.loads((tmp_path / name).read_text())
        committed = json.loads((NOTEBOOKS / name).read_text())
        assert committed == made, \
            f"notebooks/{name} drifted from what make_release.py makes of solutions/; {REGENERATE}"


def test_setup_cells_carry_the_configured_repository():
    for folder, names in ((SOLUTIONS, COURSE.notebooks), (NOTEBOOKS, COURSE.released)):
        for name in names:
            text = (folder / name).read_text()
            assert f'STUDENT_REPO = \\"{COURSE.student_repo_url}\\"' in text, \
                f"{folder.name}/{name}'s setup cell has another URL than sdskit/config.py; {REGENERATE}"


def test_notebooks_are_committed_without_outputs():
    for folder, names in ((SOLUTIONS, COURSE.notebooks), (NOTEBOOKS, COURSE.released)):
        for name in names:
            cells = json.loads((folder / name).read_text())["cells"]
            heavy = [i for i, c in enumerate(cells) if c.get("outputs")]
            assert not heavy, f"{folder.name}/{name} has outputs in cells {heavy}: clear them"
