"""The 2D warm-up: SDS on a single picture, the simplest differentiable image generator (x = theta).

Each step calls the student's `train_step` on the picture, back-propagates, and takes an Adam step
on its pixels, then clamps them to [0, 1]. Two priors:

    oracle_warmup   CPU, no real weights: the oracle U-Net of sdskit/oracle.py knows a target
                    picture and predicts the noise exactly for it, so right SDS converges to the
                    target in a few seconds. The picture goes through train_step's latent path
                    (blank 3): RGB plus a constant fourth channel, z = 2 interpolate(x) - 1.
    prompt_warmup   GPU, real Stable Diffusion: the picture goes through the VAE (blank 4) and
                    SDS turns noise into a picture of the prompt.
"""

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sdskit import checks
from sdskit.figures import demo_image
from sdskit.oracle import OracleUNet


@dataclass
class WarmupConfig:
    steps: int = 100
    size: int = 64  # the picture is [1, 3, size, size]
    lr: float = 0.03
    guidance_scale: float = 100.0
    snapshot_steps: tuple = (0, 10, 25, 50, 100)
    seed: int = 0


@dataclass
class WarmupResult:
    image: torch.Tensor  # [1, 3, size, size] in [0, 1], after the last step
    snapshots: list = field(default_factory=list)  # [1, 3, size, size] each, at snapshot_steps
    snapshot_steps: list = field(default_factory=list)
    target: torch.Tensor | None = None  # the oracle's target picture, if any
    start_error: float = float("nan")  # RMS distance to the target, before and after
    final_error: float = float("nan")
    steps: int = 0
    seconds: float = 0.0
    # what train_step returned at each step: 1/2 ||g||^2 / B, the squared size of the SDS
    # gradient, not an objective (it need not go down with a real prior)
    losses: list = field(default_factory=list)


def optimise(sd, text_embeddings, config: WarmupConfig, as_latent: bool, device="cpu",
             start: torch.Tensor | None = None) -> WarmupResult:
    """Optimise a picture with sd.train_step. text_embeddings: [2, 77, D] as [uncond, cond]."""
    begin = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    if start is None:
        start = torch.rand(1, 3, config.size, config.size, generator=generator)
    image = start.clone().to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=config.lr)
    result = WarmupResult(image=image, steps=config.steps)
    torch.manual_seed(config.seed)  # train_step's draws of t and the noise
    for step in range(config.steps + 1):
        if step in config.snapshot_steps:
            result.snapshots.append(image.detach().float().cpu().clone())
            result.snapshot_steps.append(step)
        if step == config.steps:
            break
        optimizer.zero_grad()
        picture = torch.cat([image, torch.ones_like(image[:, :1])], dim=1) if as_latent else image
        loss = sd.train_step(text_embeddings, picture, guidance_scale=config.guidance_scale,
                             as_latent=as_latent)
        loss.backward()
        result.losses.append(loss.detach())
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    result.image = image.detach().float().cpu()
    result.losses = torch.stack(result.losses).float().tolist() if result.losses else []
    result.seconds = time.perf_counter() - begin
    return result


def oracle_target(image: torch.Tensor) -> torch.Tensor:
    """The oracle's z* for a picture [1, 3, H, W]: the latent path's map of [rgb, 1]."""
    render = torch.cat([image, torch.ones_like(image[:, :1])], dim=1)
    return 2 * F.interpolate(render, size=(64, 64), mode="bilinear", align_corners=False) - 1


def oracle_prior(sd_class, target: torch.Tensor):
    """A StableDiffusion instance (reference state, the class's methods) with the oracle U-Net.

    Built like the checks build theirs (checks.reference_instance), so it needs no blank 1 or 2.
    """
    sd = checks.reference_instance(sd_class)
    sd.unet = OracleUNet(sd.scheduler.alphas_cumprod)
    sd.unet.target = oracle_target(target)
    return sd


def oracle_warmup(sd_class, config: WarmupConfig | None = None) -> WarmupResult:
    """SDS from noise towards a known picture (the sky and hills of figures.demo_image), on the CPU."""
    config = config or WarmupConfig()
    target = demo_image(config.size)
    sd = oracle_prior(sd_class, target)
    text_embeddings = torch.zeros(2, 1, 1)  # [uncond, cond]; the oracle ignores the text
    result = optimise(sd, text_embeddings, config, as_latent=True)
    result.target = target
    result.start_error = (result.snapshots[0] - target).pow(2).mean().sqrt().item()
    result.final_error = (result.image - target).pow(2).mean().sqrt().item()
    return result


def prompt_warmup(sd, prompt: str, guidance_scale: float = 100.0, steps: int = 150,
                  size: int = 256, lr: float = 0.01, seed: int = 0) -> WarmupResult:
    """SDS from noise to a picture of the prompt, with a real StableDiffusion `sd` (GPU)."""
    text_embeddings = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds([prompt])])
    config = WarmupConfig(steps=steps, size=size, lr=lr, guidance_scale=guidance_scale,
                          snapshot_steps=(0, steps), seed=seed)
    return optimise(sd, text_embeddings, config, as_latent=False, device=sd.device)
