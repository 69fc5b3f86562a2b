"""Benchmark the text-to-3D training step against its floor (prints figures; not a test).

    python scripts/benchmark_sds_step.py            # on a GPU: SD 2.1-base and SD 1.5 architectures
    python scripts/benchmark_sds_step.py --tiny     # anywhere (CPU smoke test): the kit's tiny model

The real architectures are built from their published configs (written out below) with random
weights: nothing is downloaded, and timings do not depend on weights. For each model it prints:

  step        the kit's full training step at default settings (sdskit.text_to_3d.run:
              render 64x64 + SDS train_step + backward + Adam), mean over timed steps
  floor       what no SDS step can avoid: U-Net forward with CFG (batch 2, 64x64 latents)
              + VAE encoder forward and backward at 512x512
  ratio       step / floor, it/s and peak GPU memory
  nerf        NeRF render + backward alone at 64x64 (albedo; and lambertian, with normals)
  fast        the step on the fast path (sdskit/fast.py: the U-Net, the VAE encoder forward and
              backward, and the NeRF render replayed as CUDA graphs): it/s, ratio to the floor,
              peak memory, the seconds its recording took, and the loss and the gradient on
              pred_rgb against eager (same t and noise); then its compiled tier (fast_compile:
              the U-Net through torch.compile), its compile time and it/s
  final cell  in a fresh process per mode (default, and vram_O=True: VAE slicing, VAE gradient
              checkpointing, sequential CPU offload): the final cell's path, run() with the
              export, printing the loop's peak and the export's peak allocated memory; then the
              same again under a memory cap just above the loop's peak
              (torch.cuda.set_per_process_memory_fraction), to show that it completes
  walls       the final cell end to end (loading the model, recording or compiling, the steps,
              the export) in a fresh process per path, eager and the default (the fast path on
              a large GPU; with an empty Triton cache, as on a machine's first run), at 400 and
              2,000 steps (--wall-steps): wall, steady it/s, ready time. On an H200 these take
              about 6 minutes: a run within a 10-minute limit needs --no-final-cell (the memory
              rows in a second run, --final-cell)
  --explore graphs  each heavy part (U-Net forward, VAE encoder forward+backward, NeRF render
              +backward) eager, as a CUDA graph of its eager kernels, and compiled (regional or
              whole, torch.compile's default mode) inside a CUDA graph: seconds until ready, ms
              per call, largest difference from eager; compiled ones again in a fresh process
              (torch's compile caches warm), to choose what the fast path does per part
  --profile   where a step's time goes (torch.profiler's top operations, CPU and GPU)
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdskit import fast as F  # noqa: E402
from sdskit import text_to_3d as T  # noqa: E402
from autograder.notebook_code import solution_class  # noqa: E402
from sdskit.paths import TINY_SD  # noqa: E402

# --- Published architecture configs (diffusers / transformers argument names) ---
VAE_SD = dict(  # the same autoencoder for SD 1.5 and SD 2.1
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
    block_out_channels=[128, 256, 512, 512], act_fn="silu", sample_size=512,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    scaling_factor=0.18215,
)
UNET_COMMON = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=[320, 640, 1280, 1280], norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    center_input_sample=False, downsample_padding=1, flip_sin_to_cos=True, freq_shift=0,
    mid_block_scale_factor=1,
)
MODELS = {
    "SD 2.1-base": dict(
        unet=dict(UNET_COMMON, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                  use_linear_projection=True, upcast_attention=False),
        text=dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                  num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
                  projection_dim=512),
        vae=VAE_SD),
    "SD 1.5": dict(
        unet=dict(UNET_COMMON, cross_attention_dim=768, attention_head_dim=8,
                  use_linear_projection=False),
        text=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                  projection_dim=768),
        vae=VAE_SD),
}


def write_random_model(spec, folder, device):
    """A diffusers folder with random weights for `spec` (tokenizer and scheduler: the tiny model's,
    whose byte-level ids fit in the real vocabulary; the scheduler config is Stable Diffusion's)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    for part in ("tokenizer", "scheduler"):
        shutil.copytree(TINY_SD / part, folder / part)
    shutil.copy(TINY_SD / "model_index.json", folder / "model_index.json")
    torch.manual_seed(0)
    with torch.device(device):
        UNet2DConditionModel(**spec["unet"]).half().save_pretrained(folder / "unet")
        AutoencoderKL(**spec["vae"]).half().save_pretrained(folder / "vae")
        CLIPTextModel(CLIPTextConfig(**spec["text"], bos_token_id=514, eos_token_id=515,
                                     pad_token_id=515)).half().save_pretrained(folder / "text_encoder")
    return folder


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats, warmup=2):
    """Median seconds of fn() over `repeats` runs, after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gib(device):
    return torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else float("nan")


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def step_time(sd, device, steps, config, warm=True, skip=None):
    """Seconds per step of the kit's loop in its steady state: steps `skip`..`steps - 1` of one
    run (a short warm-up run first). The first steps are left out: the fast path records its
    CUDA graphs for each new NeRF and shading there."""
    if warm:
        T.run(sd, "a hamburger", steps=3, config=config, device=device)
    skip = steps // 3 if skip is None else skip
    marks = {}

    def mark(step, camera):
        if step in (skip, steps - 1):
            sync(device)
            marks[step] = time.perf_counter()
    reset_peak(device)
    T.run(sd, "a hamburger", steps=steps, config=config, device=device, before_step=mark)
    return (marks[steps - 1] - marks[skip]) / (steps - 1 - skip), peak_gib(device)


def floor_time(sd, device, repeats):
    """U-Net CFG forward (batch 2, 64x64) + VAE encoder forward+backward at 512."""
    dtype = sd.precision_t
    D = sd.text_encoder.config.hidden_size
    latents = torch.randn(2, 4, 64, 64, device=device, dtype=dtype)
    emb = torch.randn(2, 77, D, device=device, dtype=dtype)
    t = torch.tensor([500, 500], device=device)
    image = torch.rand(1, 3, 512, 512, device=device, dtype=dtype, requires_grad=True)

    def unet():
        with torch.no_grad():
            sd.unet(latents, t, encoder_hidden_states=emb)

    def vae():
        z = sd.vae.encode(2 * image - 1).latent_dist.sample()
        z.float().sum().backward()

    def both():
        unet()
        vae()

    reset_peak(device)
    u, v, b = timed(unet, device, repeats), timed(vae, device, repeats), timed(both, device, repeats)
    return u, v, b, peak_gib(device)


def nerf_time(config, device, repeats, shading):
    from sdskit import nerf as N
    model = N.NeRF(config.nerf).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    use_fp16 = device.type == "cuda"

    def fn():
        cam = N.sample_cameras(1, config.nerf, g, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_fp16):
            out = N.render(model, cam, config.height, config.width, shading=shading, generator=g)
            loss = out["image"].float().mean() + (out["orientation"] if "orientation" in out else 0)
        loss.backward()

    return timed(fn, device, repeats)


def profile_step(sd, device, config):
    """Print the operations that take most GPU and CPU time over a few steps."""
    from torch.profiler import ProfilerActivity, profile
    T.run(sd, "a hamburger", steps=2, config=config, device=device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        T.run(sd, "a hamburger", steps=5, config=config, device=device)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15,
                                    max_name_column_width=50), flush=True)


def final_cell_runs(folder, steps):
    """The final cell's path (run() with the export) in fresh processes: each mode uncapped,
    then capped just above its loop's peak."""
    for vram_o in (False, True):
        uncapped = _final_cell_process(folder, steps, vram_o, None)
        if uncapped is None:
            continue
        # what the loop held: its peak allocated memory, and what the allocator reserved for it
        # (with offloading, fragmentation keeps more reserved than allocated)
        cap = max(uncapped["loop"] + CAP_MARGIN_GIB, uncapped["reserved"] + 0.05)
        _final_cell_process(folder, steps, vram_o, cap)


