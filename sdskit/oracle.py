"""The text-to-3D oracle check: SDS with a prior whose right answer is known.

A real Stable Diffusion cannot say whether a NeRF "looks like a hamburger" in a test. Here the
prior is replaced by an oracle denoiser that knows a target object:

    target      a fixed analytic field (a sphere and a box, coloured), rendered by the same
                renderer as the NeRF (sdskit/nerf.py)
    latents     train_step's as_latent mode: the render [rgb, opacity] is used as 4 latent
                channels, z = 2 interpolate(render) - 1 (no VAE)
    oracle      given the camera, z* = latents of the target's render from that camera, and the
                noise prediction is exact for it:
                    eps_hat(z_t, t) = (z_t - sqrt(abar_t) z*) / sqrt(1 - abar_t)

With z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps this gives
    eps_hat - eps = sqrt(abar_t / (1 - abar_t)) (z - z*),
so the SDS gradient w(t) (eps_hat - eps) = sqrt(abar_t (1 - abar_t)) (z - z*) points straight
from the render to the target's render: SDS done right must reconstruct the object, and SDS
done wrong (sign flipped, targets not detached) must not.

The oracle ignores the text, so classifier-free guidance changes nothing: eps_cond = eps_uncond.
The optimisation goes through the kit's own `train_step` and the kit's own loop
(sdskit.text_to_3d.run); only the U-Net of the StableDiffusion instance is swapped.
"""

import time
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

from sdskit import nerf as N
from sdskit import text_to_3d as T

# Pass marks of the check, on held-out views.
MIN_IOU = 0.85
MIN_PSNR = 20.0


class TargetField(nn.Module):
    """A known object: an orange sphere beside a teal box, with a fixed white background."""

    def __init__(self, config: N.NeRFConfig, density=80.0, sharpness=0.01):
        super().__init__()
        self.config = config
        self.peak, self.sharpness = density, sharpness
        self.register_buffer("sphere_centre", torch.tensor([0.2, 0.0, 0.05]))
        self.register_buffer("box_centre", torch.tensor([-0.2, 0.05, -0.05]))
        self.register_buffer("box_half", torch.tensor([0.17, 0.25, 0.15]))
        self.register_buffer("bg", torch.tensor([1.0, 1.0, 1.0]))

    def _sdf(self, x):  # x: [N, 3] -> signed distances of the sphere and the box, [N] each
        sphere = (x - self.sphere_centre).norm(dim=-1) - 0.27
        q = (x - self.box_centre).abs() - self.box_half  # box SDF: |max(q,0)| + min(max_k q_k, 0)
        box = q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)
        return sphere, box

    def density(self, x):  # [N, 3] -> [N]
        sphere, box = self._sdf(x)
        # sigma = peak * sigmoid(-sdf / sharpness): solid inside, empty outside, a thin shell between
        return self.peak * torch.sigmoid(-torch.minimum(sphere, box) / self.sharpness)

    def query(self, x):  # [N, 3] -> sigma [N], albedo [N, 3]
        sphere, box = self._sdf(x)
        orange = torch.stack([0.95 + 0 * x[:, 0], 0.45 + 0.3 * x[:, 1], 0.1 + 0 * x[:, 0]], -1)
        teal = torch.stack([0.1 + 0 * x[:, 0], 0.5 + 0.6 * x[:, 1], 0.55 + 0 * x[:, 0]], -1)
        albedo = torch.where((sphere < box)[:, None], orange, teal).clamp(0, 1)
        return self.density(x), albedo

    def background(self, d):  # [N, 3] -> [N, 3]
        return self.bg.expand(d.shape[0], 3)


