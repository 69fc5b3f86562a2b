"""Text to 3D: optimise a NeRF (sdskit/nerf.py) with your StableDiffusion's SDS `train_step`.

Used by the notebook's final cell:

    from sdskit.text_to_3d import run, show
    result = run(sd, "a DSLR photo of a hamburger", steps=400)   # sd: your StableDiffusion
    show(result)       # the mesh in an interactive 3D view (drag to turn, scroll to zoom), the turntable
    result.turntable   # path of the turntable GIF (or a folder of PNG frames)
    result.mesh        # path of the .glb (or a .ply point cloud, see result.notes); result.mesh_obj

Only two methods of `sd` are called: `get_text_embeds` and `train_step`. Each step draws a
random camera, renders the NeRF from it (64 x 64), picks the prompt for that view ("..., side
view"), and lets `sd.train_step` turn the render into a loss whose gradient is the SDS gradient.

Why the defaults take about ten minutes on a free Colab T4 (SD 2.1-base, fp16): see
T4_ESTIMATE below, and scripts/benchmark_sds_step.py, which measures the step.

The fast path (TextTo3DConfig.fast, sdskit/fast.py): the U-Net, the VAE encoder (forward and
backward) and the NeRF render replayed as CUDA graphs, with the kit's group-norm kernels
(sdskit/group_norm.py): the same results within fp16 rounding, ready in about ten seconds the
first time on a machine. On an NVIDIA H200 (SD 2.1-base architecture, random weights, fp16) the
loop runs 42.6 it/s against 15.0 eager, and the final cell (loading, steps, export) takes 36 s
against 41 for the default 400 steps, 73 s against 153 for 2,000. run() takes it by default on
a large GPU (fast_min_capability); on smaller GPUs, with vram_O, or on a CPU, the step stays
eager. For very long runs, fast_compile also compiles the U-Net (47 it/s after 55 s of
compiling).

The export (turntable, views, mesh) renders and queries the field in pieces sized by the free
GPU memory and the loop's own peak (export_samples), so it needs no more memory than the loop.
"""

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from sdskit import nerf as N
from sdskit.i18n import N_, tr

# How the defaults were sized (steps=400 at 64 x 64, 64 samples per ray, batch 1, fp16):
#   scripts/benchmark_sds_step.py on an NVIDIA H200 (SD 2.1-base architecture, random weights,
#   fp16) measured the kit's full step at 67 ms eager (15.0 it/s); the fast path, which a T4
#   (compute capability 7.5) does not get, at 23.5 ms. NVIDIA's datasheets give a T4 about a
#   fifteenth of an H200's fp16 tensor throughput and memory bandwidth (65 vs 989 TFLOPS,
#   320 GB/s vs 4.8 TB/s), so a T4 step ~ 67 ms x 15 ~ 1 s, and 400 steps ~ 7 minutes, plus
#   1-2 minutes for loading and the final renders: under ten. This is an estimate, not a T4
#   measurement: the tqdm bar shows the real it/s; lower `steps` if slower.
T4_ESTIMATE = "400 steps x ~1 s/step on a T4 (fp16) ~ 7 min, under 10; see the comment above"