CAP_MARGIN_GIB = 0.25  # the cap: the loop's peak allocated memory + this (or its peak reserved)


def _final_cell_process(folder, steps, vram_o, cap, path="default", cold=False):
    command = [sys.executable, __file__, "--final-cell-only", str(folder), "--steps", str(steps),
               "--path", path]
    command += ["--vram-o"] if vram_o else []
    command += ["--cap", str(cap)] if cap else []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, **({"TRITON_CACHE_DIR": cache} if cold else {}))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("FINAL")]
    if not lines:
        print(f"final cell ({'vram_O' if vram_o else path}, cap {cap}) failed: "
              f"{done.stderr.strip()[-800:]}", flush=True)
        return None
    for line in done.stdout.splitlines():  # what the final cell itself printed, and the figures
        if not line.startswith(("FINAL", "WALL")) and line.strip():
            print(f"    | {line}", flush=True)
    noise = [line for line in done.stderr.splitlines() if line.strip()]
    print(f"    stderr: {len(noise)} lines" + "".join(f"\n    stderr| {line}" for line in noise[:12]),
          flush=True)
    print(lines[-1], flush=True)
    loop, export, reserved = (float(x) for x in lines[-1].split("|")[1:4])
    walls = [line for line in done.stdout.splitlines() if line.startswith("WALL")]
    if walls:  # path|taken|steps|load s|ready s|loop s|export s|wall s|steady it/s|loss|recorded
        print(walls[-1], flush=True)
    return {"loop": loop, "export": export, "reserved": reserved,
            "wall": walls[-1].split("|")[1:] if walls else None}


