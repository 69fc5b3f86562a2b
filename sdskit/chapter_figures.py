"""The figures the notebook stores (scripts/make_figures.py draws them into assets/figures/ and
attaches them to the markdown cells): the SDS step's diagram, one figure per blank, and the
figures of Parts 4 to 6. Each function draws one matplotlib figure from data it is given;
make_figures.py computes the data (from the scheduler, the solution and the oracle prior).
Every word on a figure goes through tr(...), so each edition can draw them in its language.
"""

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from sdskit import fonts
from sdskit.figures import _to_numpy_image
from sdskit.i18n import tr

RED, INK, GREY = "#c0392b", "#34495e", "#7f8c8d"


def _box(ax, x, y, text, blank=None, width=2.1, height=0.9, colour="#e8eef7"):
    edge = RED if blank else INK
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", fc="#fdecea" if blank else colour,
                                ec=edge, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)
    if blank:
        ax.text(x, y + height / 2 + 0.12, blank, ha="center", va="bottom", fontsize=8,
                color=RED, fontweight="bold")


def _arrow(ax, start, end, text=None):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.2,
                                 color=INK))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center",
                va="bottom", fontsize=7.5, color=INK)


def _scales(alphas_cumprod):
    abar = alphas_cumprod.double().cpu()
    return torch.arange(len(abar)), abar, abar.sqrt(), (1 - abar).sqrt()


def pipeline():
    """The SDS step of train_step, each box labelled with the blank that fills it in."""
    fig, ax = plt.subplots(figsize=(11, 4.1))
    ax.set_xlim(0, 13.2)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    top, bottom = 3.3, 1.1
    blank = lambda n: tr("Blank {number}", number=n)  # noqa: E731
    _box(ax, 1.2, top, tr("render") + "\n$x = g(\\theta)$\n" + tr("[B, 3, H, W] in [0, 1]"))
    _box(ax, 3.9, top + 0.55, tr("resize to 512, VAE encode") +
         "\n$z = 0.18215\\,\\mathcal{E}(2x - 1)$", blank(4), width=2.6, height=0.75)
    _box(ax, 3.9, top - 0.7, tr("as_latent: resize to 64,") + "\n$z = 2x - 1$", blank(3),
         width=2.6, height=0.75)
    _box(ax, 6.85, top, tr("sample the timestep") + "\n$t \\sim U\\{$min_step, ..., max_step$\\}$",
         blank(5), width=2.7)
    _box(ax, 9.45, top, tr("add noise") + "\n$\\epsilon \\sim \\mathcal{N}(0, I)$\n"
         "$z_t = \\alpha_t z + \\sigma_t \\epsilon$", width=1.9, height=1.05)
    _box(ax, 12.0, top, tr("U-Net (batch of 2), no grad") +
         "\n$\\hat\\epsilon_{uncond}$, $\\hat\\epsilon_{cond}$", width=2.2)
    _box(ax, 12.0, bottom, tr("guidance") +
         "\n$\\hat\\epsilon = \\hat\\epsilon_u + s(\\hat\\epsilon_c - \\hat\\epsilon_u)$", width=2.3)
    _box(ax, 9.3, bottom, tr("gradient") + "\ngrad $= w(t)(\\hat\\epsilon - \\epsilon)$", blank(6),
         width=2.3)
    _box(ax, 6.4, bottom, tr("targets") + r" $\tilde z = \mathrm{sg}(z - \mathrm{grad})$", blank(7),
         width=2.9)
    _box(ax, 3.3, bottom, tr("loss") + " $= \\frac{1}{2}\\|z - \\tilde z\\|^2 / B$\n"
         "$\\partial$loss$/\\partial z =$ grad$/B$", width=2.6)
    _box(ax, 0.9, bottom, tr("backward") + "\n" + tr("through $z$ to $\\theta$"), width=1.5)
    _arrow(ax, (2.25, top + 0.2), (2.6, top + 0.5))
    _arrow(ax, (2.25, top - 0.2), (2.6, top - 0.6))
    _arrow(ax, (5.2, top + 0.5), (5.5, top + 0.2))
    _arrow(ax, (5.2, top - 0.6), (5.5, top - 0.2))
    _arrow(ax, (8.2, top), (8.5, top))
    _arrow(ax, (10.4, top), (10.9, top))
    _arrow(ax, (12.0, top - 0.45), (12.0, bottom + 0.45))
    _arrow(ax, (10.85, bottom), (10.45, bottom))
    _arrow(ax, (8.15, bottom), (7.85, bottom))
    _arrow(ax, (4.95, bottom), (4.6, bottom))
    _arrow(ax, (2.0, bottom), (1.65, bottom))
    ax.text(6.6, 0.15, tr("blanks 1 and 2 live in __init__: super().__init__() and min_step, "
                          "max_step (the range blank 5 draws from)"),
            ha="center", fontsize=8, color=RED)
    ax.set_title(tr("One SDS step: train_step(text_embeddings, pred_rgb)"), fontsize=11)
    return fig


