"""The plots of Part 7's experiments (sdskit/experiments.py): one figure per experiment, the
same in the notebook and in its stored figures (scripts/make_figures.py). Every word goes
through the catalogue (sdskit/i18n.py), so the Korean edition's plots speak Korean."""

import matplotlib.pyplot as plt

from sdskit import fonts
from sdskit.i18n import N_, tr

KIND_LABELS = {
    "dreamfusion": N_("DreamFusion: $w = 1 - \\bar\\alpha_t$"),
    "uniform": N_("uniform: $w = 1$"),
    "fantasia3d": N_("Fantasia3D: $w = \\sqrt{\\bar\\alpha_t}\\,(1 - \\bar\\alpha_t)$"),
}
SHORT_LABELS = {"dreamfusion": N_("DreamFusion"), "uniform": N_("uniform"),
                "fantasia3d": N_("Fantasia3D"), "random": N_("random t"),
                "annealed": N_("annealed t")}
COLOURS = {"dreamfusion": "#1f77b4", "uniform": "#d62728", "fantasia3d": "#2ca02c",
           "random": "#7f7f7f", "annealed": "#9467bd", "SDS, s = 1": "#1f77b4",
           "SDS, s = 7.5": "#ff7f0e", "SDS, s = 100": "#2ca02c", "CSD": "#d62728"}


def _label(key: str) -> str:
    """A run's name in the reader's language ("SDS, s = 7.5" keeps its number)."""
    if key in SHORT_LABELS:
        return tr(SHORT_LABELS[key])
    if key.startswith("SDS, s = "):
        return tr("SDS, s = {scale}", scale=key.removeprefix("SDS, s = "))
    return key


def _picture(axis, image, title):
    axis.imshow(image[0].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])


def _pictures(figure, grid_row, items):
    """A row of pictures under the plots: items are (image, title)."""
    spec = grid_row.subgridspec(1, len(items), wspace=0.08)
    for column, (image, title) in enumerate(items):
        _picture(figure.add_subplot(spec[0, column]), image, title)


def _end_note(run) -> str:
    if run.distances:
        return tr("distance {value}", value=format(run.distances[-1], ".3f"))
    return tr("{share}% of pixels at 0 or 1", share=format(100 * run.saturation[-1], ".0f"))


def _progress_labels(progress, result):
    """The labels of the runs' progress plot: distance to the target, or on a GPU saturation."""
    progress.set_xlabel(tr("step"), fontsize=8)
    progress.set_title(tr("distance to the target (RMS)") if not result.on_gpu
                       else tr("share of pixels at 0 or 1"), fontsize=8)
    progress.legend(fontsize=7)


def _end_pictures(figure, grid_row, result):
    """Under the plots: the target (where there is one) and where each run ends."""
    items = [(result.target, tr("target"))] if result.target is not None else []
    items += [(run.image, f"{_label(key)}\n{_end_note(run)}") for key, run in result.runs.items()]
    _pictures(figure, grid_row, items)


def _layout(height=5.4):
    figure = plt.figure(figsize=(10, height))
    grid = figure.add_gridspec(2, 1, height_ratios=[1.25, 1], hspace=0.45)
    return figure, grid


def plot_weighting(result):
    """Experiment 1: where each weighting puts the gradient, and what each run ends with."""
    figure, grid = _layout()
    top = grid[0].subgridspec(1, 2, wspace=0.28)
    parts = figure.add_subplot(top[0, 0])
    for kind, values in result.signal.items():
        label = tr(KIND_LABELS[kind])
        parts.semilogy(result.grid, values, color=COLOURS[kind], label=label)
        if result.noise.get(kind):
            parts.semilogy(result.grid, result.noise[kind], "--", color=COLOURS[kind])
    fonts.log_ticks(parts.yaxis)  # decades drawn where the language's font lacks a minus sign
    parts.set_xlabel(tr("timestep t"), fontsize=8)
    if result.on_gpu:
        parts.set_title(tr("size of the SDS gradient (RMS), real model, at the start picture"),
                        fontsize=8)
    else:
        parts.set_title(tr("the gradient near the end of a run (RMS): towards the target "
                           "(solid), noise (dashed)"), fontsize=8)
    parts.legend(fontsize=7)
    progress = figure.add_subplot(top[0, 1])
    for kind, run in result.runs.items():
        values = run.distances or run.saturation
        progress.plot(values, color=COLOURS[kind], label=tr(SHORT_LABELS[kind]))
    _progress_labels(progress, result)
    _end_pictures(figure, grid[1], result)
    return figure


def plot_schedule(result):
    """Experiment 2: t over the run for each schedule, the distance it leaves, the pictures."""
    figure, grid = _layout()
    top = grid[0].subgridspec(1, 2, wspace=0.28)
    times = figure.add_subplot(top[0, 0])
    random, annealed = result.runs["random"], result.runs["annealed"]
    times.plot(random.timesteps, ".", markersize=3, color=COLOURS["random"],
               label=tr(SHORT_LABELS["random"]))
    times.plot(annealed.timesteps, color=COLOURS["annealed"], label=tr(SHORT_LABELS["annealed"]))
    times.set_xlabel(tr("step"), fontsize=8)
    times.set_title(tr("the timestep t of each step"), fontsize=8)
    times.legend(fontsize=7)
    progress = figure.add_subplot(top[0, 1])
    for key, run in result.runs.items():
        if run.distances:
            progress.plot(run.distances, color=COLOURS[key], label=tr(SHORT_LABELS[key]))
            progress.plot(run.coarse, "--", color=COLOURS[key],
                          label=tr("{name}: coarse scales only", name=tr(SHORT_LABELS[key])))
        else:
            progress.plot(run.saturation, color=COLOURS[key], label=tr(SHORT_LABELS[key]))
    _progress_labels(progress, result)
    _end_pictures(figure, grid[1], result)
    return figure


def plot_guidance(result):
    """Experiment 3: how saturated each run gets, the sizes of SDS's two terms, the pictures."""
    figure, grid = _layout()
    top = grid[0].subgridspec(1, 2, wspace=0.28)
    saturation = figure.add_subplot(top[0, 0])
    for key, run in result.runs.items():
        saturation.plot([100 * s for s in run.saturation], color=COLOURS.get(key),
                        label=_label(key))
    saturation.set_xlabel(tr("step"), fontsize=8)
    saturation.set_title(tr("pixels at 0 or 1 (%): over-saturation"), fontsize=8)
    saturation.legend(fontsize=7)
    terms = figure.add_subplot(top[0, 1])
    terms.semilogy(result.grid, result.generative, color="#7f7f7f",
                   label=tr("$w\\,(\\hat\\epsilon_u - \\epsilon)$, the rest of SDS"))
    scales = sorted({float(k.removeprefix("SDS, s = ")) for k in result.runs if k != "CSD"})
    for scale in scales:
        if scale > 1:
            terms.semilogy(result.grid, [scale * c for c in result.classifier],
                           color=COLOURS.get(f"SDS, s = {scale:g}"),
                           label=tr("$s\\,w\\,(\\hat\\epsilon_c - \\hat\\epsilon_u)$, s = {scale}",
                                    scale=format(scale, "g")))
    fonts.log_ticks(terms.yaxis)
    terms.set_xlabel(tr("timestep t"), fontsize=8)
    terms.set_title(tr("the two terms of the SDS gradient at the start picture (RMS)"),
                    fontsize=8)
    terms.legend(fontsize=7)
    _end_pictures(figure, grid[1], result)
    return figure