def final_cell_only(folder, steps, vram_o, cap, path="default"):
    """run() with the export, as the final cell calls it (path "default": the kit's default, the
    fast path where it pays; "eager": fast=False), timed from loading the model to the last file
    written; prints the loop's and the export's peaks."""
    device = torch.device("cuda")
    total = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
    if cap:
        torch.cuda.set_per_process_memory_fraction(cap / total)
    start = time.perf_counter()
    sd = solution_class()("cuda", True, vram_o, hf_key=str(folder))
    sync(device)
    load_s = time.perf_counter() - start
    peaks = {}
    real_export = T.export

    def export(result, out_dir, device, loop_peak=None):  # the kit's export, peaks read around it
        peaks["loop"] = peak_gib(device)
        peaks["reserved"] = torch.cuda.max_memory_reserved() / 2 ** 30
        peaks["before"] = torch.cuda.memory_allocated() / 2 ** 30
        torch.cuda.reset_peak_memory_stats()
        peaks["samples"] = T.export_samples(device, result.config.nerf, loop_peak)
        begin = time.perf_counter()
        real_export(result, out_dir, device, loop_peak)
        peaks["export_s"] = time.perf_counter() - begin
        peaks["export"] = peak_gib(device)

    skip, marks = steps // 3, {}

    def mark(step, camera):  # the steady state: from a third of the way to the end
        if step in (skip, steps - 1):
            sync(device)
            marks[step] = time.perf_counter()

    T.export = export
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = T.TextTo3DConfig(preview_every=0, progress=False, cpu_steps=None, out_dir=out_dir)
        if path == "eager":
            cfg.fast = False
        elif path == "compiled":
            cfg.fast_compile = True
        torch.cuda.reset_peak_memory_stats()
        result = T.run(sd, "a hamburger", steps=steps, config=cfg, device=device, before_step=mark)
        wall = time.perf_counter() - start
        files = sorted(p.name for p in Path(out_dir).iterdir())
    fast = getattr(sd, F.ATTRIBUTE, None)
    taken = "fast" if fast is not None and fast.failed is None else "eager"
    ready = fast.ready_seconds if fast is not None else 0.0
    if taken == "fast" and fast.compiled:
        taken = "fast+compiled"
    steady = (steps - 1 - skip) / (marks[steps - 1] - marks[skip])
    tail = result.losses[-min(50, len(result.losses)):]
    print(f"WALL|{path}|{taken}|{steps}|{load_s:.2f}|{ready:.2f}|{result.seconds:.2f}|"
          f"{peaks['export_s']:.2f}|{wall:.2f}|{steady:.3f}|{sum(tail) / len(tail):.6g}"
          + ("|" + ",".join(f"{k} {v:.2f} s" for k, v in fast.seconds.items()) if fast else ""),
          flush=True)
    mode = "vram_O=True" if vram_o else f"{path} ({taken})"
    where = f"under a {cap:.2f} GiB cap" if cap else "no cap"
    print(f"FINAL|{peaks['loop']:.3f}|{peaks['export']:.3f}|{peaks['reserved']:.3f}| final cell, {mode}, {where}: {steps} "
          f"steps at {result.seconds / steps * 1e3:.0f} ms, completed in {wall:.0f} s; loop peak "
          f"{peaks['loop']:.2f} GiB (reserved {peaks['reserved']:.2f} GiB), export peak "
          f"{peaks['export']:.2f} GiB allocated "
          f"({peaks['before']:.2f} GiB before it; {peaks['samples']} samples per piece, "
          f"{(peaks['export'] - peaks['before']) * 2 ** 30 / peaks['samples']:.0f} B each); wrote {', '.join(files)}", flush=True)


