"""The finished StableDiffusion drops into stable-dreamfusion: a contract test.

It replays, on the tiny model, every call stable-dreamfusion's trainer makes to its Stable
Diffusion guidance, with the trainer's argument names, shapes and ordering: the constructor as
main.py calls it (positional: device, fp16, vram_O, sd_version, hf_key, t_range), freezing its
parameters and `get_text_embeds` as Trainer.__init__ and prepare_embeddings do, then
`train_step(text_z, pred_rgb, as_latent=..., guidance_scale=..., grad_scale=...,
save_guidance_path=...)` with text_z built as Trainer.train_step builds it: [2B, 77, D], B
unconditional embeddings, then one per view, interpolated by azimuth between the front, side
and back prompts. `--perpneg` calls `train_step_perpneg`, which the kit does not implement.
"""

import imageio.v3 as iio
import pytest
import torch

from sdskit.paths import TINY_SD

T_RANGE = [0.02, 0.98]  # main.py's default --t_range


@pytest.fixture(scope="module")
def sd(solution_class):
    # main.py: StableDiffusion(device, opt.fp16, opt.vram_O, opt.sd_version, opt.hf_key, opt.t_range)
    guidance = solution_class(torch.device("cpu"), False, False, "2.1", str(TINY_SD), T_RANGE)
    for parameter in guidance.parameters():  # Trainer.__init__ freezes every guidance module
        parameter.requires_grad = False
    return guidance


@pytest.fixture(scope="module")
def embeddings(sd):
    """Trainer.prepare_embeddings, with its prompts: each [1, 77, D]."""
    text, negative = "a DSLR photo of a hamburger", ""
    table = {"default": sd.get_text_embeds([text]), "uncond": sd.get_text_embeds([negative])}
    for view in ("front", "side", "back"):
        table[view] = sd.get_text_embeds([f"{text}, {view} view"])
    return table


def trainer_text_z(table: dict, azimuth: torch.Tensor) -> torch.Tensor:
    """text_z as Trainer.train_step builds it without --perpneg: [2B, 77, D], B uncond, then for
    each view the prompt interpolated by its azimuth (degrees, -180..180): front to side within
    90 degrees of the front, side to back beyond."""
    conditional = []
    for angle in azimuth.tolist():
        if -90 <= angle < 90:
            r, start, end = 1 - abs(angle) / 90, table["front"], table["side"]
        else:
            r, start, end = 1 - (abs(angle) - 90) / 90, table["side"], table["back"]
        conditional.append(r * start + (1 - r) * end)
    return torch.cat([table["uncond"]] * len(conditional) + conditional, dim=0)


@pytest.mark.parametrize("as_latent, batch", [(False, 1), (True, 2)])
def test_train_step_as_the_trainer_calls_it(sd, embeddings, tmp_path, as_latent, batch):
    """A training step with the trainer's keywords, and the guidance picture it asks for."""
    azimuth = torch.tensor([30.0, -150.0][:batch])
    text_z = trainer_text_z(embeddings, azimuth)
    assert text_z.shape[0] == 2 * batch
    pred_rgb = torch.rand(batch, 4 if as_latent else 3, 64, 64, requires_grad=True)
    folder = tmp_path / "guidance"
    folder.mkdir()
    save_guidance_path = folder / "step_0000001.png"  # Trainer.train_one_epoch's name for it
    loss = 0
    loss = loss + sd.train_step(text_z, pred_rgb, as_latent=as_latent, guidance_scale=100,
                                grad_scale=1, save_guidance_path=save_guidance_path)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss), loss
    assert pred_rgb.grad is not None and pred_rgb.grad.abs().sum() > 0
    picture = iio.imread(save_guidance_path)
    # Three rows (the render, z_t decoded, the one-step guess decoded), one column per view.
    assert picture.shape == (3 * 512, batch * 512, 3), picture.shape
    assert picture.std() > 0, "the guidance picture is blank"


def _one_step(sd, text_z, x, t, noise):
    """The gradient of one train_step on the 4-channel render x (as_latent: no VAE sampling)."""
    x = x.clone().requires_grad_(True)
    sd.sample_timestep = lambda batch: t
    try:
        sd.train_step(text_z, x, as_latent=True, guidance_scale=100, grad_scale=1,
                      save_guidance_path=None, noise=noise).backward()
    finally:
        del sd.sample_timestep
    return x.grad


def test_each_view_gets_its_own_prompt_and_t(sd, embeddings):
    """[2B, 77, D] in the trainer's order and one t per image give each view exactly the step it
    would get alone with its own [uncond, cond] and its own t (the batch loss averages, so / B).
    (The solution's blank 5 draws one t for the whole batch, shape (1,), as the other tests use.)"""
    torch.manual_seed(0)
    text_z = trainer_text_z(embeddings, torch.tensor([10.0, 170.0]))
    x = torch.rand(2, 4, 64, 64)
    noise = torch.randn(2, 4, 64, 64)
    t = torch.tensor([100, 900])
    together = _one_step(sd, text_z, x, t, noise)
    # The second view alone: a wrong pairing of the embeddings, or the first view's t used for
    # both, gives it a different step.
    alone = _one_step(sd, text_z[[1, 3]], x[1:], t[1:], noise[1:])
    # guidance_scale 100 magnifies the float rounding of a batched U-Net: compare to scale
    torch.testing.assert_close(together[1:], alone / 2, rtol=0, atol=1e-4 * alone.abs().max().item())


def test_produce_latents_for_a_batch(sd, embeddings):
    """produce_latents samples one image per [uncond, cond] pair of a [2B, 77, D] batch."""
    text_z = trainer_text_z(embeddings, torch.tensor([0.0, 180.0]))
    torch.manual_seed(0)
    together = sd.produce_latents(text_z, height=64, width=64, num_inference_steps=1)
    assert together.shape == (2, 4, 8, 8)
    torch.manual_seed(0)
    start = torch.randn(2, 4, 8, 8)  # the same draw produce_latents started from
    for i in range(2):
        alone = sd.produce_latents(text_z[[i, 2 + i]], 64, 64, 1, latents=start[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-4, atol=1e-5)


def test_perpneg_says_it_is_not_part_of_the_assignment(sd, embeddings):
    """--perpneg: train_step_perpneg(text_z [(1+K)B, 77, D], weights [KB], pred_rgb, ...)."""
    table = embeddings
    text_z = torch.cat([table["uncond"], table["front"], table["front"], table["side"]])
    weights = torch.tensor([1.0, 0.0, -2.0])
    with pytest.raises(NotImplementedError, match="not part of this assignment.*--perpneg"):
        sd.train_step_perpneg(text_z, weights, torch.rand(1, 3, 64, 64), as_latent=False,
                              guidance_scale=100, grad_scale=1, save_guidance_path=None)


def test_wrong_embedding_count_is_explained(sd, embeddings):
    text_z = torch.cat([embeddings["uncond"]] * 3)
    with pytest.raises(ValueError, match=r"\[2B, 77, D\].*got shape \[3, 77"):
        sd.train_step(text_z, torch.rand(2, 3, 64, 64))