def step_range(alphas_cumprod, t_range=(0.02, 0.98), steps=1000):
    """Blank 2: t_range as whole-number timesteps, on the schedule's signal and noise scales."""
    t, _, alpha, sigma = _scales(alphas_cumprod)
    low, high = int(steps * t_range[0]), int(steps * t_range[1])
    fig, ax = plt.subplots(figsize=(9, 3.0))
    ax.axvspan(low, high, color="grey", alpha=0.12)
    ax.plot(t, alpha, label=tr("signal scale") + r" $\alpha_t = \sqrt{\bar\alpha_t}$")
    ax.plot(t, sigma, label=tr("noise scale") + r" $\sigma_t = \sqrt{1 - \bar\alpha_t}$")
    for step, name, value, side in ((low, "min_step", float(sigma[low]), "left"),
                                    (high, "max_step", float(alpha[high]), "right")):
        ax.axvline(step, color=RED, lw=1)
        scale = (r"$\sigma_{%d}$" % step) if side == "left" else (r"$\alpha_{%d}$" % step)
        ax.annotate(f"{name} = {step}\n{scale} = {value:.3f}",
                    (step, 0.5), xytext=(step + (25 if side == "left" else -25), 0.5),
                    ha=side, va="center", fontsize=8, color=RED)
    ax.set_xlim(0, steps - 1)
    ax.set_xlabel(tr("timestep t"))
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title(tr("Blank 2: t_range = [{low:g}, {high:g}] of {steps} timesteps gives the whole "
                    "numbers {first} ... {last} (grey)", low=t_range[0], high=t_range[1],
                    steps=steps, first=low, last=high), fontsize=10)
    fig.tight_layout()
    return fig


def latent_mode(bilinear, corners, nearest, columns: int = 64):
    """Blank 3: the map 2x - 1 beside latents' unit variance, and a 2-pixel render (0, then 1)
    resized to `columns` columns and mapped by 2x - 1: with bilinear resizing and
    align_corners=False (the blank), with align_corners=True, and nearest (lists of values)."""
    edges = {tr("bilinear, align_corners=False (blank 3)"): bilinear,
             tr("bilinear, align_corners=True"): corners, tr("nearest"): nearest}
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.5]})
    x = torch.linspace(-3, 3, 301)
    ax[0].plot(x, torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi), color=GREY,
               label=tr("zero mean, unit variance: the scale of latents (Part 1)"))
    ax[0].axvspan(0, 1, color="#f5b041", alpha=0.35, label=tr("a render, in [0, 1]"))
    ax[0].axvspan(-1, 1, color="#5dade2", alpha=0.25, label=tr("after 2x - 1, in [-1, 1]"))
    ax[0].set_yticks([])
    ax[0].set_xlabel(tr("value"))
    ax[0].legend(fontsize=7, loc="upper left")
    ax[0].set_title(tr("2x - 1 centres the render"), fontsize=9)
    for (label, values), style in zip(edges.items(), ("-o", "--", ":")):
        ax[1].plot(range(columns), values, style, markersize=2.5, label=label)
    for centre in (columns / 4 - 0.5, 3 * columns / 4 - 0.5):
        ax[1].axvline(centre, color=GREY, lw=0.8)
    ax[1].set_xlabel(tr("output column j (the grey lines: the two input pixels' centres)"))
    ax[1].set_ylabel("2x - 1")
    ax[1].legend(fontsize=7, loc="upper left")
    ax[1].set_title(tr("a 2-pixel render (0, then 1) resized to {columns} columns",
                       columns=columns), fontsize=9)
    fig.suptitle(tr("Blank 3: latents straight from a 4-channel render"), fontsize=10)
    fig.tight_layout()
    return fig