@dataclass
class TextTo3DConfig:
    nerf: N.NeRFConfig = field(default_factory=N.NeRFConfig)  # the field and the renderer

    # --- optimisation ---
    steps: int = 400              # default number of steps (when run() gets steps=None)
    grid_lr: float = 1e-2         # Adam learning rate of the hash tables
    mlp_lr: float = 1e-3          # Adam learning rate of the MLPs
    guidance_scale: float = 100.0 # classifier-free guidance in SDS (DreamFusion: 100)
    negative_prompt: str = ""     # the "unconditional" prompt
    seed: int = 0                 # cameras, samples, lights and SDS noise all follow it
    fp16: bool = True             # autocast the NeRF to fp16 on a GPU
    # the fast path (fast_path below): the U-Net, the VAE encoder and the NeRF render replayed
    # as CUDA graphs. None: where it pays (a GPU of compute capability >= fast_min_capability,
    # the whole model on it); True: on any GPU; False: never.
    fast: bool | None = None
    fast_min_capability: tuple = (9, 0)  # Hopper and newer: where it was measured (see fast_path)
    # the U-Net's graph of torch.compile's kernels instead (sdskit.fast.FastPath.compile): 47 it/s
    # against 43 on an H200, after 55 s of compiling the first time on a machine. None: for runs
    # of at least fast_compile_steps steps, where that pays for itself (sdskit.fast's MEASURED).
    fast_compile: bool | None = None
    fast_compile_steps: int = 25000

    # --- what is rendered each step ---
    height: int = 64              # render size; train_step upsamples to 512 for the VAE
    width: int = 64
    as_latent: bool = False       # render [rgb, opacity] as 4 "latent" channels (no VAE)
    albedo_steps_ratio: float = 0.2   # first 20% of steps: albedo only (colours settle first)
    # after that, the shading of each step is drawn with these probabilities (DreamFusion-like)
    shading_probs: dict = field(default_factory=lambda: {"albedo": 0.2, "lambertian": 0.4,
                                                          "textureless": 0.4})

    # --- regularisers (weights; 0 turns one off) ---
    lambda_orientation: float = 1e-2  # normals facing away from the camera
    lambda_entropy: float = 1e-3      # opacity pushed to 0 or 1
    lambda_sparsity: float = 0.0      # opacity pushed to 0 (mean); raise if it fills the view

    # --- progress and outputs ---
    preview_every: int = 100      # preview render every this many steps (0: never)
    progress: bool = True         # show the tqdm progress bar (1/2 |g|^2, view, it/s)
    out_dir: str = "text_to_3d_out"
    export: bool = True           # turntable, normal/depth views and mesh at the end
    turntable_frames: int = 36
    export_size: int = 128        # resolution of the final renders
    mesh_resolution: int = 128    # marching-cubes grid per side
    mesh_threshold: float = 5.0   # density level of the surface
    viewer_height: int = 420      # pixels: the interactive 3D view shown by show()

    # --- without a GPU ---
    cpu_steps: int | None = 5     # on a CPU, at most this many steps (None: no cap)


@dataclass
class TextTo3DResult:
    model: N.NeRF
    config: TextTo3DConfig
    losses: list                  # what train_step returned each step: 1/2 ||g||^2 / B, the
                                  # SDS gradient's squared size (not an objective: need not fall)
    seconds: float                # wall time of the optimisation loop
    steps: int                    # steps actually run
    turntable: Path | None = None
    normal_view: Path | None = None
    depth_view: Path | None = None
    mesh: Path | None = None      # mesh.glb (vertex colours), or points.ply without scikit-image
    mesh_obj: Path | None = None  # the same mesh as mesh.obj
    still: Path | None = None     # front view (PNG): what the 3D viewer shows where no JavaScript runs
    notes: list = field(default_factory=list)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False


