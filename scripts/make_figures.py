"""Make the notebook's stored figures and attach them to its markdown cells.

    python scripts/make_figures.py              # write assets/figures/*.png, attach them to solutions/
    python scripts/make_figures.py --out DIR    # only write the PNGs into DIR (the drift test uses this)
    python scripts/make_figures.py --skip-slow  # leave the oracle check's figure (about a minute) alone

Each edition gets its own figures, drawn by the same code from the same data with its words
(sdskit/i18n.py's catalogue) and a font for its letters (sdskit/fonts.py): English in
assets/figures/, the others in assets/figures/<language>/ (ko). The English ones are attached to
solutions/; scripts/make_translation.py attaches an edition's own to its notebook.

The figures are drawn from what this machine can show honestly, with no real Stable Diffusion
weights: the scheduler (noise schedule, noised picture), the oracle prior of sdskit/oracle.py
(the gradient's size over t, the 2D warm-up, the text-to-3D oracle check) and plain drawing (the
pipeline diagram). They are stored as markdown-cell attachments, so they show on GitHub, in Colab
before anything runs and in Jupyter, and nbgrader copies them into the release.

Deterministic output: the Agg backend, the DejaVu Sans font that ships with matplotlib (and
the pinned NanumGothic for Hangul), no PNG metadata, fixed seeds, then a 256-colour palette and PNG optimisation (Pillow) to keep them small.
"""

import argparse
import base64
import functools
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit import figures, fonts, warmup  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.i18n import speaking, tr  # noqa: E402
from sdskit.paths import ROOT, SOLUTIONS, TINY_SD  # noqa: E402

FIGURES = ROOT / "assets" / "figures"
LANGUAGES = ("en", *COURSE.editions)  # each edition's figures, with its words
DPI = 80
# Which markdown cell (grade_id) carries which figure.
CELLS = {
    "noise_schedule.png": "md_3",
    "noising.png": "md_3",
    "sds_pipeline.png": "md_9",
    "grad_over_t.png": "md_43",
    "warmup_oracle.png": "md_warmup",
    "oracle_check.png": "md_45",
    "exp1_weighting.png": "exp1_run_md",
    "exp2_schedule.png": "exp2_run_md",
    "exp3_guidance.png": "exp3_run_md",
}
SLOW = {"oracle_check.png"}

plt.rcParams.update({"font.family": "DejaVu Sans", "mathtext.fontset": "dejavusans",
                     "svg.hashsalt": "sds", "figure.dpi": DPI})