def encode_path(render, render_512):
    """Blank 4: a 64x64 render, the same resized to 512 (bilinear), the VAE, the latents."""
    fig = plt.figure(figsize=(10, 3.1))
    left = fig.add_axes([0.02, 0.16, 0.19, 0.66])
    middle = fig.add_axes([0.26, 0.16, 0.19, 0.66])
    rest = fig.add_axes([0.47, 0.1, 0.53, 0.8])
    left.imshow(_to_numpy_image(render), interpolation="nearest")
    left.set_title(tr("render, [1, 3, 64, 64]"), fontsize=8)
    middle.imshow(_to_numpy_image(render_512))
    middle.set_title(tr("resized to [1, 3, 512, 512], bilinear"), fontsize=8)
    for a in (left, middle):
        a.set_xticks([])
        a.set_yticks([])
    fig.add_artist(FancyArrowPatch((0.215, 0.49), (0.255, 0.49), transform=fig.transFigure,
                                   arrowstyle="-|>", mutation_scale=11, lw=1.2, color=INK))
    rest.set_xlim(0, 10)
    rest.set_ylim(0, 4)
    rest.axis("off")
    _box(rest, 3.0, 2.1, tr("self.encode_imgs") + "\n$0.18215\\,\\mathcal{E}(2x - 1)$\n" +
         tr("VAE encoder, in self.precision_t"), width=4.4, height=1.4)
    _arrow(rest, (0.1, 2.1), (0.7, 2.1))
    _arrow(rest, (5.3, 2.1), (6.0, 2.1))
    for k in range(4):
        rest.add_patch(FancyBboxPatch((6.4 + 0.22 * k, 1.3 + 0.22 * k), 1.3, 1.3,
                                      boxstyle="square,pad=0", fc="#d6eaf8", ec=INK, lw=1))
    rest.text(7.4, 0.7, tr("latents, [1, 4, 64, 64]"), ha="center", fontsize=8)
    fig.text(0.5, 0.03, tr("Without the resize a 64 x 64 render gives 8 x 8 latents, but the "
                           "U-Net was trained on 64 x 64."), ha="center", fontsize=8, color=RED)
    fig.suptitle(tr("Blank 4: resize to 512, then encode; the gradient flows back the same way"),
                 fontsize=10, y=0.98)
    return fig


