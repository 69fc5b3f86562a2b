"""Part 7: make SDS behave differently, and see why.

Three experiments. Each calls the function the student wrote for it, runs on the CPU in about
a second with the oracle prior (sdskit/oracle.py, PriorOracle) and on a GPU with the real
Stable Diffusion, and returns what its plot (sdskit/experiment_plots.py) draws:

    weighting   sds_weight(abar, kind)                  DreamFusion's w(t), uniform, Fantasia3D's
    schedule    annealed_timestep(step, total, lo, hi)  t from max_step down to min_step
    guidance    csd_gradient(eps_uncond, eps_cond, w)   the guidance term alone (CSD)

Each is the 2D warm-up of Part 5 (the picture itself is the parameter, Adam on its pixels) with
an SDS step of its own, `sds_step`: train_step's five stages with the timestep, the weight and
(for CSD) the gradient given from outside. Every other piece is the student's own blanks: the
latents (blank 3 or 4), t (blank 5, for random t), the gradient (blank 6), the targets (blank 7).
"""

import contextlib
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sdskit import checks
from sdskit.figures import demo_image
from sdskit.oracle import PriorOracle
from sdskit.warmup import oracle_target

KINDS = ("dreamfusion", "uniform", "fantasia3d")  # the weightings of experiment 1


@dataclass
class ExperimentConfig:
    steps: int = 100
    size: int = 64  # the picture: [1, 3, size, size]
    lr: float = 0.03
    betas: tuple = (0.9, 0.99)  # Adam's, as the text-to-3D loop's (sdskit/text_to_3d.py)
    guidance_scale: float = 1.0  # the oracle's conditional guess is the target already
    spread: float = 0.003  # the oracle prior's variance scale (PriorOracle)
    washout: float = 0.1  # the unconditional target: (1 - washout) target + washout grey
    seed: int = 0
    as_latent: bool = True  # the oracle: blank 3's path; the real model: blank 4's (the VAE)


# On a GPU with the real model: Part 5's warm-up settings, 100 steps per run.
PROMPT_CONFIG = ExperimentConfig(steps=100, size=256, lr=0.01, guidance_scale=100.0,
                                 as_latent=False)


@dataclass
class Run:
    """One optimisation: the picture it ended with and what it did on the way."""

    label: str
    image: torch.Tensor  # [1, 3, size, size] in [0, 1], after the last step
    timesteps: list = field(default_factory=list)  # t of each step
    distances: list = field(default_factory=list)  # RMS distance to the target, each step
    coarse: list = field(default_factory=list)  # the same for the coarse scales (8 x 8 averages)
    saturation: list = field(default_factory=list)  # share of pixel values at 0 or 1
    seconds: float = 0.0