def png_bytes(fig) -> bytes:
    """A figure as a small, deterministic PNG: 256-colour palette, optimised, no metadata."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_pretrained(str(TINY_SD), subfolder="scheduler")


@functools.lru_cache(maxsize=1)
def solution_class():
    from autograder.notebook_code import solution_class as make

    return make()


def _box(ax, x, y, text, blank=None, width=2.1, height=0.9, colour="#e8eef7"):
    edge = "#c0392b" if blank else "#34495e"
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", fc="#fdecea" if blank else colour,
                                ec=edge, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)
    if blank:
        ax.text(x, y + height / 2 + 0.12, blank, ha="center", va="bottom", fontsize=8,
                color="#c0392b", fontweight="bold")


def _arrow(ax, start, end, text=None):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.2,
                                 color="#34495e"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center",
                va="bottom", fontsize=7.5, color="#34495e")


def _blank(number: int) -> str:
    return tr("blank {number}", number=number)


def pipeline():
    """The SDS step of train_step, each box labelled with the blank that fills it in."""
    fig, ax = plt.subplots(figsize=(11, 4.1))
    ax.set_xlim(0, 13.2)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    top, bottom = 3.3, 1.1
    _box(ax, 1.2, top, tr("render") + "\n$x = g(\\theta)$\n" + tr("[B, 3, H, W] in [0, 1]"))
    _box(ax, 3.9, top + 0.55, tr("resize to 512, VAE encode")
         + "\n$z = 0.18215\\,\\mathcal{E}(2x - 1)$", _blank(4), width=2.6, height=0.75)
    _box(ax, 3.9, top - 0.7, tr("as_latent: resize to 64,") + "\n$z = 2x - 1$", _blank(3),
         width=2.6, height=0.75)
    _box(ax, 6.85, top, "$t \\sim U\\{$min_step, ..., max_step$\\}$\n$\\epsilon \\sim \\mathcal{N}(0, I)$",
         _blank(5), width=2.7)
    _box(ax, 9.45, top, tr("add noise") + "\n$z_t = \\alpha_t z + \\sigma_t \\epsilon$", width=1.9)
    _box(ax, 12.0, top, tr("U-Net $\\times 2$, no grad")
         + "\n$\\hat\\epsilon_{uncond}$, $\\hat\\epsilon_{cond}$", width=2.2)
    _box(ax, 12.0, bottom, tr("guidance")
         + "\n$\\hat\\epsilon = \\hat\\epsilon_u + s(\\hat\\epsilon_c - \\hat\\epsilon_u)$",
         width=2.3)
    _box(ax, 9.3, bottom, tr("gradient") + "\ngrad $= w(t)(\\hat\\epsilon - \\epsilon)$", _blank(6),
         width=2.3)
    _box(ax, 6.4, bottom, "targets $=$ (z $-$ grad).detach()", _blank(7), width=2.9)
    _box(ax, 3.3, bottom, "loss $= \\frac{1}{2}\\|z - $targets$\\|^2 / B$\n$\\partial$loss$/\\partial z =$ grad$/B$",
         width=2.6)
    _box(ax, 0.9, bottom, tr("backward\nthrough $z$ to $\\theta$"), width=1.5)
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
            ha="center", fontsize=8, color="#c0392b")
    ax.set_title(tr("One SDS step: train_step(text_embeddings, pred_rgb)"), fontsize=11)
    return png_bytes(fig)


def noise_schedule():
    fig = figures.plot_noise_schedule(scheduler().alphas_cumprod, min_step=20, max_step=980)
    return png_bytes(fig)


def noising():
    fig = figures.show_noising(figures.demo_image(96), scheduler().alphas_cumprod)
    fig.set_size_inches(9, 2.2)
    fig.tight_layout()
    return png_bytes(fig)


def grad_over_t():
    """For the oracle prior: w(t), |eps_hat - eps| and |w (eps_hat - eps)| over t (RMS)."""
    sd = warmup.oracle_prior(solution_class(), figures.demo_image(64))
    start = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    z = warmup.oracle_target(start)  # the latent of a noise picture, the warm-up's start
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
    steps = list(range(sd.min_step, sd.max_step + 1, 8))
    weight, residual, weighted = [], [], []
    with torch.no_grad():
        for t in steps:
            tt = torch.tensor([t])
            z_t = sd.scheduler.add_noise(z, noise, tt)
            eps_hat = sd.unet(z_t, tt).sample
            w = float(1 - sd.alphas[t])
            rms = float((eps_hat - noise).pow(2).mean().sqrt())
            weight.append(w)
            residual.append(rms)
            weighted.append(w * rms)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.3))
    ax[0].plot(steps, weight)
    ax[0].set_title(tr(r"the weight $w(t) = 1 - \bar\alpha_t = \sigma_t^2$"))
    ax[1].semilogy(steps, residual, label=r"$\|\hat\epsilon - \epsilon\|$ (RMS)")
    ax[1].semilogy(steps, weighted,
                   label=tr(r"$w(t)\,\|\hat\epsilon - \epsilon\|$ (RMS), the gradient"))
    fonts.log_ticks(ax[1].yaxis)
    ax[1].set_title(tr("SDS gradient size, oracle prior, a noise picture"))
    ax[1].legend(fontsize=8)
    for a in ax:
        a.set_xlabel(tr("timestep t (SDS range 20 ... 980)"))
    fig.tight_layout()
    return png_bytes(fig)


@functools.lru_cache(maxsize=1)
def _warmup_result():  # computed once, drawn once per edition
    return warmup.oracle_warmup(solution_class())


def warmup_oracle():
    result = _warmup_result()
    fig = figures.show_images(torch.cat([result.target] + result.snapshots),
                              [tr("target")] + [tr("step {step}", step=s)
                                                for s in result.snapshot_steps])
    fig.set_size_inches(10, 2.1)
    fig.suptitle(tr("2D warm-up, oracle prior: distance to the target {start} at the start, "
                    "{final} after {steps} steps (RMS)", start=format(result.start_error, ".2f"),
                    final=format(result.final_error, ".3f"), steps=result.steps), fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


@functools.lru_cache(maxsize=1)
def _oracle_views():
    """The oracle check run once (about a minute), and its renders: {row: [4, 3, 64, 64]}."""
    from sdskit import nerf as N
    from sdskit import text_to_3d as T
    from sdskit.oracle import OracleCheck, held_out_cameras

    torch.manual_seed(0)
    check = OracleCheck(solution_class())
    out = check.run()
    torch.manual_seed(check.config.seed)
    start = N.NeRF(check.config.nerf)
    camera = held_out_cameras()
    picked = [0, 3, 5, 6]
    camera = N.Camera(camera.radius[picked], camera.elevation[picked], camera.azimuth[picked],
                      camera.fov[picked])
    views = {}
    for name, model in (("target", check.target), ("start", start),
                        ("after SDS", out["result"].model)):
        with torch.no_grad():
            views[name] = T.evaluate_views(model, camera, 64)[0]
    return views, out


def oracle_check():
    """Held-out views of the target, the NeRF at the start (its density blob), and the result."""
    views, out = _oracle_views()
    rows = [(tr("target"), views["target"]), (tr("start"), views["start"]),
            (tr("after SDS"), views["after SDS"])]
    picked = range(len(views["target"]))
    fig, ax = plt.subplots(len(rows), len(picked), figsize=(6.4, 5.0))
    for r, (name, images) in enumerate(rows):
        for c in picked:
            ax[r, c].imshow(images[c].clamp(0, 1).permute(1, 2, 0).numpy())
            ax[r, c].set_xticks([])
            ax[r, c].set_yticks([])
        ax[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(tr("oracle check, held-out views: IoU {iou}, PSNR {psnr} dB after {steps} steps",
                    iou=format(out['iou'], ".2f"), psnr=format(out['psnr'], ".1f"), steps=out["steps"]),
                 fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


@functools.lru_cache(maxsize=1)
def solution_functions():
    from autograder.notebook_code import solution_functions as make

    return make()


def _experiment_png(fig) -> bytes:
    fig.set_size_inches(10, 5.4)
    return png_bytes(fig)


def exp1_weighting():
    """Part 7, experiment 1 on the oracle, with the solution's sds_weight."""
    from sdskit import experiment_plots, experiments

    result = experiments.weighting_oracle(solution_class(), solution_functions()["sds_weight"])
    return _experiment_png(experiment_plots.plot_weighting(result))