def timestep_draws(draws, low, high, right, off_by_one, small_range=(3, 7)):
    """Blank 5: a histogram of draws of t over [low, high], and the counts on a small range
    (per value, from its low - 1 to its high + 1) for the right sampler and for one that
    forgets torch.randint's excluded high."""
    small = {tr("correct: 3 ... 7"): right, tr("torch.randint(3, 7, ...): 7 never comes"): off_by_one}
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.1), gridspec_kw={"width_ratios": [1.6, 1]})
    width = 31 if (high - low + 1) % 31 == 0 else 1  # 20 ... 980: 961 = 31 bins of 31 values
    ax[0].hist(draws.numpy(), bins=range(low, high + 2, width), color="#5dade2",
               edgecolor="white", lw=0.3)
    ax[0].set_xlim(0, 1000)
    ax[0].set_xlabel(tr("timestep t"))
    ax[0].set_ylabel(tr("draws per bin of {width} values", width=width))
    ax[0].set_title(tr("{count} draws, uniform on {low} ... {high}: flat, both ends included",
                       count=len(draws), low=low, high=high), fontsize=9)
    values = list(range(small_range[0] - 1, small_range[1] + 2))
    width = 0.8 / len(small)
    for k, (label, counts) in enumerate(small.items()):
        ax[1].bar([v + (k - (len(small) - 1) / 2) * width for v in values], counts, width,
                  label=label)
    ax[1].set_xticks(values)
    ax[1].set_xlabel("t")
    ax[1].set_ylim(0, 1.45 * max(max(c) for c in small.values()))
    ax[1].legend(fontsize=7, loc="upper center")
    ax[1].set_title(tr("min_step = {low}, max_step = {high}: counts", low=small_range[0],
                       high=small_range[1]), fontsize=9)
    fig.suptitle(tr("Blank 5: sampling t"), fontsize=10)
    fig.tight_layout()
    return fig


def weight(alphas_cumprod, min_step=20, max_step=980):
    """Blank 6: w(t) = sigma_t^2, and the factor in front of the prior's correction z - z0_hat
    in the gradient: alpha_t / sigma_t without the weight, alpha_t sigma_t with it."""
    t, abar, alpha, sigma = _scales(alphas_cumprod)
    peak = int((abar - 0.5).abs().argmin())
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    ax[0].plot(t, sigma ** 2)
    ax[0].set_title(tr("the weight") + r" $w(t) = \sigma_t^2 = 1 - \bar\alpha_t$", fontsize=9)
    ax[1].semilogy(t, alpha / sigma, label=tr("without the weight") + r": $\alpha_t / \sigma_t$")
    ax[1].semilogy(t, alpha * sigma, label=tr("with the weight") + r" $w = \sigma_t^2$: $\alpha_t\sigma_t$")
    fonts.log_ticks(ax[1].yaxis)
    ax[1].axvline(peak, color=GREY, lw=0.8)
    ax[1].annotate(tr("at most 1/2, at t = {t}", t=peak), (peak, 0.5), xytext=(peak + 40, 1.5),
                   fontsize=8, arrowprops={"arrowstyle": "->", "color": GREY})
    ax[1].set_title(tr("the gradient is this factor times") + r" $(z - \hat z_0)$", fontsize=9)
    ax[1].legend(fontsize=8, loc="lower left")
    for a in ax:
        a.axvspan(min_step, max_step, color="grey", alpha=0.1)
        a.set_xlabel(tr("timestep t (SDS range {low} ... {high}, grey)", low=min_step,
                        high=max_step))
    fig.suptitle(tr("Blank 6: what w(t) does"), fontsize=10)
    fig.tight_layout()
    return fig


