"""Figures for the notebooks: the noise schedule, noising an image, what the prior denoises
it into, and the SDS gradient's size over t. Each function draws one matplotlib figure.

The explorer adds an ipywidgets slider, and draws a static figure first, so the notebook
still shows something where widgets do not render (GitHub's viewer, exported HTML).
"""

import io
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from sdskit import fonts
from sdskit.i18n import tr


def demo_image(size: int = 256) -> torch.Tensor:
    """A small synthetic picture (sky, sun, hills), so the kit needs no image files.

    Returns [1, 3, size, size] in [0, 1].
    """
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    sky = torch.stack([0.35 + 0.4 * y, 0.55 + 0.35 * y, torch.full_like(y, 0.95)])  # [3, H, W]
    sun = ((x - 0.72) ** 2 + (y - 0.28) ** 2 < 0.012).float()
    hill = (y > 0.62 + 0.12 * torch.sin(6.0 * x)).float()
    image = sky * (1 - sun) + torch.tensor([1.0, 0.85, 0.2])[:, None, None] * sun
    grass = torch.stack([0.25 + 0.1 * x, 0.55 + 0.2 * (1 - y), 0.2 + 0 * x])
    image = image * (1 - hill) + grass * hill
    return image.clamp(0, 1)[None]


def _to_numpy_image(image: torch.Tensor):
    """[1, 3, H, W] or [3, H, W] in [0, 1] -> [H, W, 3] numpy, for imshow."""
    image = image.detach().float().cpu()
    if image.dim() == 4:
        image = image[0]
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def noised(image: torch.Tensor, alphas_cumprod: torch.Tensor, t: int, noise=None):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, on an image in [0, 1] (shown in [0, 1])."""
    x0 = 2 * image - 1  # diffusion works on [-1, 1]
    if noise is None:
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    abar = alphas_cumprod[t]
    xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    return (xt + 1) / 2


def plot_noise_schedule(alphas_cumprod: torch.Tensor, min_step: int | None = None,
                        max_step: int | None = None):
    """abar_t, the signal and noise scales, and DreamFusion's weight w(t) = 1 - abar_t."""
    t = torch.arange(len(alphas_cumprod))
    abar = alphas_cumprod.float().cpu()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    ax[0].plot(t, abar, label=r"$\bar\alpha_t$")
    ax[0].plot(t, abar.sqrt(), label=tr(r"signal scale $\sqrt{\bar\alpha_t}$"))
    ax[0].plot(t, (1 - abar).sqrt(), label=tr(r"noise scale $\sqrt{1-\bar\alpha_t}$"))
    ax[0].plot(t, 1 - abar, "--", label=tr(r"SDS weight $w(t) = 1-\bar\alpha_t$"))
    ax[0].set_xlabel(tr("timestep t"))
    ax[0].legend(fontsize=8)
    ax[0].set_title(tr("Stable Diffusion's noise schedule"))
    snr = abar / (1 - abar)
    ax[1].semilogy(t, snr)
    fonts.log_ticks(ax[1].yaxis)
    ax[1].set_xlabel(tr("timestep t"))
    ax[1].set_title(tr(r"signal-to-noise ratio $\bar\alpha_t / (1-\bar\alpha_t)$"))
    if min_step is not None and max_step is not None:
        for a in ax:
            a.axvspan(min_step, max_step, color="grey", alpha=0.12,
                      label=tr("SDS samples t here"))
        ax[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_noising(image: torch.Tensor, alphas_cumprod: torch.Tensor,
                 timesteps=(0, 100, 250, 500, 750, 999)):
    """One image noised at several timesteps, side by side."""
    fig, ax = plt.subplots(1, len(timesteps), figsize=(2.2 * len(timesteps), 2.5))
    for a, t in zip(ax, timesteps):
        a.imshow(_to_numpy_image(noised(image, alphas_cumprod, t)))
        a.set_title(f"t = {t}\n" + r"$\bar\alpha_t$" + f" = {alphas_cumprod[t]:.3f}", fontsize=9)
        a.axis("off")
    fig.tight_layout()
    return fig


def noise_explorer(image: torch.Tensor, alphas_cumprod: torch.Tensor):
    """A slider over t showing x_t. Draws a static figure first, for viewers without widgets.

    Returns the widget, or None where ipywidgets is not installed.
    """
    show_noising(image, alphas_cumprod)
    plt.show()
    try:
        import ipywidgets as widgets
    except ImportError:
        return None

    def picture(t: int) -> bytes:  # PNG of x_t beside the schedule, drawn off-screen
        fig, ax = plt.subplots(1, 2, figsize=(7, 3.4))
        ax[0].imshow(_to_numpy_image(noised(image, alphas_cumprod, t)))
        ax[0].set_title(tr("x_t at t = {t}", t=t))
        ax[0].axis("off")
        abar = alphas_cumprod.float().cpu()
        ax[1].plot(abar.sqrt(), label=tr("signal scale"))
        ax[1].plot((1 - abar).sqrt(), label=tr("noise scale"))
        ax[1].axvline(t, color="k", lw=1)
        ax[1].legend(fontsize=8)
        ax[1].set_xlabel("t")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        return buffer.getvalue()

    slider = widgets.IntSlider(value=250, min=0, max=len(alphas_cumprod) - 1, step=10,
                               description="t", continuous_update=False)
    view = widgets.Image(value=picture(slider.value), format="png")

    def redraw(change):
        view.value = picture(change["new"])

    slider.observe(redraw, names="value")
    return widgets.VBox([slider, view])


@torch.no_grad()
def one_step_denoise(sd, image: torch.Tensor, text_embeddings: torch.Tensor,
                     timesteps=(200, 500, 800), guidance_scale: float = 7.5, seed: int = 0):
    """What the prior believes the clean image is, from x_t in one step, at several t.

    x0_hat = (z_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), decoded by the VAE.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    z0 = sd.encode_rgb(image.to(sd.device))  # [1, 4, 64, 64], through your blank 4
    fig, ax = plt.subplots(2, len(timesteps), figsize=(2.6 * len(timesteps), 5.4))
    for column, t in enumerate(timesteps):
        noise = torch.randn(z0.shape, generator=generator).to(z0)
        tt = torch.tensor([t], device=sd.device)
        zt = sd.scheduler.add_noise(z0, noise, tt)
        eps = sd.unet(torch.cat([zt] * 2).to(sd.precision_t), torch.cat([tt] * 2),
                      encoder_hidden_states=text_embeddings).sample.float()
        eps_uncond, eps_cond = eps.chunk(2)
        eps_hat = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        abar = sd.alphas[t].float()
        z0_hat = (zt - (1 - abar).sqrt() * eps_hat) / abar.sqrt()
        shown_noisy = sd.decode_latents(zt.to(sd.precision_t))
        shown_clean = sd.decode_latents(z0_hat.to(sd.precision_t))
        ax[0, column].imshow(_to_numpy_image(shown_noisy))
        ax[0, column].set_title(tr("decoded z_t, t = {t}", t=t), fontsize=9)
        ax[1, column].imshow(_to_numpy_image(shown_clean))
        ax[1, column].set_title(tr("prior's one-step guess"), fontsize=9)
        for a in ax[:, column]:
            a.axis("off")
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_sds_grad_vs_t(sd, image: torch.Tensor, text_embeddings: torch.Tensor,
                       guidance_scale: float = 100.0, timesteps=None, seed: int = 0):
    """The SDS gradient's size ||w(t) (eps_hat - eps)|| per latent element, over t."""
    if timesteps is None:
        timesteps = list(range(sd.min_step, sd.max_step + 1, 48))
    torch.manual_seed(seed)
    z0 = sd.encode_rgb(image.to(sd.device))  # [1, 4, 64, 64], through your blank 4
    sizes, unweighted = [], []
    for t in timesteps:
        noise = torch.randn_like(z0)
        tt = torch.tensor([t], device=sd.device)
        zt = sd.scheduler.add_noise(z0, noise, tt)
        eps = sd.unet(torch.cat([zt] * 2).to(sd.precision_t), torch.cat([tt] * 2),
                      encoder_hidden_states=text_embeddings).sample.float()
        eps_uncond, eps_cond = eps.chunk(2)
        residual = eps_uncond + guidance_scale * (eps_cond - eps_uncond) - noise
        w = 1 - sd.alphas[t].float()
        unweighted.append(residual.norm().item() / math.sqrt(residual.numel()))
        sizes.append(w.item() * unweighted[-1])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(timesteps, unweighted, label=r"$\|\hat\epsilon - \epsilon\|$ (RMS)")
    ax.plot(timesteps, sizes, label=r"$w(t)\,\|\hat\epsilon - \epsilon\|$ (RMS)")
    ax.set_xlabel(tr("timestep t"))
    ax.set_title(tr("SDS gradient size over t (guidance scale {scale})",
                    scale=format(guidance_scale, "g")))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_images(images: torch.Tensor, titles=None):
    """A row of images, [B, 3, H, W] in [0, 1]."""
    count = images.shape[0]
    fig, ax = plt.subplots(1, count, figsize=(3 * count, 3), squeeze=False)
    for i in range(count):
        ax[0, i].imshow(_to_numpy_image(images[i]))
        ax[0, i].axis("off")
        if titles:
            ax[0, i].set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def save_guidance(sd, path, pred_rgb: torch.Tensor, latents: torch.Tensor,
                  latents_noisy: torch.Tensor, noise_pred: torch.Tensor, t: torch.Tensor,
                  as_latent: bool = False) -> None:
    """The picture stable-dreamfusion writes at `save_guidance_path`: what SDS saw in one step.

    Three rows, one column per image: the render as the prior sees it (resized to 512, or the
    latents decoded if as_latent), the noised latents z_t decoded, and the prior's one-step
    guess of the clean latents, z0_hat = (z_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t),
    decoded. Written as a PNG at `path` (its folder must exist).

    pred_rgb: [B, 3, H, W] in [0, 1] (or [B, 4, H, W] if as_latent); latents, latents_noisy,
    noise_pred: [B, 4, 64, 64]; t: [B] long.
    """
    import imageio.v3 as iio

    def decoded(z):  # [B, 4, 64, 64] -> [B, 3, 512, 512] in [0, 1]
        return sd.decode_latents(z.to(sd.precision_t)).float()

    if as_latent:
        seen = decoded(latents)
    else:
        seen = F.interpolate(pred_rgb.float(), (512, 512), mode="bilinear", align_corners=False)
    abar = sd.alphas[t].float().view(-1, 1, 1, 1)  # [B, 1, 1, 1]
    z0_hat = (latents_noisy.float() - (1 - abar).sqrt() * noise_pred.float()) / abar.sqrt()
    rows = [seen] + [F.interpolate(decoded(z), seen.shape[-2:], mode="bilinear",
                                   align_corners=False) for z in (latents_noisy, z0_hat)]
    grid = torch.cat([torch.cat(list(row), dim=-1) for row in rows], dim=-2)  # [3, 3H, B*W]
    pixels = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    iio.imwrite(path, pixels, extension=".png")