def _to_uint8(image):  # [3, H, W] or [1, H, W] in [0, 1] -> [H, W, 3] uint8
    image = image.detach().float().clamp(0, 1).cpu()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def show_preview(step, images):
    """Default preview: a row of images (shaded, normals, opacity) shown inline in a notebook."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4))
    for ax, (name, image) in zip(np.atleast_1d(axes), images.items()):
        ax.imshow(_to_uint8(image))
        ax.set_title(tr("{view} @ {step}", view=tr(name), step=step), fontsize=8)
        ax.axis("off")
    display(fig)
    plt.close(fig)


def run(sd, prompt, steps=None, config=None, device=None, preview=None, before_step=None):
    """Optimise a NeRF so that its renders score well under `sd` for `prompt`.

    sd: a StableDiffusion instance (only sd.get_text_embeds and sd.train_step are called).
    steps: optimisation steps (None: config.steps). On a CPU, capped at config.cpu_steps.
    config: a TextTo3DConfig (None: defaults, sized for a T4).
    device: where the NeRF lives (None: sd.device if it has one, else cuda when available).
    preview: callback(step, {name: [3, H, W] image}); None shows images inline in a notebook and
             saves PNGs into out_dir elsewhere.
    before_step: optional callback(step, camera) called before each sd.train_step (the oracle
             check uses it to tell its denoiser which view is being scored).
    Returns a TextTo3DResult.
    """
    cfg = config or TextTo3DConfig()
    device = torch.device(device or getattr(sd, "device", None)
                          or ("cuda" if torch.cuda.is_available() else "cpu"))
    steps = cfg.steps if steps is None else steps
    notes = []
    if device.type != "cuda" and cfg.cpu_steps is not None and steps > cfg.cpu_steps:
        message = tr("No GPU: running {cpu_steps} of {steps} steps only, to check that the code "
                     "runs. Real text-to-3D results need a GPU (e.g. Colab's T4) and the real "
                     "Stable Diffusion; expect noise here.", cpu_steps=cfg.cpu_steps, steps=steps)
        print(message)
        steps = cfg.cpu_steps
        # and smaller renders, so that the smoke run ends in about a minute
        cfg = replace(cfg, height=32, width=32, export_size=48, turntable_frames=8, mesh_resolution=48,
                      nerf=replace(cfg.nerf, num_samples=24))
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if preview is None:
        preview = show_preview if _in_notebook() else _save_preview(out_dir)

    # Cameras are drawn on the CPU, so that choosing the view's prompt never waits for the GPU;
    # ray samples and lights are drawn where the NeRF lives.
    camera_generator = torch.Generator().manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the SDS noise and timestep inside train_step use the global RNG
    model = N.NeRF(cfg.nerf).to(device)
    use_fp16 = cfg.fp16 and device.type == "cuda"
    # fused Adam on a GPU: one kernel for all parameters, and the GradScaler can skip a step
    # with inf gradients without a round trip to the CPU
    optimizer = torch.optim.Adam(model.param_groups(cfg.grid_lr, cfg.mlp_lr), betas=(0.9, 0.99),
                                 eps=1e-15, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)

    # Text embeddings, once: [uncond, cond] for each view-dependent prompt.
    uncond = sd.get_text_embeds([cfg.negative_prompt])  # [1, 77, D]
    views = ["front", "side", "back"] + (["overhead"] if cfg.nerf.overhead_elevation is not None else [])
    embeddings = {v: torch.cat([uncond, sd.get_text_embeds([N.view_prompt(prompt, v)])]) for v in views}

    shading_names = list(cfg.shading_probs)
    shading_p = torch.tensor([cfg.shading_probs[s] for s in shading_names])
    losses = []
    from tqdm.auto import tqdm

    # the fast path where it pays (TextTo3DConfig.fast), else None: the eager step
    fast = _fast_path_for(sd, cfg, device, steps) if cfg.fast is not False else None
    ray_renderer = fast.renderer() if fast else None
    if cfg.fast and device.type != "cuda":
        notes.append(tr("fast=True needs a GPU: ran the plain (eager) step."))
    if fast is not None and fast.failed is None and cfg.progress:  # why the bar waits at first
        print(tr("The fast path is on: the first steps record the step as CUDA graphs (and, the "
                 "first time on a machine, compile the kit's group-norm kernels), so they are "
                 "slower than the rest."))

    # The text encoder is not needed again: its GPU memory is lent to the loop and the export.
    with _text_encoder_parked(sd):
        if device.type == "cuda":  # the loop's own peak, which the export then stays under
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        bar = tqdm(range(steps), desc=tr("text-to-3D"), dynamic_ncols=True,
                   disable=not cfg.progress)
        for step in bar:
            camera = N.sample_cameras(1, cfg.nerf, camera_generator)  # on the CPU
            view = N.view_name(camera.azimuth.item(), camera.elevation.item(), cfg.nerf)
            camera = camera.to(device)
            if step < cfg.albedo_steps_ratio * steps:
                shading = "albedo"
            else:
                shading = shading_names[torch.multinomial(shading_p, 1, generator=None).item()]

            # Only the NeRF runs under autocast: Stable Diffusion already runs in sd.precision_t,
            # and autocast would move its group norms back to fp32 and add a cast per operation.
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_fp16):
                out = N.render(model, camera, cfg.height, cfg.width, shading=shading,
                               generator=generator, ray_renderer=ray_renderer)
            if cfg.as_latent:
                pred = torch.cat([out["image"], out["opacity"]], dim=1)  # [1, 4, H, W]
            else:
                pred = out["image"]  # [1, 3, H, W]
            if before_step is not None:
                before_step(step, camera)
            loss_sds = sd.train_step(embeddings[view], pred, guidance_scale=cfg.guidance_scale,
                                     as_latent=cfg.as_latent)
            loss = loss_sds
            if cfg.lambda_orientation > 0 and "orientation" in out:
                loss = loss + cfg.lambda_orientation * N.orientation_loss(out)
            if cfg.lambda_entropy > 0:
                loss = loss + cfg.lambda_entropy * N.opacity_entropy(out["opacity"])
            if cfg.lambda_sparsity > 0:
                loss = loss + cfg.lambda_sparsity * N.opacity_sparsity(out["opacity"])

            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss_sds.detach())
            if step % 10 == 0 or step == steps - 1:  # .item() waits for the GPU: not every step
                # what train_step returns is the gradient's squared size, not an objective
                bar.set_postfix({"½|g|²": f"{losses[-1].item():.4g}", "view": view}, refresh=False)

            if cfg.preview_every and (step + 1) % cfg.preview_every == 0:
                preview(step + 1, _preview_images(model, device))
        losses = torch.stack(losses).tolist() if losses else []  # waits for the last step
        seconds = time.perf_counter() - start
        bar.close()

        result = TextTo3DResult(model=model, config=cfg, losses=losses, seconds=seconds,
                                steps=steps, notes=notes)
        ray_renderer = None  # the NeRF's graphs and their memory: the export renders eagerly
        if cfg.export:
            # What only the loop needed goes first, so the export has the loop's memory to use.
            loop_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
            del optimizer, scaler  # Adam's two moments per parameter
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            export(result, out_dir, device, loop_peak)
    return result


@contextlib.contextmanager
def _text_encoder_parked(sd):
    """Keep sd's text encoder on the CPU inside the block (SD 2.1's takes ~0.7 GB of GPU memory),
    and put it back afterwards, even when the block is interrupted."""
    encoder = getattr(sd, "text_encoder", None)
    where = next(encoder.parameters(), torch.empty(0)).device if isinstance(
        encoder, torch.nn.Module) else None
    # vram_O's offload hooks (_hf_hook) move it themselves; a CPU model has nothing to free
    if where is None or where.type != "cuda" or hasattr(encoder, "_hf_hook"):
        yield
        return
    encoder.to("cpu")
    torch.cuda.empty_cache()
    try:
        yield
    finally:
        encoder.to(where)


def _save_preview(out_dir):
    def save(step, images):
        from PIL import Image
        row = np.concatenate([_to_uint8(im) for im in images.values()], axis=1)
        Image.fromarray(row).save(out_dir / f"preview_{step:05d}.png")
    return save


# Bytes of GPU memory one sample (a point on a ray, or of the density grid) takes while the
# field is queried without gradients, per hash-grid level: the [N, L, 8] corner indices (int64),
# the hashes, their weights and features. scripts/benchmark_sds_step.py measured 7620 B a sample
# at 16 levels (476 a level; export peak over what was allocated before it, NVIDIA H200); 640
# leaves a margin.
BYTES_PER_SAMPLE_LEVEL = 640
MAX_EXPORT_SAMPLES = 2 ** 17  # at most this many samples per piece (the loop renders 64^3)


def export_samples(device, nerf_config, loop_peak=None) -> int:
    """How many samples the export's renders and density queries take at once, so that the
    export needs no more GPU memory than the loop did: 80% of what the loop used above what is
    allocated now (loop_peak: the loop's peak allocated bytes), and no more than half of the
    memory still free (under any cap of torch.cuda.set_per_process_memory_fraction).
    On a CPU: MAX_EXPORT_SAMPLES."""
    device = torch.device(device)
    if device.type != "cuda":
        return MAX_EXPORT_SAMPLES
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    free += torch.cuda.memory_reserved(device) - allocated  # cached by torch, free to reuse
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    if get_fraction is not None:
        index = device.index if device.index is not None else torch.cuda.current_device()
        free = min(free, get_fraction(index) * total - allocated)
    budget = free / 2
    if loop_peak is not None:
        budget = min(budget, 0.8 * (loop_peak - allocated))
    per_sample = BYTES_PER_SAMPLE_LEVEL * nerf_config.grid_levels
    return int(min(MAX_EXPORT_SAMPLES, max(2 ** 12, budget / per_sample)))


def _render_views(model, camera, size, shading="albedo", max_samples=MAX_EXPORT_SAMPLES):
    """Evaluation renders (no random samples), in pieces of at most max_samples samples."""
    return N.render_in_chunks(model, camera, size, size, shading=shading, max_samples=max_samples)


def _preview_images(model, device):
    camera = N.orbit_cameras(1, device=device)  # front, elevation 15
    out = _render_views(model, camera, 64, shading="lambertian")
    albedo = _render_views(model, camera, 64, shading="albedo")["image"]
    return {N_("albedo"): albedo[0], N_("shaded"): out["image"][0],
            N_("normal"): (out["normal"][0] + 1) / 2, N_("opacity"): out["opacity"][0]}


def export(result, out_dir, device, loop_peak=None):
    """Turntable (GIF, or PNG frames), normal and depth views, a front still, and the mesh
    (.glb with vertex colours, and .obj) into out_dir. Renders and density queries go in pieces
    sized by the free GPU memory and the loop's peak (export_samples), so that the export fits
    in what the loop used."""
    cfg, model = result.config, result.model
    out_dir = Path(out_dir)
    from PIL import Image

    pieces = export_samples(device, cfg.nerf, loop_peak)
    camera = N.orbit_cameras(cfg.turntable_frames, device=device)
    frames = [_to_uint8(im) for im in _render_views(model, camera, cfg.export_size,
                                                    max_samples=pieces)["image"]]
    try:
        import imageio.v2 as imageio
        result.turntable = out_dir / "turntable.gif"
        imageio.mimsave(result.turntable, frames, duration=1000 / 12, loop=0)
    except ImportError:
        folder = out_dir / "turntable"
        folder.mkdir(exist_ok=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"frame_{i:03d}.png")
        result.turntable = folder
        result.notes.append(tr("imageio is not installed: the turntable is a folder of PNG "
                               "frames."))
    result.still = out_dir / "front.png"  # the orbit starts at the back: azimuth 0 is halfway
    Image.fromarray(frames[len(frames) // 2]).save(result.still)

    # normal and depth from four sides
    four = N.orbit_cameras(4, device=device)
    views = _render_views(model, four, cfg.export_size, shading="textureless", max_samples=pieces)
    white = torch.ones_like(views["normal"])
    normal = (views["normal"] + 1) / 2 * views["opacity"] + white * (1 - views["opacity"])
    depth = views["depth"]
    hit = views["opacity"] > 0.5
    if hit.any():
        lo, hi = depth[hit].min(), depth[hit].max()
        depth = torch.where(hit, 1 - (depth - lo) / (hi - lo + 1e-6), torch.zeros_like(depth))
    result.normal_view = out_dir / "normals.png"
    result.depth_view = out_dir / "depth.png"
    Image.fromarray(np.concatenate([_to_uint8(n) for n in normal], axis=1)).save(result.normal_view)
    Image.fromarray(np.concatenate([_to_uint8(d) for d in depth], axis=1)).save(result.depth_view)
    del views, normal, depth, white

    result.mesh, result.mesh_obj = export_mesh(model, out_dir, cfg.mesh_resolution,
                                               cfg.mesh_threshold, result.notes, pieces)
    for note in result.notes:
        print(note)
    mesh_names = ", ".join(p.name for p in (result.mesh, result.mesh_obj) if p) or tr("no mesh")
    print(tr("Saved to {folder}/: {files}", folder=out_dir, files=", ".join(
        [result.turntable.name, result.normal_view.name, result.depth_view.name, mesh_names])))


@torch.no_grad()
def density_grid(model, resolution, chunk=MAX_EXPORT_SAMPLES):
    """Density [R, R, R] and albedo [R, R, R, 3] (numpy, float32) sampled on a resolution^3 grid
    over [-bound, bound]^3, index [i, j, k] at (x_i, y_j, z_k); `chunk` points at a time."""
    bound = model.config.bound
    tensors = list(model.parameters()) + list(model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    axis = torch.linspace(-bound, bound, resolution, device=device)
    sigma = torch.empty(resolution ** 3)
    albedo = torch.empty(resolution ** 3, 3)
    plane = resolution * resolution
    for start in range(0, resolution ** 3, chunk):  # points in row-major (i, j, k) order
        index = torch.arange(start, min(start + chunk, resolution ** 3), device=device)
        points = torch.stack([axis[index // plane], axis[index // resolution % resolution],
                              axis[index % resolution]], dim=-1)  # [n, 3]
        s, a = model.query(points)
        sigma[start:start + len(index)] = s.float().cpu()
        albedo[start:start + len(index)] = a.float().cpu()
    shape = (resolution,) * 3
    return sigma.reshape(shape).numpy(), albedo.reshape(*shape, 3).numpy()


def extract_mesh(model, resolution=128, threshold=5.0, notes=None, chunk=MAX_EXPORT_SAMPLES):
    """Marching cubes on the density grid at `threshold` -> a trimesh.Trimesh with vertex colours
    (the albedo at the nearest grid point), faces wound outward; or a trimesh.PointCloud of the
    grid points above `threshold` where scikit-image is missing; or None with no surface."""
    import trimesh

    notes = notes if notes is not None else []
    sigma, albedo = density_grid(model, resolution, chunk)
    bound = model.config.bound
    scale = 2 * bound / (resolution - 1)
    if not (sigma.min() < threshold < sigma.max()):
        notes.append(tr("No surface at density {threshold} (range {low}..{high}): no mesh "
                        "written.", threshold=threshold, low=format(sigma.min(), ".3g"),
                        high=format(sigma.max(), ".3g")))
        return None
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        idx = np.argwhere(sigma > threshold)
        colors = (albedo[tuple(idx.T)] * 255).round().astype(np.uint8)
        notes.append(tr("scikit-image is not installed: wrote a point cloud (points.ply) instead "
                        "of a mesh."))
        return trimesh.PointCloud(idx * scale - bound, colors=colors)
    verts, faces, _, _ = marching_cubes(sigma, level=threshold)
    idx = np.clip(np.round(verts).astype(int), 0, resolution - 1)
    colors = (albedo[idx[:, 0], idx[:, 1], idx[:, 2]] * 255).round().astype(np.uint8)
    # marching_cubes winds faces inward for a density (high inside): reversed, they face outward
    return trimesh.Trimesh(vertices=verts * scale - bound, faces=faces[:, ::-1],
                           vertex_colors=colors, process=False)


def export_mesh(model, out_dir, resolution=128, threshold=5.0, notes=None, chunk=MAX_EXPORT_SAMPLES):
    """extract_mesh -> out_dir/mesh.glb and out_dir/mesh.obj (both with vertex colours), or
    out_dir/points.ply. Returns the two paths (None where nothing was written)."""
    mesh = extract_mesh(model, resolution, threshold, notes, chunk)
    out_dir = Path(out_dir)
    if mesh is None:
        return None, None
    if not hasattr(mesh, "faces"):  # a point cloud
        path = out_dir / "points.ply"
        mesh.export(path)
        return path, None
    glb, obj = out_dir / "mesh.glb", out_dir / "mesh.obj"
    mesh.export(glb)
    mesh.export(obj, include_color=True)
    return glb, obj


def evaluate_views(model, camera, size):
    """Albedo image [B, 3, H, W] and opacity [B, 1, H, W] from each camera (no randomness)."""
    out = _render_views(model, camera, size)
    return out["image"], out["opacity"]


# ----------------------------------------------------------------------------------------------
# Showing the result
# ----------------------------------------------------------------------------------------------

class MeshView:
    """The mesh in an interactive 3D view for a notebook: drag to turn it, scroll to zoom,
    right-drag to pan (trimesh's self-contained three.js viewer, in an iframe: no network).

    Behind the viewer lies a still image (`still`, PNG bytes) that shows wherever the viewer
    does not run (no JavaScript, or HTML that drops iframes); where only images are shown, the
    still is offered on its own (image/png).
    """

    def __init__(self, mesh, still=None, height=420):
        self.mesh, self.still, self.height = mesh, still, height

    def _viewer_html(self):
        import html

        from trimesh.viewer.notebook import scene_to_html
        return html.escape(scene_to_html(self.mesh.scene()), quote=True)

    def html(self) -> str:
        import base64
        import html
        h = self.height
        still = ""
        if self.still is not None:
            data = base64.b64encode(self.still).decode()
            alt = html.escape(tr("the result, front view"), quote=True)
            still = (f'<img src="data:image/png;base64,{data}" alt="{alt}" '
                     f'style="position:absolute;left:0;top:0;height:{h}px">')
        title = html.escape(tr("3D view"), quote=True)
        help_line = html.escape(tr("drag: turn, scroll: zoom, right-drag: pan"))
        return (f'<div style="position:relative;width:100%;height:{h}px">{still}'
                f'<iframe srcdoc="{self._viewer_html()}" title="{title}" '
                f'style="position:absolute;left:0;top:0;width:100%;height:{h}px;border:none">'
                f'</iframe></div><div style="font-size:small">{help_line}</div>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        import base64
        bundle = {"text/html": self.html(),
                  "text/plain": tr("<3D view of a mesh: {count} vertices>",
                                   count=len(self.mesh.vertices))}
        if self.still is not None:
            bundle["image/png"] = base64.b64encode(self.still).decode()
        return bundle


def show(result):
    """Show a TextTo3DResult in a notebook: the mesh in an interactive 3D view (a still image
    where no JavaScript runs), the turntable, and the normal and depth views."""
    from IPython.display import Image, display

    still = result.still.read_bytes() if result.still else None
    if result.mesh is not None and result.mesh.suffix == ".glb":
        import trimesh
        display(MeshView(trimesh.load(result.mesh, force="mesh"), still,
                         result.config.viewer_height))
    for picture in (result.turntable, result.normal_view, result.depth_view):
        if picture is not None and picture.suffix in (".gif", ".png"):
            display(Image(filename=str(picture)))
    files = ", ".join(p.name for p in (result.mesh, result.mesh_obj, result.turntable) if p)
    print(tr("{steps} steps in {seconds} s; files in {folder}/: {files}", steps=result.steps,
             seconds=format(result.seconds, ".0f"), folder=Path(result.config.out_dir), files=files))
    if result.losses:
        tenth = max(1, len(result.losses) // 10)
        first, last = result.losses[:tenth], result.losses[-tenth:]
        print(tr("What train_step returned, 1/2 ||grad||^2 / B: {first:.3g} on average over the "
                 "first {count} steps, {last:.3g} over the last {count}. It is the squared size of "
                 "the SDS gradient, not an objective, and need not go down: judge the result by "
                 "its pictures.", first=sum(first) / len(first), last=sum(last) / len(last),
                 count=tenth))


# ----------------------------------------------------------------------------------------------
# The fast path (sdskit/fast.py)
# ----------------------------------------------------------------------------------------------

def fast_path(sd, compile=False):
    """Speed up `sd`'s step on a GPU, in place: its U-Net forward and its VAE encoder (forward
    and backward) are replayed as CUDA graphs of their eager kernels (sdskit/fast.py), recorded
    at their first call. Same results as eager (sdskit.fast.MEASURED). run() calls it when
    TextTo3DConfig.fast asks for it, and replays the NeRF render too. compile: graphs of
    torch.compile's kernels instead (TextTo3DConfig.fast_compile). Returns sd."""
    from sdskit import fast

    if hasattr(sd.unet, "_hf_hook"):
        raise ValueError(tr("fast=True needs the whole model on the GPU, but this StableDiffusion "
                            "was built with vram_O=True, which streams its weights from the CPU. "
                            "Build it with vram_O=False, or leave fast off."))
    fast.enable(sd, compile)
    return sd


def _fast_path_for(sd, cfg, device, steps=None):
    """The FastPath for this run on `device`, or None where the step stays eager: a CPU,
    fast=None and a GPU older than cfg.fast_min_capability, weights streamed from the CPU
    (vram_O), a U-Net or VAE that is not diffusers' own (fast.graphable), or a fast path that
    failed before (it said so then). A failure here says so in one line; the run goes on eagerly.
    Compiled (fast_compile) for runs of fast_compile_steps or more."""
    from sdskit import fast

    if device.type != "cuda":
        return None
    steps = cfg.steps if steps is None else steps
    compile = cfg.fast_compile if cfg.fast_compile is not None else steps >= cfg.fast_compile_steps
    known = getattr(sd, fast.ATTRIBUTE, None)
    if known is not None and known.failed is not None:
        return None
    if known is not None and (known.compiled or not compile):
        return known
    parts = fast.graphable(sd)
    index = device.index if device.index is not None else torch.cuda.current_device()
    if not parts or hasattr(sd.unet, "_hf_hook") or (
            cfg.fast is None and torch.cuda.get_device_capability(index) < tuple(cfg.fast_min_capability)):
        if cfg.fast:
            print(tr("fast=True needs a StableDiffusion whose diffusers U-Net and VAE are on the "
                     "GPU (not vram_O=True): this run takes the eager step."))
        return None
    try:
        fast_path(sd, compile)
    except Exception as error:  # noqa: BLE001 - say it in one line, go on eagerly
        why = f"{type(error).__name__}: {error}"[:200]
        print(tr("The fast path could not be set up ({error}), so this run takes the eager step: "
                 "the same results, only slower.", error=why))
        return None
    return getattr(sd, fast.ATTRIBUTE)
