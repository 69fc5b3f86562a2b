"""Where the kit's files live, relative to this package (works in a clone and on Colab)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the kit's top folder
ASSETS = ROOT / "assets"
TINY_SD = ASSETS / "tiny-sd"  # the offline tiny Stable Diffusion (sdskit/tiny_model.py)
REFERENCES = ASSETS / "references.pt"  # reference tensors (scripts/make_references.py)
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