class OracleUNet(nn.Module):
    """Stands in for the U-Net: predicts the noise exactly for the target's latents z*."""

    def __init__(self, alphas_cumprod):
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod.float())
        self.target = None  # [B, 4, 64, 64], set before each train_step (see OracleCheck.before_step)

    def forward(self, sample, timestep, encoder_hidden_states=None, **kwargs):
        # sample: [2B, 4, 64, 64] = [z_t, z_t] (uncond, cond); timestep: [2B]
        abar = self.alphas_cumprod[timestep].view(-1, 1, 1, 1)  # [2B, 1, 1, 1]
        z_star = self.target.repeat(sample.shape[0] // self.target.shape[0], 1, 1, 1)  # [2B, ...]
        # eps_hat = (z_t - sqrt(abar) z*) / sqrt(1 - abar)
        eps = (sample.float() - abar.sqrt() * z_star) / (1 - abar).sqrt()
        return SimpleNamespace(sample=eps.to(sample.dtype))


def oracle_config(steps=100, seed=0) -> T.TextTo3DConfig:
    """The NeRF and loop settings of the check: small enough for two CPU cores.

    Sized from measured runs (seed 0; held-out IoU / PSNR): right SDS reaches 0.950 / 25.6 dB
    with 100 steps of 24x24 renders and 24 samples per ray (0.933 / 23.9 with 80 steps at 32x32,
    0.919 / 20.7 with 60 steps at 24x24: too near the pass marks); the sign flipped 0.276 / 2.3,
    the targets not detached 0.704 / 13.6 (the initial blob, unchanged)."""
    nerf = N.NeRFConfig(grid_levels=6, grid_features=2, grid_log2_size=19, grid_base_res=12,
                        grid_max_res=64, hidden=32, num_samples=24, background=(1.0, 1.0, 1.0),
                        blob_density=10.0, blob_radius=0.3)
    return T.TextTo3DConfig(nerf=nerf, steps=steps, grid_lr=3e-2, mlp_lr=3e-3, seed=seed,
                            height=24, width=24, as_latent=True, albedo_steps_ratio=1.0,
                            shading_probs={"albedo": 1.0}, lambda_orientation=0.0,
                            lambda_entropy=0.0, lambda_sparsity=0.0, preview_every=0, progress=False,
                            export=False, cpu_steps=None, fp16=False)


def held_out_cameras(device="cpu") -> N.Camera:
    """8 fixed views, none of them a training sample: two elevations, azimuths 45 deg apart."""
    azimuth = torch.tensor([-157.5, -112.5, -67.5, -22.5, 22.5, 67.5, 112.5, 157.5], device=device)
    elevation = torch.tensor([20.0, 45.0] * 4, device=device)
    return N.Camera(torch.full((8,), 1.3, device=device), elevation, azimuth,
                    torch.full((8,), 55.0, device=device))


def scores(model, target, size=64):
    """Mask IoU (opacity > 0.5) and PSNR (albedo renders over the background) on held-out views."""
    camera = held_out_cameras()
    image, opacity = T.evaluate_views(model, camera, size)
    target_image, target_opacity = T.evaluate_views(target, camera, size)
    mask, target_mask = opacity > 0.5, target_opacity > 0.5
    iou = (mask & target_mask).sum() / (mask | target_mask).sum().clamp(min=1)
    mse = F.mse_loss(image.clamp(0, 1), target_image)
    psnr = -10 * torch.log10(mse)
    return float(iou), float(psnr)


class OracleCheck:
    """Build the oracle prior around a StableDiffusion class, optimise a NeRF through it, score it."""

    def __init__(self, sd_class, hf_key=None, config=None):
        from sdskit.paths import TINY_SD

        self.config = config or oracle_config()
        self.sd = sd_class("cpu", False, False, hf_key=str(hf_key or TINY_SD))
        self.sd.unet = OracleUNet(self.sd.scheduler.alphas_cumprod)
        self.target = TargetField(self.config.nerf)

    @torch.no_grad()
    def before_step(self, step, camera):
        """Tell the oracle which view is scored: z* = latents of the target's render from it."""
        cfg = self.config
        out = N.render(self.target, camera, cfg.height, cfg.width, perturb=False)
        render = torch.cat([out["image"], out["opacity"]], dim=1)  # [1, 4, H, W]
        # the same map as train_step's as_latent path: bilinear to 64 x 64, then 2x - 1
        self.sd.unet.target = 2 * F.interpolate(render, size=(64, 64), mode="bilinear",
                                                align_corners=False) - 1

    def run(self, steps=None):
        # Its tensors are small: one thread runs it as fast as two on an idle machine, and much
        # faster on a busy one (measured on two shared cores: 9 s against 23 s).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        start = time.perf_counter()
        try:
            result = T.run(self.sd, "the oracle ignores the prompt", steps=steps,
                           config=self.config, device="cpu", before_step=self.before_step)
            iou, psnr = scores(result.model, self.target)
        finally:
            torch.set_num_threads(threads)
        seconds = time.perf_counter() - start
        return {"iou": iou, "psnr": psnr, "seconds": seconds, "steps": result.steps,
                "passed": iou >= MIN_IOU and psnr >= MIN_PSNR, "result": result}



# ---------------------------------------------------------------------------------------
# Part 7's oracle: a prior with a spread, and a conditional and an unconditional target
# ---------------------------------------------------------------------------------------
class PriorOracle(nn.Module):
    """Stands in for the U-Net with the exact noise prediction of a known Gaussian prior.

    OracleUNet's prior is a single picture z* (a point). Here each prompt's prior is a Gaussian
    around a picture, N(z*, C), whose covariance C is stationary with variance `spread / (f^2 +
    f0^2)` at spatial frequency f (cycles per pixel): the pictures of a prompt agree on the fine
    detail and vary more at coarse scales, as photographs do. The exact prediction for it
    (the score of the noised prior, times -sigma_t) is

        eps_hat(z_t) = sigma_t (alpha_t^2 C + sigma_t^2 I)^-1 (z_t - alpha_t z*),

    computed per frequency with an FFT (on the picture mirrored at its edges, so the borders do
    not wrap around). With spread 0 it is OracleUNet's prediction. Two priors: `cond` (the
    prompt's picture) for the second half of the batch and `uncond` (a washed-out copy: what
    the prior expects without the prompt) for the first half, so that guidance has something
    to amplify: eps_u + s (eps_c - eps_u) is the prediction of a prior whose picture is pushed
    (s - 1) times further from the unconditional one than the prompt's is.
    """

    def __init__(self, alphas_cumprod, cond, uncond, spread=0.003, lowest_frequency=0.01):
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod.float())
        self.register_buffer("cond", cond.float())  # [1, 4, 64, 64]
        self.register_buffer("uncond", uncond.float())  # [1, 4, 64, 64]
        self.spread, self.lowest_frequency = spread, lowest_frequency

    def predict(self, z_t, target, alpha, sigma):
        """eps_hat for the priors N(target, C).

        z_t, target: [B, 4, H, W]; alpha, sigma: [B, 1, 1, 1]  ->  eps_hat: [B, 4, H, W]"""
        height, width = z_t.shape[-2:]
        offset = z_t - alpha * target
        mirrored = F.pad(offset, (width // 2, width // 2, height // 2, height // 2), mode="reflect")
        spectrum = torch.fft.rfft2(mirrored) / (alpha ** 2 * self._variance(mirrored) + sigma ** 2)
        back = torch.fft.irfft2(spectrum, s=mirrored.shape[-2:])
        return sigma * back[..., height // 2:height // 2 + height, width // 2:width // 2 + width]

    def _variance(self, mirrored):
        """The prior's variance per frequency of the mirrored picture's FFT, [h, w] (cached)."""
        key = (tuple(mirrored.shape[-2:]), mirrored.device)
        if getattr(self, "_cached", (None,))[0] != key:
            fy = torch.fft.fftfreq(mirrored.shape[-2], device=mirrored.device)[:, None]
            fx = torch.fft.rfftfreq(mirrored.shape[-1], device=mirrored.device)[None, :]
            self._cached = key, self.spread / (fx ** 2 + fy ** 2 + self.lowest_frequency ** 2)
        return self._cached[1]

    def forward(self, sample, timestep, encoder_hidden_states=None, **kwargs):
        # sample: [2B, 4, 64, 64] = [z_t (uncond), z_t (cond)]; timestep: [2B]
        batch = sample.shape[0] // 2
        abar = self.alphas_cumprod[timestep].view(-1, 1, 1, 1)  # [2B, 1, 1, 1]
        targets = torch.cat([self.uncond.expand(batch, -1, -1, -1),
                             self.cond.expand(batch, -1, -1, -1)])  # [2B, 4, 64, 64]
        eps = self.predict(sample.float(), targets, abar.sqrt(), (1 - abar).sqrt())
        return SimpleNamespace(sample=eps.to(sample.dtype))