def final_cell_walls(folder, steps_list, card):
    """The final cell end to end, eager and the default path, each in a fresh process (so that
    the default path pays for its recording), the default with an empty Triton cache (so that it
    pays for compiling the kit's group-norm kernels too, as on a machine's first run): one table."""
    rows = []
    for steps in steps_list:
        for path in ("eager", "default"):
            done = _final_cell_process(folder, steps, False, None, path, cold=path == "default")
            if done and done["wall"]:
                rows.append(done["wall"])
    print(f"\nFINAL CELL END TO END on {card} (SD 2.1-base architecture, random weights, fp16; "
          "fresh process each; wall = loading + recording + steps + export):", flush=True)
    print(f"{'steps':>6} {'path':>8} {'taken':>13} {'load s':>7} {'ready s':>8} {'loop s':>7} "
          f"{'export s':>9} {'wall s':>7} {'steady it/s':>12} {'mean loss, last 50':>19}  recorded", flush=True)
    by = {}
    for path, taken, steps, load, ready, loop, export, wall, steady, loss, *parts in rows:
        by[(int(steps), path)] = float(wall)
        print(f"{steps:>6} {path:>8} {taken:>13} {float(load):7.1f} {float(ready):8.2f} {float(loop):7.1f} "
              f"{float(export):9.1f} {float(wall):7.1f} {float(steady):12.2f} {loss:>19}  "
              f"{parts[0] if parts else ''}", flush=True)
    for (steps, path), wall in by.items():
        if path != "eager" and (steps, "eager") in by:
            print(f"WALLRATIO {steps} steps on {card}: eager {by[steps, 'eager']:.1f} s, {path} "
                  f"{wall:.1f} s: {by[steps, 'eager'] / wall:.2f}x", flush=True)


def check_fast_matches_eager(sd, device):
    """Loss and gradient on pred_rgb of one train_step, eager against the fast path, for the same
    t (the same seed) and noise. Call before and after fast.enable; returns (loss, grad)."""
    g = torch.Generator(device=device).manual_seed(0)
    pred = torch.rand(1, 3, 64, 64, device=device, generator=g, requires_grad=True)
    noise = torch.randn(1, 4, 64, 64, device=device, generator=g)
    emb = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds(["a hamburger"])])
    torch.manual_seed(1)  # t, and the VAE's posterior sample
    loss = sd.train_step(emb, pred, guidance_scale=100, noise=noise)
    loss.backward()
    return loss.detach().float().clone(), pred.grad.detach().float().clone()


def rel_err(a, b):
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def warm_up_fast(sd, device, cfg):
    """One short run per shading on the fast path (each shading's graph is recorded at its first
    call), so that the timed run measures the steady state."""
    for shading in ("albedo", "lambertian", "textureless"):
        warm = replace(cfg, fast=True, albedo_steps_ratio=0.0, shading_probs={shading: 1.0})
        T.run(sd, "a hamburger", steps=3, config=warm, device=device)


def fast_step(sd, device, steps, cfg, eager_step, floor, compiled=True):
    """The fast path: agreement with eager, recording time, it/s, ratio to the floor, peak."""
    loss0, grad0 = check_fast_matches_eager(sd, device)
    loss_a, grad_a = check_fast_matches_eager(sd, device)  # eager again: what atomics move
    # what fp16 rounding alone moves: the same eager step with other kernels (channels_last)
    sd.unet.to(memory_format=torch.channels_last)
    sd.vae.encoder.to(memory_format=torch.channels_last)
    loss_b, grad_b = check_fast_matches_eager(sd, device)
    sd.unet.to(memory_format=torch.contiguous_format)
    sd.vae.encoder.to(memory_format=torch.contiguous_format)
    start = time.perf_counter()
    fast = F.enable(sd)
    loss1, grad1 = check_fast_matches_eager(sd, device)  # records the U-Net's and the VAE's graphs
    sd_ready = fast.ready_seconds
    warm_up_fast(sd, device, cfg)
    warm_s = time.perf_counter() - start
    loss2, grad2 = check_fast_matches_eager(sd, device)  # replayed
    print(f"AGREE fast vs eager, one train_step on {device_name(device)} (same t and noise, guidance "
          f"100): loss {float(loss0):.6g} vs {float(loss2):.6g} (rel. err. {rel_err(loss2, loss0):.2e}); "
          f"gradient on pred_rgb rel. err. {rel_err(grad2, grad0):.2e}, max abs "
          f"{(grad2 - grad0).abs().max().item():.2e} (at recording: loss {rel_err(loss1, loss0):.2e}, "
          f"gradient {rel_err(grad1, grad0):.2e}). Eager twice: loss {rel_err(loss_a, loss0):.2e}, "
          f"gradient {rel_err(grad_a, grad0):.2e}; fp16 rounding (eager, channels_last kernels): loss "
          f"{rel_err(loss_b, loss0):.2e}, gradient {rel_err(grad_b, grad0):.2e}", flush=True)
    s, p = step_time(sd, device, steps, replace(cfg, fast=True), warm=False)
    print(f"STEP fast (the default on this GPU): {s * 1e3:.1f} ms = {1 / s:.2f} it/s; step/floor = "
          f"{s / floor:.2f}; peak {p:.2f} GiB; recording: U-Net + VAE {sd_ready:.2f} s, then "
          f"{', '.join(f'{k} {v:.2f} s' for k, v in fast.seconds.items())} in all (warm-up runs "
          f"{warm_s:.0f} s); eager {eager_step * 1e3:.1f} ms = {1 / eager_step:.2f} it/s", flush=True)
    if compiled:  # the compiled tier, in this process: torch's caches cold unless run before
        before = dict(fast.seconds)
        start = time.perf_counter()
        F.enable(sd, compile=True)
        loss3, grad3 = check_fast_matches_eager(sd, device)  # compiles and records the U-Net
        compile_s = time.perf_counter() - start
        warm_up_fast(sd, device, cfg)
        loss4, grad4 = check_fast_matches_eager(sd, device)
        print(f"AGREE fast_compile vs eager on {device_name(device)}: loss rel. err. "
              f"{rel_err(loss4, loss0):.2e}, gradient on pred_rgb rel. err. {rel_err(grad4, grad0):.2e}",
              flush=True)
        c, p = step_time(sd, device, steps, replace(cfg, fast=True, fast_compile=True), warm=False)
        print(f"STEP fast_compile: {c * 1e3:.1f} ms = {1 / c:.2f} it/s; peak {p:.2f} GiB; compiling and "
              f"recording the U-Net {fast.seconds['U-Net'] - before['U-Net']:.1f} s ({compile_s:.1f} s "
              f"with the first step); graphs of the kit's kernels {s * 1e3:.1f} ms", flush=True)
    return s


