"""Make the notebook's stored figures and attach them to its markdown cells.

    python scripts/make_figures.py              # write assets/figures/*.png, attach them to solutions/
    python scripts/make_figures.py --out DIR    # only write the PNGs into DIR (the drift test uses this)
    python scripts/make_figures.py --skip-slow  # leave the oracle check's figure (10-30 s) alone

Each edition gets its own figures, drawn by the same code from the same data with its words
(sdskit/i18n.py's catalogue) and a font for its letters (sdskit/fonts.py): English in
assets/figures/, the others in assets/figures/<language>/ (ko). The English ones are attached to
solutions/; scripts/make_translation.py attaches an edition's own to its notebook.

The figures are drawn from what this machine can show honestly, with no real Stable Diffusion
weights: the scheduler (noise schedule, noised picture, the figures of blanks 2, 6 and 7), the
solution's own methods (blank 5's draws of t), plain resizing (blanks 3 and 4), the oracle prior
of sdskit/oracle.py (the gradient's size over t, the 2D warm-up, the text-to-3D oracle check, its
numbers written beside it in oracle_check.json) and plain drawing (the pipeline diagram). The
drawing, and every word on the figures, is in sdskit/chapter_figures.py; this script computes what
they show. They are stored as markdown-cell attachments, so they show on GitHub, in Colab before
anything runs and in Jupyter, and nbgrader copies them into the release.

Deterministic output: the Agg backend, the DejaVu Sans font that ships with matplotlib (and
the pinned NanumGothic for Hangul), no PNG metadata, fixed seeds, then a 256-colour palette and PNG optimisation (Pillow) to keep them small.
"""

import argparse
import base64
import functools
import hashlib
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit import chapter_figures, checks, figures, warmup  # noqa: E402
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
    "t_range.png": "md_10",
    "blank3_latents.png": "md_18",
    "blank4_encode.png": "md_23",
    "blank5_t.png": "md_28",
    "blank6_weight.png": "md_33",
    "blank7_targets.png": "md_38",
    "grad_over_t.png": "md_43",
    "warmup_oracle.png": "md_warmup",
    "oracle_check.png": "md_45",
    "exp1_weighting.png": "exp1_run_md",
    "exp2_schedule.png": "exp2_run_md",
    "exp3_guidance.png": "exp3_run_md",
}
# The numbers the oracle check's figure shows, and the config of the run that made them: the
# figure and this file are written together, and tests/test_oracle.py checks both against the
# check as it runs now.
ORACLE_NUMBERS = FIGURES / "oracle_check.json"
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


def pipeline():
    return png_bytes(chapter_figures.pipeline())


def noise_schedule():
    fig = figures.plot_noise_schedule(scheduler().alphas_cumprod, min_step=20, max_step=980)
    return png_bytes(fig)


def noising():
    fig = figures.show_noising(figures.demo_image(96), scheduler().alphas_cumprod)
    fig.set_size_inches(9, 2.2)
    fig.tight_layout()
    return png_bytes(fig)


@functools.lru_cache(maxsize=1)
def _grad_over_t_data():
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
    return steps, weight, residual, weighted


def grad_over_t():
    return png_bytes(chapter_figures.grad_over_t(*_grad_over_t_data()))


def step_range():
    return png_bytes(chapter_figures.step_range(scheduler().alphas_cumprod))


def blank3_latents():
    """A 2-pixel row (0, then 1) resized to 64 columns three ways, then 2x - 1."""
    edge = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    rows = [2 * F.interpolate(edge, size=(1, 64), **mode)[0, 0, 0] - 1 for mode in (
        dict(mode="bilinear", align_corners=False), dict(mode="bilinear", align_corners=True),
        dict(mode="nearest"))]
    return png_bytes(chapter_figures.latent_mode(*(row.tolist() for row in rows)))


def blank4_encode():
    render = figures.demo_image(64)
    bigger = F.interpolate(render, size=(512, 512), mode="bilinear", align_corners=False)
    return png_bytes(chapter_figures.encode_path(render, bigger))