@contextlib.contextmanager
def one_thread():
    """The oracle's tensors are small: one thread runs them as fast as two on an idle machine,
    faster on a busy one, and always in the same order (the stored figures are reproducible)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def oracle_prior(sd_class, config: ExperimentConfig):
    """A StableDiffusion (reference state, the class's methods) whose U-Net is PriorOracle: the
    prompt's prior is centred on the sky-and-hills picture, the unconditional one on a
    washed-out copy. Returns (sd, target picture [1, 3, size, size])."""
    sd = checks.reference_instance(sd_class)
    target = demo_image(config.size)
    grey = torch.full_like(target, float(target.mean()))
    washed = (1 - config.washout) * target + config.washout * grey
    sd.unet = PriorOracle(sd.scheduler.alphas_cumprod, oracle_target(target),
                          oracle_target(washed), spread=config.spread)
    return sd, target


def latents_of(sd, picture, as_latent):
    """picture [B, 3, H, W] in [0, 1] -> latents [B, 4, 64, 64], through blank 3 or blank 4."""
    if as_latent:  # RGB plus a constant fourth channel, as in Part 5's oracle warm-up
        return sd.interpolate_latents(torch.cat([picture, torch.ones_like(picture[:, :1])], 1))
    return sd.encode_rgb(picture)


def predict_noise(sd, text_embeddings, latents, t, noise):
    """The U-Net's two predictions for latents noised at t: (eps_uncond, eps_cond), float32."""
    embeddings = sd.batch_embeddings(text_embeddings, latents.shape[0])  # [2B, 77, D]
    with torch.no_grad():
        noisy = sd.scheduler.add_noise(latents, noise, t)
        eps = sd.unet(torch.cat([noisy] * 2).to(sd.precision_t), torch.cat([t] * 2),
                      encoder_hidden_states=embeddings).sample.float()
    return eps.chunk(2)


def sds_step(sd, text_embeddings, picture, t, w, guidance_scale, gradient=None, as_latent=True):
    """One SDS step, train_step's with t [1] and w [B, 1, 1, 1] given from outside, and
    `gradient(eps_uncond, eps_cond, w)` in place of blank 6 if given. Returns the loss, whose
    gradient with respect to `picture` is the SDS gradient."""
    batch = picture.shape[0]
    latents = latents_of(sd, picture, as_latent)  # [B, 4, 64, 64]
    t = t.expand(batch)
    noise = torch.randn_like(latents)  # eps ~ N(0, I)
    eps_uncond, eps_cond = predict_noise(sd, text_embeddings, latents, t, noise)
    if gradient is None:
        guided = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        grad = sd.sds_gradient(guided, noise.float(), w)  # blank 6
    else:
        grad = gradient(eps_uncond, eps_cond, w)
    grad = torch.nan_to_num(grad)
    targets = sd.sds_targets(latents, grad)  # blank 7
    return 0.5 * F.mse_loss(latents.float(), targets, reduction="sum") / batch


def dreamfusion_weight(sd, t):
    """w(t) = 1 - abar_t, [B, 1, 1, 1]: train_step's weight, for the experiments that vary
    something else."""
    return (1 - sd.alphas[t]).float().view(-1, 1, 1, 1)


def _coarse(image, block=8):
    """The picture's coarse structure: its averages over `block` x `block` pixels."""
    return F.avg_pool2d(image, block)


def optimise(sd, text_embeddings, config: ExperimentConfig, pick_t, weight, label,
             gradient=None, target=None, guidance_scale=None) -> Run:
    """The warm-up loop: `config.steps` SDS steps on a picture that starts as noise.

    pick_t(step) -> t [1] (long, on sd.device); weight(t) -> w [1, 1, 1, 1]."""
    begin = time.perf_counter()
    device = sd.device
    scale = config.guidance_scale if guidance_scale is None else guidance_scale
    generator = torch.Generator().manual_seed(config.seed)
    start = torch.rand(1, 3, config.size, config.size, generator=generator)
    image = start.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=config.lr, betas=config.betas)
    torch.manual_seed(config.seed)  # random t (blank 5) and the noise of each step
    run = Run(label, image)
    target_coarse = _coarse(target) if target is not None else None
    for step in range(config.steps):
        t = pick_t(step)
        optimizer.zero_grad()
        loss = sds_step(sd, text_embeddings, image, t, weight(t), scale, gradient,
                        config.as_latent)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
            now = image.detach().float().cpu()
        run.timesteps.append(int(t.flatten()[0]))
        run.saturation.append(float(((now < 0.01) | (now > 0.99)).float().mean()))
        if target is not None:
            run.distances.append(float((now - target).pow(2).mean().sqrt()))
            run.coarse.append(float((_coarse(now) - target_coarse).pow(2).mean().sqrt()))
    run.image = image.detach().float().cpu()
    run.seconds = time.perf_counter() - begin
    return run


def _prompt_embeddings(sd, prompt):
    return torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds([prompt])])  # [2, 77, D]


def _oracle_embeddings():
    return torch.zeros(2, 1, 1)  # [uncond, cond]; the oracle reads no text


def _random_t(sd):
    return lambda step: sd.sample_timestep(1)  # blank 5


# ---------------------------------------------------------------------------------------
# Experiment 1: the weight w(t)
# ---------------------------------------------------------------------------------------
@dataclass
class WeightingResult:
    runs: dict  # kind -> Run
    grid: list  # the timesteps at which the gradient's parts were measured
    signal: dict  # kind -> RMS of the gradient's mean part (oracle), or of the gradient (GPU)
    noise: dict  # kind -> RMS of the part that is noise (oracle only)
    target: torch.Tensor | None = None
    on_gpu: bool = False


def _weigh(sds_weight, kind):
    return lambda sd: (lambda t: sds_weight(sd.alphas[t], kind).float())