DEFAULT_CHOICES = dict(UNET_CHANNELS_LAST=F.UNET_CHANNELS_LAST, VAE_ATTENTION=F.VAE_ATTENTION,
                       VAE_CHANNELS_LAST=F.VAE_CHANNELS_LAST, KIT_GROUP_NORM=F.KIT_GROUP_NORM)


def explore(sd, device, cfg, repeats, rerun=False, only=None):
    """Each heavy part, eager and as a CUDA graph (of the eager kernels, or of torch.compile's,
    regional or whole, default mode): seconds from the first call until it is ready (recording
    and compiling), median ms per call, and the largest difference from eager. rerun: only the
    compiled ones (a fresh process, torch's compile caches warm from the first)."""
    from sdskit import nerf as N
    dtype = sd.precision_t
    g = torch.Generator(device=device).manual_seed(0)
    D = sd.text_encoder.config.hidden_size
    latents = torch.randn(2, 4, 64, 64, device=device, dtype=dtype, generator=g)
    emb = torch.randn(2, 77, D, device=device, dtype=dtype, generator=g)
    t = torch.tensor([500, 500], device=device)
    image = torch.rand(1, 3, 512, 512, device=device, dtype=dtype, generator=g).requires_grad_()
    weight = torch.randn(1, 8, 64, 64, device=device, generator=g)
    model = N.NeRF(cfg.nerf).to(device)
    cam = N.sample_cameras(1, cfg.nerf, torch.Generator().manual_seed(0)).to(device)
    with torch.autocast("cuda", dtype=torch.float16):
        origins, dirs = N.get_rays(cam, cfg.height, cfg.width)
    u = torch.rand(1, cfg.height * cfg.width, cfg.nerf.num_samples, device=device, generator=g)
    light = cam.position + 0.1

    def unet():
        with torch.no_grad():
            return sd.unet(latents, t, encoder_hidden_states=emb).sample.float()

    def vae():
        image.grad = None
        h = sd.vae.encoder(2 * image - 1)
        (h.float() * weight).sum().backward()
        return torch.cat([h.detach().float().flatten(), image.grad.float().flatten()])

    def nerf(shading, renderer):
        def call():
            model.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16):
                out = (renderer or N.render_rays)(model, origins, dirs, u, shading,
                                                  None if shading == "albedo" else light)
                loss = out["image"].float().mean() + out.get("orientation", 0)
            loss.backward()
            return torch.cat([out["image"].detach().float().flatten(),
                              model.encoding.table.grad.flatten()])
        return call

    def regional(module, names):
        compiled = [m for m in module.modules() if type(m).__name__ in names]
        for m in compiled:
            m.compile(dynamic=False)
        return compiled

    def undo(modules):
        for m in modules:
            m._compiled_call_impl = None

    def variant(part, label, call, reference, prepare=lambda: None, cleanup=lambda state: None):
        torch._dynamo.reset()
        state = None
        try:
            state = prepare()
            sync(device)
            start = time.perf_counter()
            call()
            sync(device)
            ready = time.perf_counter() - start
            ms = timed(call, device, repeats) * 1e3
            out = call()
            fine = reference is None or torch.isfinite(out).all()
            diff = "" if reference is None else (
                f"max diff {(out - reference).abs().max().item():.1e}, rel. {rel_err(out, reference):.1e}"
                + ("" if fine else " NOT FINITE"))
            print(f"EXPLORE | {part:<28} | {label:<44} | ready {ready:6.1f} s | {ms:7.2f} ms | {diff}",
                  flush=True)
        except Exception as error:  # noqa: BLE001 - report and go on
            print(f"EXPLORE | {part:<28} | {label:<44} | failed: {type(error).__name__}: "
                  f"{str(error).strip()[:300]}", flush=True)
        finally:
            cleanup(state)
            F.disable(sd)
            for name, value in DEFAULT_CHOICES.items():
                setattr(F, name, value)
            torch._dynamo.reset()

    def graphed(part_index, forward=None, before=None, **choices):
        def prepare():
            extra = before() if before else None
            for name, value in dict(DEFAULT_CHOICES, **choices).items():
                setattr(F, name, value)
            fast = F.enable(sd)
            if forward is not None:
                fast.parts[part_index].forward_fn = forward(fast.parts[part_index])
            return extra
        return prepare

    def layout(module, fmt):
        return lambda: module.to(memory_format=fmt) and None

    cl, contiguous = torch.channels_last, torch.contiguous_format
    restore_unet = lambda state: (undo(state or []), sd.unet.to(memory_format=contiguous))  # noqa: E731
    restore_vae = lambda state: (undo(state or []), sd.vae.encoder.to(memory_format=contiguous))  # noqa: E731
    whole = lambda part: torch.compile(type(part.module).forward, dynamic=False)  # noqa: E731
    want = lambda name: (only is None or name in only) and (not rerun or "compile" in name)  # noqa: E731

    ref_u, ref_v = unet(), vae()
    U = "U-Net fwd (batch 2, 64x64)"
    torch_norm = dict(KIT_GROUP_NORM=())  # torch's group norm in the recorded kernels
    plain = dict(torch_norm, UNET_CHANNELS_LAST=False)
    rows = [
        (U, "eager", {}),
        (U, "eager, channels_last", dict(prepare=layout(sd.unet, cl))),
        (U, "CUDA graph of eager", dict(prepare=graphed(0, **plain))),
        (U, "CUDA graph of eager, channels_last", dict(prepare=graphed(0, **torch_norm))),
        (U, "CUDA graph, channels_last, kit group norm", dict(prepare=graphed(0))),
        (U, "regional compile + CUDA graph", dict(prepare=graphed(0, before=lambda: regional(
            sd.unet, ("BasicTransformerBlock",)), **plain))),
        (U, "whole compile + CUDA graph", dict(prepare=graphed(0, whole, **plain))),
    ]
    for part, label, kw in rows:
        if want(label):
            variant(part, label, unet, ref_u, **kw, cleanup=restore_unet)
    V = "VAE enc fwd+bwd (512x512)"
    # torch's choice of attention kernel, torch's group norm, channels-first weights
    fused = dict(VAE_ATTENTION="fused", VAE_CHANNELS_LAST=False, KIT_GROUP_NORM=())
    math, products = dict(fused, VAE_ATTENTION="math"), dict(fused, VAE_ATTENTION="products")
    kit = dict(VAE_CHANNELS_LAST=False)  # the kit's group norm, channels first
    rows = [
        (V, "eager", {}),
        (V, "CUDA graph of eager", dict(prepare=graphed(1, **fused))),
        (V, "CUDA graph of eager, math attention", dict(prepare=graphed(1, **math))),
        (V, "CUDA graph of eager, attention as products", dict(prepare=graphed(1, **products))),
        (V, "CUDA graph of eager, channels_last", dict(prepare=graphed(
            1, **dict(products, VAE_CHANNELS_LAST=True)))),
        (V, "CUDA graph, kit group norm", dict(prepare=graphed(1, **kit))),
        (V, "CUDA graph, kit group norm, math attention", dict(prepare=graphed(
            1, **dict(kit, VAE_ATTENTION="math")))),
        (V, "CUDA graph, channels_last, kit group norm", dict(prepare=graphed(1))),
        (V, "regional compile (resnets) + CUDA graph", dict(prepare=graphed(1, before=lambda: regional(
            sd.vae.encoder, ("ResnetBlock2D",)), **fused))),
        (V, "whole compile + CUDA graph", dict(prepare=graphed(1, whole, **fused))),
        (V, "whole compile + CUDA graph, attention as products", dict(prepare=graphed(
            1, whole, **products))),
    ]
    for part, label, kw in rows:
        if want(label):
            variant(part, label, vae, ref_v, **kw, cleanup=lambda state: restore_vae(state))
    for shading in ("albedo", "lambertian"):
        R = f"NeRF render+bwd ({shading})"
        ref_n = nerf(shading, None)()
        renderers = {}

        def renderer(compiled):
            def prepare():
                renderers["r"] = F.enable(sd).renderer()
                if compiled:
                    renderers["r"].render_fn = torch.compile(N.render_rays, dynamic=False)
            return prepare
        # (compiled, it would save a millisecond or two a step for tens of seconds of compiling)
        rows = [("eager", None), ("CUDA graph of eager", False)]
        for label, compiled in rows:
            if want(label):
                call = nerf(shading, None) if compiled is None else (
                    lambda: nerf(shading, renderers["r"])())
                variant(R, label, call, ref_n, **({} if compiled is None else dict(prepare=renderer(compiled))))
    if not rerun and device.type == "cuda":  # where the eager VAE's time goes, then the kit's
        from torch.profiler import ProfilerActivity, profile
        from torch.nn.attention import SDPBackend, sdpa_kernel
        for label in ("torch's kernels", "the fast path's choices (channels_last, kit group norm, "
                                         f"attention: {F.VAE_ATTENTION})"):
            kit = label != "torch's kernels"
            part = F.GraphedEncoder(None, sd.vae.encoder)
            if kit:
                sd.vae.encoder.to(memory_format=cl)
            try:
                with sdpa_kernel([SDPBackend.MATH]) if kit and F.VAE_ATTENTION == "math" else \
                        contextlib.nullcontext():
                    def profiled():
                        vae()
                        with profile(activities=[ProfilerActivity.CUDA]) as prof:
                            vae()
                            sync(device)
                        return prof
                    prof = part.recording(profiled) if kit else profiled()
            finally:
                sd.vae.encoder.to(memory_format=contiguous)
            print(f"PROFILE eager VAE encoder fwd+bwd, {label}:", flush=True)
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14,
                                            max_name_column_width=60), flush=True)


