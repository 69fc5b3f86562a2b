"""What the notebooks need to know about where they run: Colab or not, GPU or not, grading or not."""

import os
import sys

import torch

from sdskit.i18n import tr
from sdskit.loading import resolve_model_key
from sdskit.paths import TINY_SD


def under_grader() -> bool:
    """True while nbgrader runs the notebook (autograde or validate): heavy cells skip then."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def on_colab() -> bool:
    return "google.colab" in sys.modules


def report_gpu() -> None:
    """One line on the accelerator, and what the notebook will use."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        print(tr("GPU: {name}, {memory} GiB. The real Stable Diffusion will be used.",
                 name=props.name, memory=format(props.total_memory / 2**30, ".1f")))
    else:
        print(tr("No GPU: the notebook uses the kit's tiny offline model, whose pictures are "
                 "noise. Your code is checked the same way; for real images, on Colab choose "
                 "Runtime > Change runtime type > T4 GPU."))


def choose_model(sd_version: str = "2.1"):
    """(device, fp16, model key): the real model on a GPU, the tiny model on a CPU or in grading."""
    if torch.cuda.is_available() and not under_grader():
        return "cuda", True, resolve_model_key(sd_version)
    return "cpu", False, str(TINY_SD)