@functools.lru_cache(maxsize=1)
def _blank5_data():
    """Draws of the solution's sample_timestep: over 20 ... 980, and over 3 ... 7."""
    sd = checks.reference_instance(solution_class())
    torch.manual_seed(5)
    draws = torch.cat([sd.sample_timestep(1) for _ in range(20000)])
    small = checks.reference_instance(solution_class(), step_range=(3, 7))
    right = torch.bincount(torch.cat([small.sample_timestep(1) for _ in range(5000)]), minlength=9)
    # torch.randint excludes its high: the off-by-one of autograder/mistakes.py
    wrong = torch.bincount(torch.randint(3, 7, (5000,)), minlength=9)
    return draws, sd.min_step, sd.max_step, right[2:9].tolist(), wrong[2:9].tolist()


def blank5_t():
    return png_bytes(chapter_figures.timestep_draws(*_blank5_data()))


def blank6_weight():
    return png_bytes(chapter_figures.weight(scheduler().alphas_cumprod))


def blank7_targets():
    return png_bytes(chapter_figures.targets(scheduler().alphas_cumprod))


@functools.lru_cache(maxsize=1)
def _warmup_result():  # computed once, drawn once per edition
    return warmup.oracle_warmup(solution_class())


def warmup_oracle():
    return png_bytes(chapter_figures.warmup(_warmup_result()))


@functools.lru_cache(maxsize=1)
def _oracle_views():
    """The check's own run (sdskit/oracle.py: its config, seed 0, as tests/test_oracle.py runs
    it), once: held-out views of the target, the NeRF at the start (its density blob) and the
    result ({row: [4, 3, 64, 64]}), its scores and its config."""
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
    return views, out, check.config


def oracle_check():
    """Part 6's figure, in the current language; and (English) the numbers it shows, which go
    to oracle_check.json beside it."""
    views, out, cfg = _oracle_views()
    rows = [(tr("target"), views["target"]), (tr("start"), views["start"]),
            (tr("after SDS"), views["after SDS"])]
    data = png_bytes(chapter_figures.oracle_check(rows, out["iou"], out["psnr"], out["steps"],
                                                  cfg.height, cfg.width))
    numbers = {"iou": round(out["iou"], 4), "psnr": round(out["psnr"], 3), "steps": out["steps"],
               "height": cfg.height, "width": cfg.width, "num_samples": cfg.nerf.num_samples,
               "seed": cfg.seed, "png_sha256": hashlib.sha256(data).hexdigest()}
    return data, numbers


@functools.lru_cache(maxsize=1)
def solution_functions():
    from autograder.notebook_code import solution_functions as make

    return make()


def _experiment_png(fig) -> bytes:
    fig.set_size_inches(10, 5.4)
    return png_bytes(fig)


@functools.lru_cache(maxsize=None)
def _experiment(name: str):
    """Part 7's oracle runs with the solution's functions: computed once, drawn per edition."""
    from sdskit import experiments

    run, function = {"weighting": (experiments.weighting_oracle, "sds_weight"),
                     "schedule": (experiments.schedule_oracle, "annealed_timestep"),
                     "guidance": (experiments.guidance_oracle, "csd_gradient")}[name]
    return run(solution_class(), solution_functions()[function])


def exp1_weighting():
    """Part 7, experiment 1 on the oracle, with the solution's sds_weight."""
    from sdskit import experiment_plots

    return _experiment_png(experiment_plots.plot_weighting(_experiment("weighting")))


def exp2_schedule():
    from sdskit import experiment_plots

    return _experiment_png(experiment_plots.plot_schedule(_experiment("schedule")))


def exp3_guidance():
    from sdskit import experiment_plots

    return _experiment_png(experiment_plots.plot_guidance(_experiment("guidance")))


MAKERS = {"sds_pipeline.png": pipeline, "noise_schedule.png": noise_schedule,
          "noising.png": noising, "t_range.png": step_range, "blank3_latents.png": blank3_latents,
          "blank4_encode.png": blank4_encode, "blank5_t.png": blank5_t,
          "blank6_weight.png": blank6_weight, "blank7_targets.png": blank7_targets,
          "grad_over_t.png": grad_over_t, "warmup_oracle.png": warmup_oracle,
          "oracle_check.png": oracle_check,
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
                made = maker()
                if name == "oracle_check.png":
                    made, numbers = made
                    if language == "en":  # the numbers of the English figure (the same in all)
                        (out / ORACLE_NUMBERS.name).write_text(json.dumps(numbers, indent=1) + "\n")
                (target / name).write_bytes(made)
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