def exp2_schedule():
    from sdskit import experiment_plots, experiments

    result = experiments.schedule_oracle(solution_class(),
                                         solution_functions()["annealed_timestep"])
    return _experiment_png(experiment_plots.plot_schedule(result))


def exp3_guidance():
    from sdskit import experiment_plots, experiments

    result = experiments.guidance_oracle(solution_class(), solution_functions()["csd_gradient"])
    return _experiment_png(experiment_plots.plot_guidance(result))


MAKERS = {"sds_pipeline.png": pipeline, "noise_schedule.png": noise_schedule,
          "noising.png": noising, "grad_over_t.png": grad_over_t,
          "warmup_oracle.png": warmup_oracle, "oracle_check.png": oracle_check,
          "exp1_weighting.png": exp1_weighting, "exp2_schedule.png": exp2_schedule,
          "exp3_guidance.png": exp3_guidance}


def folder(language: str, root: Path = FIGURES) -> Path:
    """Where an edition's figures are: root/ for English, root/<language>/ for the others."""
    return root if language == "en" else root / language


def make(out: Path, skip_slow: bool = False, languages=LANGUAGES) -> list[Path]:
    """Draw every figure in each language into folder(language, out); return the paths."""
    written = []
    for language in languages:
        target = folder(language, out)
        target.mkdir(parents=True, exist_ok=True)
        with speaking(language):
            for name, maker in MAKERS.items():
                if skip_slow and name in SLOW:
                    continue
                (target / name).write_bytes(maker())
                written.append(target / name)
    return written


def attach(folder: Path = FIGURES) -> None:
    """Store each figure as an attachment of its markdown cell in the solution notebooks."""
    for notebook_name in COURSE.notebooks:
        path = SOLUTIONS / notebook_name
        notebook = json.loads(path.read_text())
        by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in notebook["cells"]}
        for cell in by_id.values():
            cell.pop("attachments", None)
        for name, grade_id in CELLS.items():
            cell = by_id[grade_id]
            assert f"attachment:{name}" in "".join(cell["source"]), (grade_id, name)
            data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
            cell.setdefault("attachments", {})[name] = {"image/png": data}
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-slow", action="store_true")
    args = parser.parse_args()
    for path in make(args.out or FIGURES, args.skip_slow):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    if args.out is None:
        attach()
        print("attached them to the markdown cells of solutions/")


if __name__ == "__main__":
    main()