def explore_rerun(folder, repeats, only=None):
    """explore's compiled variants again in a fresh process: torch's compile caches are warm."""
    if only is not None and not any("compile" in label for label in only):
        return
    done = subprocess.run([sys.executable, __file__, "--explore-rerun", str(folder),
                           "--repeats", str(repeats)] + (["--only", "|".join(only)] if only else []),
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("EXPLORE"):
            print(line.replace("EXPLORE |", "EXPLORE (caches warm) |"), flush=True)
    if done.returncode:
        print(f"explore rerun failed: {done.stderr.strip()[-800:]}", flush=True)


def benchmark(name, sd, device, steps, repeats, model_folder=None, fast=True, small=False,
              profile=False, rounds=3, explore_parts=False, final_steps=40, wall_steps=(),
              memory_rows=True, only=None, compiled=True):
    cfg = T.TextTo3DConfig(export=False, preview_every=0, progress=False, cpu_steps=None, fast=False)
    if small:  # CPU smoke test: a small NeRF and 32x32 renders, so it ends in a minute or so
        from sdskit import nerf as N
        cfg.nerf = N.NeRFConfig(grid_levels=4, grid_max_res=64, num_samples=16, hidden=32)
        cfg.height = cfg.width = 32
    card = device_name(device)
    print(f"\n=== {name} on {card}, {sd.precision_t} ===", flush=True)
    if explore_parts:
        explore(sd, device, cfg, repeats, only=only)
        if model_folder:
            explore_rerun(model_folder, repeats, only)
    for shading in ("albedo", "lambertian"):
        n = nerf_time(cfg, device, repeats, shading)
        print(f"nerf render+backward {cfg.height}x{cfg.width}x{cfg.nerf.num_samples} ({shading}): {n * 1e3:.1f} ms", flush=True)
    # The floor and the step, measured in turns, so that a slow spell of the machine lands on both.
    floors, steps_s, ratios = [], [], []
    for turn in range(rounds):
        u, v, floor, floor_peak = floor_time(sd, device, repeats)
        step, peak = step_time(sd, device, steps, cfg)
        floors.append(floor)
        steps_s.append(step)
        ratios.append(step / floor)
        print(f"turn {turn + 1}: floor {floor * 1e3:.1f} ms (U-Net CFG fwd {u * 1e3:.1f} ms, VAE enc "
              f"fwd+bwd@512 {v * 1e3:.1f} ms, alone), step {step * 1e3:.1f} ms, ratio {step / floor:.2f}",
              flush=True)
    floor, step = statistics.median(floors), statistics.median(steps_s)
    print(f"FLOOR: U-Net CFG fwd + VAE enc fwd+bwd@512, together, eager: {floor * 1e3:.1f} ms = "
          f"{1 / floor:.2f} it/s (median of {rounds} turns; peak {floor_peak:.2f} GiB)", flush=True)
    print(f"STEP eager (fast=False): {step * 1e3:.1f} ms = {1 / step:.2f} it/s; step/floor = "
          f"{statistics.median(ratios):.2f} (median of turns; {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"peak {peak:.2f} GiB", flush=True)
    if profile:
        profile_step(sd, device, cfg)
    fast_s = None
    if fast:
        try:
            fast_s = fast_step(sd, device, steps, cfg, step, floor, compiled)
        except Exception as error:  # noqa: BLE001 - report and go on
            print(f"fast path failed: {type(error).__name__}: {str(error)[:600]}", flush=True)
        F.disable(sd)
    if model_folder and wall_steps:
        final_cell_walls(model_folder, wall_steps, card)
    if model_folder and memory_rows:
        final_cell_runs(model_folder, final_steps)
    print(f"\nSUMMARY {name}, {card}: floor {1 / floor:.2f} it/s ({floor * 1e3:.1f} ms); "
          f"eager loop {1 / step:.2f} it/s ({step / floor:.2f} x floor time, peak {peak:.2f} GiB)"
          + (f"; fast loop {1 / fast_s:.2f} it/s ({fast_s / floor:.2f} x floor time)" if fast_s else ""),
          flush=True)
    return step, floor


def device_name(device):
    return torch.cuda.get_device_name() if device.type == "cuda" else "CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the kit's tiny model (CPU smoke test)")
    parser.add_argument("--models", default="SD 2.1-base,SD 1.5")
    parser.add_argument("--steps", type=int, default=150,
                        help="training steps per timed run (the last two thirds are timed)")
    parser.add_argument("--final-steps", type=int, default=40,
                        help="training steps of the final-cell runs (memory; vram_O is slow)")
    parser.add_argument("--wall-steps", default="400,2000",
                        help="steps of the end-to-end final-cell runs, eager and default ('' to skip)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of floor and eager step")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-fast", action="store_true", help="skip the fast path")
    parser.add_argument("--no-compiled", action="store_true", help="skip fast_compile's rows")
    parser.add_argument("--no-final-cell", action="store_true", help="skip the final-cell memory runs")
    parser.add_argument("--final-cell", action="store_true", help="the final-cell memory runs alone")
    parser.add_argument("--explore", default="", help="'graphs': each part eager, graphed, compiled")
    parser.add_argument("--only", help="explore only these variants ('|'-separated labels)")
    parser.add_argument("--profile", action="store_true", help="print where a step's time goes")
    parser.add_argument("--final-cell-only", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--explore-rerun", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--vram-o", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.final_cell_only:
        return final_cell_only(args.final_cell_only, args.steps, args.vram_o, args.cap, args.path)
    SD = solution_class()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    only = set(args.only.split("|")) if args.only else None
    if args.explore_rerun:
        sd = SD("cuda", True, False, hf_key=args.explore_rerun)
        cfg = T.TextTo3DConfig(export=False, preview_every=0, progress=False, cpu_steps=None, fast=False)
        return explore(sd, device, cfg, args.repeats, rerun=True, only=only)
    print(f"torch {torch.__version__}, device {device_name(device)}")

    if args.tiny or not cuda:
        sd = SD(str(device), cuda, False, hf_key=str(TINY_SD))
        cfg_steps, repeats = (min(args.steps, 3), 2) if not cuda else (args.steps, args.repeats)
        benchmark("tiny (random) SD", sd, device, cfg_steps, repeats, fast=False, small=not cuda,
                  rounds=min(args.rounds, 3))
        if not cuda:
            print("\nCPU smoke run only: the figures above say nothing about GPU speed.")
        return

    wall_steps = [int(n) for n in args.wall_steps.split(",") if n.strip()]
    for name in [m.strip() for m in args.models.split(",")]:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            write_random_model(MODELS[name], folder, device)
            sd = SD("cuda", True, False, hf_key=folder)
            print(f"\n{name}: built random weights and loaded in {time.perf_counter() - start:.0f} s; "
                  f"U-Net {sum(p.numel() for p in sd.unet.parameters()) / 1e6:.0f} M params")
            first = name == "SD 2.1-base"
            if args.final_cell:
                final_cell_runs(folder, args.final_steps)
                continue
            benchmark(name, sd, device, args.steps, args.repeats, model_folder=folder if first else None,
                      fast=first and not args.no_fast, profile=args.profile and first,
                      rounds=args.rounds, explore_parts=bool(args.explore) and first,
                      final_steps=args.final_steps, wall_steps=wall_steps if first else (),
                      memory_rows=not args.no_final_cell, only=only, compiled=not args.no_compiled)
            del sd
            torch._dynamo.reset()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
