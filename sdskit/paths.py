"""Where the kit's files live, relative to this package (works in a clone and on Colab)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the kit's top folder
ASSETS = ROOT / "assets"
TINY_SD = ASSETS / "tiny-sd"  # the offline tiny Stable Diffusion (scripts/make_tiny_model.py)
REFERENCES = ASSETS / "references.pt"  # the visible tests' reference tensors (scripts/make_references.py)
# The hidden tests' cases and expected tensors: only in the instructor's copy, never in a student's.
HIDDEN_REFERENCES = ROOT / "autograder" / "hidden_references.pt"
SOLUTIONS = ROOT / "solutions"  # the instructor's copy only
NOTEBOOKS = ROOT / "notebooks"