def _predictions_over_t(sd, text_embeddings, picture, config, grid):
    """`picture`'s latents noised with one fixed eps (seed config.seed + 1) at each t of
    `grid`: yields (t, latents, eps, uncond, cond). Call it under torch.no_grad()."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    latents = latents_of(sd, picture.to(sd.device), config.as_latent)
    eps = torch.randn(latents.shape, generator=generator).to(latents)
    for value in grid:
        t = torch.tensor([value], device=sd.device)
        yield (t, latents, eps, *predict_noise(sd, text_embeddings, latents, t, eps))


def gradient_parts(sd, text_embeddings, picture, sds_weight, config, grid, oracle=True):
    """For each kind and each t of `grid`: the RMS size of the SDS gradient at `picture`.

    With the oracle the prediction is linear in z_t, so the gradient splits exactly into its
    mean over the noise, w eps_hat(alpha_t z) (the part that points somewhere: `signal`), and
    the rest (`noise`). The real model allows no such split: `signal` is the whole gradient."""
    signal = {kind: [] for kind in KINDS}
    noise_part = {kind: [] for kind in KINDS}
    with torch.no_grad():
        for t, latents, eps, uncond, cond in _predictions_over_t(sd, text_embeddings, picture,
                                                                 config, grid):
            guided = uncond + config.guidance_scale * (cond - uncond)
            if oracle:
                mean_u, mean_c = predict_noise(sd, text_embeddings, latents, t, 0 * eps)
                mean = mean_u + config.guidance_scale * (mean_c - mean_u)
            for kind in KINDS:
                w = sds_weight(sd.alphas[t], kind).float()
                grad = sd.sds_gradient(guided, eps.float(), w)
                if oracle:
                    part = sd.sds_gradient(mean, 0 * eps.float(), w)
                    signal[kind].append(float(part.pow(2).mean().sqrt()))
                    noise_part[kind].append(float((grad - part).pow(2).mean().sqrt()))
                else:
                    signal[kind].append(float(grad.pow(2).mean().sqrt()))
    return signal, noise_part


NEAR = 0.2  # experiment 1 measures the gradient at 0.8 target + 0.2 start (RMS distance 0.08)


def weighting_oracle(sd_class, sds_weight, config: ExperimentConfig | None = None):
    """Experiment 1 on the CPU: one warm-up per weighting, random t (blank 5), the oracle."""
    with one_thread():
        config = config or ExperimentConfig()
        sd, target = oracle_prior(sd_class, config)
        embeddings = _oracle_embeddings()
        runs = {kind: optimise(sd, embeddings, config, _random_t(sd), _weigh(sds_weight, kind)(sd),
                               kind, target=target) for kind in KINDS}
        start = torch.rand(1, 3, config.size, config.size,
                           generator=torch.Generator().manual_seed(config.seed))
        near = (1 - NEAR) * target + NEAR * start  # a picture as near the target as runs end
        grid = list(range(sd.min_step, sd.max_step + 1, 40))
        signal, noise = gradient_parts(sd, embeddings, near, sds_weight, config, grid)
        return WeightingResult(runs, grid, signal, noise, target)


def weighting_prompt(sd, sds_weight, prompt, config: ExperimentConfig = PROMPT_CONFIG):
    """Experiment 1 on a GPU: the same three runs with the real model and a prompt."""
    embeddings = _prompt_embeddings(sd, prompt)
    runs = {kind: optimise(sd, embeddings, config, _random_t(sd), _weigh(sds_weight, kind)(sd),
                           kind) for kind in KINDS}
    start = torch.rand(1, 3, config.size, config.size,
                       generator=torch.Generator().manual_seed(config.seed))
    grid = list(range(sd.min_step, sd.max_step + 1, 80))
    signal, noise = gradient_parts(sd, embeddings, start, sds_weight, config, grid, oracle=False)
    return WeightingResult(runs, grid, signal, noise, on_gpu=True)


# ---------------------------------------------------------------------------------------
# Experiment 2: a timestep schedule
# ---------------------------------------------------------------------------------------
@dataclass
class ScheduleResult:
    runs: dict  # "random" and "annealed" -> Run
    target: torch.Tensor | None = None
    on_gpu: bool = False


def _annealed(sd, annealed_timestep, steps):
    def pick(step):
        value = annealed_timestep(step, steps, sd.min_step, sd.max_step)
        return torch.as_tensor(value, dtype=torch.long, device=sd.device).reshape(1)
    return pick


def _schedules(sd, embeddings, config, annealed_timestep, target):
    weight = lambda t: dreamfusion_weight(sd, t)  # noqa: E731
    return {"random": optimise(sd, embeddings, config, _random_t(sd), weight, "random",
                               target=target),
            "annealed": optimise(sd, embeddings, config,
                                 _annealed(sd, annealed_timestep, config.steps), weight,
                                 "annealed", target=target)}


def schedule_oracle(sd_class, annealed_timestep, config: ExperimentConfig | None = None):
    """Experiment 2 on the CPU: random t (blank 5) against the annealed schedule, the oracle."""
    with one_thread():
        config = config or ExperimentConfig()
        sd, target = oracle_prior(sd_class, config)
        return ScheduleResult(_schedules(sd, _oracle_embeddings(), config, annealed_timestep,
                                         target), target)


def schedule_prompt(sd, annealed_timestep, prompt, config: ExperimentConfig = PROMPT_CONFIG):
    """Experiment 2 on a GPU, with the real model and a prompt."""
    return ScheduleResult(_schedules(sd, _prompt_embeddings(sd, prompt), config,
                                     annealed_timestep, None), on_gpu=True)


# ---------------------------------------------------------------------------------------
# Experiment 3: guidance, and Classifier Score Distillation
# ---------------------------------------------------------------------------------------
SCALES = (1.0, 7.5, 100.0)  # the guidance scales SDS runs at on the oracle
GPU_SCALES = (7.5, 100.0)


@dataclass
class GuidanceResult:
    runs: dict  # "SDS, s = 7.5", ..., "CSD" -> Run
    grid: list  # timesteps at which the two terms were measured
    generative: list  # RMS of w (eps_uncond - eps) at the start picture, per t
    classifier: list  # RMS of w (eps_cond - eps_uncond), per t (times s for SDS's share)
    target: torch.Tensor | None = None
    on_gpu: bool = False


def _terms(sd, embeddings, picture, config, grid):
    """The sizes of SDS's two terms at `picture`: w (eps_u - eps) and w (eps_c - eps_u)."""
    generative, classifier = [], []
    with torch.no_grad():
        for t, _, eps, uncond, cond in _predictions_over_t(sd, embeddings, picture, config, grid):
            w = dreamfusion_weight(sd, t)
            generative.append(float(sd.sds_gradient(uncond, eps.float(), w).pow(2).mean().sqrt()))
            classifier.append(float(sd.sds_gradient(cond, uncond, w).pow(2).mean().sqrt()))
    return generative, classifier