def targets(alphas_cumprod, timesteps=(20, 980, 354)):
    """Blank 7: z, the prior's guess z0_hat, and where the target z - g lies between them at
    several t (w = sigma^2: a fraction alpha_t sigma_t of the way)."""
    _, _, alpha, sigma = _scales(alphas_cumprod)
    fig, ax = plt.subplots(figsize=(9, 2.6))
    ax.plot([0, 10], [0, 0], color=GREY, lw=1, ls="--")
    ax.plot([0], [0], "o", color=INK, markersize=8)
    ax.text(0, -0.45, tr("z, the latents of the render"), ha="center", va="top", fontsize=9)
    ax.plot([10], [0], "o", color=GREY, markersize=8)
    ax.text(10, -0.45, tr("the prior's one-step guess") + r" $\hat z_0$", ha="center", va="top",
            fontsize=9)
    for k, t in enumerate(timesteps):
        share = float(alpha[t] * sigma[t])
        ax.plot([10 * share], [0], "o", color=RED, markersize=6)
        ax.annotate(tr("z - g at t = {t}: {share:.0%} of the way", t=t, share=share),
                    (10 * share, 0), xytext=(10 * share + 0.4, 0.5 + 0.55 * (k % 2)),
                    fontsize=8, color=RED, arrowprops={"arrowstyle": "-", "color": RED, "lw": 0.6})
    ax.text(5, -1.05, tr("never more than halfway: a small step towards the guess, not the guess "
                         "itself"), ha="center", fontsize=8, color=INK)
    ax.set_xlim(-1.5, 11.5)
    ax.set_ylim(-1.4, 1.5)
    ax.axis("off")
    ax.set_title(tr("Blank 7: the target") + r" $z - g = (1 - \alpha_t\sigma_t)\,z + "
                 r"\alpha_t\sigma_t\,\hat z_0$" + tr(", with w = ") + r"$\sigma_t^2$",
                 fontsize=10)
    fig.tight_layout()
    return fig


def grad_over_t(steps, weight_values, residual, weighted):
    """Part 4: w(t), |eps_hat - eps| and |w (eps_hat - eps)| over t (RMS), for the oracle."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.3))
    ax[0].plot(steps, weight_values)
    ax[0].set_title(tr("the weight") + r" $w(t) = 1 - \bar\alpha_t = \sigma_t^2$")
    ax[1].semilogy(steps, residual, label=r"$\|\hat\epsilon - \epsilon\|$ (RMS)")
    ax[1].semilogy(steps, weighted, label=r"$w(t)\,\|\hat\epsilon - \epsilon\|$ (RMS), " +
                   tr("the gradient"))
    fonts.log_ticks(ax[1].yaxis)
    peak = steps[max(range(len(weighted)), key=weighted.__getitem__)]
    ax[1].axvline(peak, color=GREY, lw=0.8)
    ax[1].set_title(tr("SDS gradient size, oracle prior, a noise picture (peak at t = {t})",
                       t=peak), fontsize=10)
    ax[1].legend(fontsize=8)
    for a in ax:
        a.set_xlabel(tr("timestep t (SDS range 20 ... 980)"))
    fig.tight_layout()
    return fig


def warmup(result):
    """Part 5: the 2D warm-up with the oracle prior, its snapshots and its distance."""
    from sdskit.figures import show_images

    fig = show_images(torch.cat([result.target] + result.snapshots),
                      [tr("target")] + [tr("step {step}", step=s) for s in result.snapshot_steps])
    fig.set_size_inches(10, 2.1)
    fig.suptitle(tr("2D warm-up, oracle prior: distance to the target {start:.2f} at the start, "
                    "{end:.3f} after {steps} steps (RMS)", start=result.start_error,
                    end=result.final_error, steps=result.steps), fontsize=9)
    fig.tight_layout()
    return fig


def oracle_check(rows, iou, psnr, steps, height, width):
    """Part 6: held-out views (columns) of the target, the NeRF at the start, and the result.
    rows: [(name, [N, 3, H, W] images)]."""
    fig, ax = plt.subplots(len(rows), rows[0][1].shape[0], figsize=(6.4, 5.0))
    for r, (name, images) in enumerate(rows):
        for c in range(images.shape[0]):
            ax[r, c].imshow(images[c].clamp(0, 1).permute(1, 2, 0).numpy())
            ax[r, c].set_xticks([])
            ax[r, c].set_yticks([])
        ax[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(tr("oracle check, held-out views: IoU {iou:.2f}, PSNR {psnr:.1f} dB after {steps} "
                    "steps of {height}x{width} renders", iou=iou, psnr=psnr, steps=steps,
                    height=height, width=width), fontsize=9)
    fig.tight_layout()
    return fig
