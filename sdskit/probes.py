"""Device and precision probes: what only fails on a GPU, checked on a machine without one.

On Colab, `train_step` runs on `self.device = "cuda"` with `self.precision_t = torch.float16`;
the checks and the try-it cells run on the CPU in float32. A tensor that a blank makes on the
CPU (`torch.randint(...)` without `device=`), or a float32 picture handed to fp16 weights,
works there and stops `train_step` on a GPU. So each check also runs its blank on:

    a meta instance   self.device is torch.device("meta"): PyTorch's device for tensors that have
                      a shape and a dtype but no data, so every operation runs (on shapes only)
                      and nothing is computed. Its modules and `self.alphas` are meta copies and
                      the blank's inputs are meta tensors, as they are all on "cuda" in a GPU run;
                      a tensor the blank makes on the CPU, or moves there, comes out on "cpu".
    an fp16 instance  self.precision_t is torch.float16 and the inputs have the dtypes that
                      train_step gives the blank under fp16. Its VAE is a stand-in with fp16
                      weights and the real one's interface (`HalfVAE`): the tiny VAE in fp16 takes
                      about 6 s per 512x512 encoding on a CPU, and what the probe needs is only
                      that the picture reaches the weights in their dtype.

`checks.reference_instance(cls, device="meta")` and `checks.reference_instance(cls, fp16=True)`
build them; the try-it cells use them too.
"""

import copy
import functools
from types import SimpleNamespace

import torch
import torch.nn as nn

META = torch.device("meta")


@functools.lru_cache(maxsize=1)
def meta_modules(vae, text_encoder, unet):
    """Meta copies of the tiny model's modules (made once; the originals stay as they are)."""
    return tuple(copy.deepcopy(module).to(META) for module in (vae, text_encoder, unet))


class HalfVAE(nn.Module):
    """A stand-in for the VAE with fp16 weights: `encode(x).latent_dist` (a diagonal Gaussian
    with `sample()`, `mean`, `mode()`), `config.scaling_factor`, `dtype` and `device`, as
    diffusers' AutoencoderKL has them. One 8x8 convolution with stride 8 maps [B, 3, H, W] to
    the posterior's mean and log-variance, [B, 8, H/8, W/8]; like the real VAE's first
    convolution, it raises on a float32 input ("Input type (float) and bias type (c10::Half)
    should be the same")."""

    def __init__(self, scaling_factor: float):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=8, stride=8)
        self.config = SimpleNamespace(scaling_factor=scaling_factor, latent_channels=4)
        self.requires_grad_(False)
        self.half()

    @property
    def dtype(self) -> torch.dtype:
        return self.conv.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv.weight.device

    def encode(self, x):
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        return SimpleNamespace(latent_dist=DiagonalGaussianDistribution(self.conv(x)))


@functools.lru_cache(maxsize=1)
def half_modules(vae, text_encoder, unet):
    """(stand-in fp16 VAE, fp16 copies of the text encoder and U-Net), made once."""
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # the stand-in's weights, the same in every process
    stand_in = HalfVAE(vae.config.scaling_factor)
    torch.random.set_rng_state(torch_state)
    return stand_in, copy.deepcopy(text_encoder).half(), copy.deepcopy(unet).half()


def configure(sd, device="cpu", fp16: bool = False):
    """Put a reference instance `sd` (checks.reference_instance) on `device` ("cpu" or "meta")
    and, with fp16, in half precision. Returns sd."""
    device = torch.device(device)
    if device.type not in ("cpu", "meta"):
        raise ValueError(f"reference instances live on the CPU or on 'meta', not {device}")
    if fp16:
        sd.vae, sd.text_encoder, sd.unet = half_modules(sd.vae, sd.text_encoder, sd.unet)
        sd.precision_t = torch.float16
    if device.type == "meta":
        sd.vae, sd.text_encoder, sd.unet = meta_modules(sd.vae, sd.text_encoder, sd.unet)
        sd.alphas = sd.alphas.to(META)
    sd.device = device
    return sd


def meta_like(tensor: torch.Tensor) -> torch.Tensor:
    """A meta tensor of the same shape, dtype and requires_grad."""
    return torch.empty(tensor.shape, dtype=tensor.dtype, device=META).requires_grad_(
        tensor.requires_grad)