def _guidance_runs(sd, embeddings, config, csd_gradient, scales, target):
    weight = lambda t: dreamfusion_weight(sd, t)  # noqa: E731
    runs = {}
    for scale in scales:
        label = f"SDS, s = {scale:g}"
        runs[label] = optimise(sd, embeddings, config, _random_t(sd), weight, label,
                               target=target, guidance_scale=scale)
    runs["CSD"] = optimise(sd, embeddings, config, _random_t(sd), weight, "CSD",
                           gradient=csd_gradient, target=target)
    return runs


def guidance_oracle(sd_class, csd_gradient, config: ExperimentConfig | None = None):
    """Experiment 3 on the CPU: SDS at three guidance scales against CSD, the oracle."""
    with one_thread():
        config = config or ExperimentConfig()
        sd, target = oracle_prior(sd_class, config)
        embeddings = _oracle_embeddings()
        runs = _guidance_runs(sd, embeddings, config, csd_gradient, SCALES, target)
        start = torch.rand(1, 3, config.size, config.size,
                           generator=torch.Generator().manual_seed(config.seed))
        grid = list(range(sd.min_step, sd.max_step + 1, 40))
        generative, classifier = _terms(sd, embeddings, start, config, grid)
        return GuidanceResult(runs, grid, generative, classifier, target)


def guidance_prompt(sd, csd_gradient, prompt, config: ExperimentConfig = PROMPT_CONFIG):
    """Experiment 3 on a GPU: SDS at 7.5 and 100 against CSD, with the real model."""
    embeddings = _prompt_embeddings(sd, prompt)
    runs = _guidance_runs(sd, embeddings, config, csd_gradient, GPU_SCALES, None)
    start = torch.rand(1, 3, config.size, config.size,
                       generator=torch.Generator().manual_seed(config.seed))
    grid = list(range(sd.min_step, sd.max_step + 1, 80))
    generative, classifier = _terms(sd, embeddings, start, config, grid)
    return GuidanceResult(runs, grid, generative, classifier, on_gpu=True)
