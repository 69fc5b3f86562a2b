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
  fast        the step with the opt-in fast path (TextTo3DConfig(fast=True): U-Net and VAE encoder
              compiled as CUDA graphs, NeRF render compiled): it/s, ratio to the floor, peak
              memory, compile time, and the loss and the gradient on pred_rgb against eager
              (same t and noise)
  final cell  in a fresh process per mode (default, and vram_O=True: VAE slicing, VAE gradient
              checkpointing, sequential CPU offload): the final cell's path, run() with the
              export, printing the loop's peak and the export's peak allocated memory; then the
              same again under a memory cap just above the loop's peak
              (torch.cuda.set_per_process_memory_fraction), to show that it completes
  --explore vae,nerf  times the step's parts eager and under each torch.compile mode (VAE encoder
              forward+backward at 512, NeRF render+backward), to choose the fast path's modes
  --profile   where a step's time goes (torch.profiler's top operations, CPU and GPU)
"""

import argparse
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


def _final_cell_process(folder, steps, vram_o, cap):
    command = [sys.executable, __file__, "--final-cell-only", str(folder), "--steps", str(steps)]
    command += ["--vram-o"] if vram_o else []
    command += ["--cap", str(cap)] if cap else []
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("FINAL")]
    if not lines:
        print(f"final cell ({'vram_O' if vram_o else 'default'}, cap {cap}) failed: "
              f"{done.stderr.strip()[-800:]}", flush=True)
        return None
    print(lines[-1], flush=True)
    loop, export, reserved = (float(x) for x in lines[-1].split("|")[1:4])
    return {"loop": loop, "export": export, "reserved": reserved}


def final_cell_only(folder, steps, vram_o, cap):
    """run() with the export, as the final cell calls it; prints the loop's and the export's peaks."""
    device = torch.device("cuda")
    total = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
    if cap:
        torch.cuda.set_per_process_memory_fraction(cap / total)
    sd = solution_class()("cuda", True, vram_o, hf_key=str(folder))
    peaks = {}
    real_export = T.export

    def export(result, out_dir, device, loop_peak=None):  # the kit's export, peaks read around it
        peaks["loop"] = peak_gib(device)
        peaks["reserved"] = torch.cuda.max_memory_reserved() / 2 ** 30
        peaks["before"] = torch.cuda.memory_allocated() / 2 ** 30
        torch.cuda.reset_peak_memory_stats()
        peaks["samples"] = T.export_samples(device, result.config.nerf, loop_peak)
        real_export(result, out_dir, device, loop_peak)
        peaks["export"] = peak_gib(device)

    T.export = export
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = T.TextTo3DConfig(preview_every=0, progress=False, cpu_steps=None, out_dir=out_dir)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = T.run(sd, "a hamburger", steps=steps, config=cfg, device=device)
        seconds = time.perf_counter() - start
        files = sorted(p.name for p in Path(out_dir).iterdir())
    mode = "vram_O=True" if vram_o else "default"
    where = f"under a {cap:.2f} GiB cap" if cap else "no cap"
    print(f"FINAL|{peaks['loop']:.3f}|{peaks['export']:.3f}|{peaks['reserved']:.3f}| final cell, {mode}, {where}: {steps} "
          f"steps at {result.seconds / steps * 1e3:.0f} ms, completed in {seconds:.0f} s; loop peak "
          f"{peaks['loop']:.2f} GiB (reserved {peaks['reserved']:.2f} GiB), export peak "
          f"{peaks['export']:.2f} GiB allocated "
          f"({peaks['before']:.2f} GiB before it; {peaks['samples']} samples per piece, "
          f"{(peaks['export'] - peaks['before']) * 2 ** 30 / peaks['samples']:.0f} B each); wrote {', '.join(files)}", flush=True)


def check_fast_matches_eager(sd, device):
    """Loss and gradient on pred_rgb of one train_step, eager against the fast path, for the same
    t (the same seed) and noise. Call before and after T.fast_path; returns (loss, grad)."""
    g = torch.Generator(device=device).manual_seed(0)
    pred = torch.rand(1, 3, 64, 64, device=device, generator=g, requires_grad=True)
    noise = torch.randn(1, 4, 64, 64, device=device, generator=g)
    emb = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds(["a hamburger"])])
    torch.manual_seed(1)  # t
    if hasattr(sd.unet, "_orig_mod"):
        torch.compiler.cudagraph_mark_step_begin()
    loss = sd.train_step(emb, pred, guidance_scale=100, noise=noise)
    loss.backward()
    return loss.detach().float().clone(), pred.grad.detach().float().clone()


def rel_err(a, b):
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def warm_up_fast(sd, device, cfg):
    """Compile every variant the loop meets (each shading), so no compilation is timed later."""
    for shading in ("albedo", "lambertian", "textureless"):
        warm = replace(cfg, fast=True, albedo_steps_ratio=0.0, shading_probs={shading: 1.0})
        T.run(sd, "a hamburger", steps=3, config=warm, device=device)


def fast_step(sd, device, steps, cfg, eager_step, floor):
    """The fast path: equivalence with eager, compile time, it/s, ratio to the floor, peak."""
    loss0, grad0 = check_fast_matches_eager(sd, device)
    # what fp16 rounding alone moves: the same eager step with other kernels (channels_last)
    sd.unet.to(memory_format=torch.channels_last)
    sd.vae.encoder.to(memory_format=torch.channels_last)
    loss_b, grad_b = check_fast_matches_eager(sd, device)
    sd.vae.encoder.to(memory_format=torch.contiguous_format)
    start = time.perf_counter()
    T.fast_path(sd)
    warm_up_fast(sd, device, cfg)
    compile_s = time.perf_counter() - start
    loss1, grad1 = check_fast_matches_eager(sd, device)
    print(f"fast vs eager, one train_step (same t and noise, guidance 100): loss {float(loss0):.6g} "
          f"vs {float(loss1):.6g} (rel. err. {rel_err(loss1, loss0):.2e}); gradient on pred_rgb "
          f"rel. err. {rel_err(grad1, grad0):.2e}. fp16 rounding alone (eager, channels_last "
          f"kernels): loss {rel_err(loss_b, loss0):.2e}, gradient {rel_err(grad_b, grad0):.2e}",
          flush=True)
    s, p = step_time(sd, device, steps, replace(cfg, fast=True), warm=False)
    print(f"STEP fast (fast=True): {s * 1e3:.1f} ms = {1 / s:.2f} it/s; step/floor = {s / floor:.2f}; "
          f"peak {p:.2f} GiB; compile + warm-up {compile_s:.0f} s; eager {eager_step * 1e3:.1f} ms = "
          f"{1 / eager_step:.2f} it/s", flush=True)
    return s


def explore(sd, device, cfg, repeats, parts=("vae", "nerf")):
    """The step's parts, eager and under each torch.compile mode, to choose the fast path's modes."""
    from sdskit import nerf as N
    image = torch.rand(1, 3, 512, 512, device=device, dtype=sd.precision_t, requires_grad=True)

    def vae():
        torch.compiler.cudagraph_mark_step_begin()
        z = sd.vae.encode(2 * image - 1).latent_dist.sample()
        z.float().sum().backward()

    encoder = sd.vae.encoder
    variants = [(layout, benchmark_flag, mode) for layout in ("contiguous", "channels_last")
                for benchmark_flag in (False, True) for mode in (None, "reduce-overhead")]
    for layout, benchmark_flag, mode in variants if "vae" in parts else []:
        torch._dynamo.reset()
        torch.backends.cudnn.benchmark = benchmark_flag
        encoder.to(memory_format=getattr(torch, "channels_last" if layout == "channels_last"
                                         else "contiguous_format"))
        sd.vae.encoder = encoder if mode is None else torch.compile(encoder, mode=mode, dynamic=False)
        start = time.perf_counter()
        for _ in range(3):
            vae()
        sync(device)
        print(f"explore: VAE enc fwd+bwd@512 {layout}, cudnn.benchmark {benchmark_flag}, "
              f"{mode or 'eager'}: {timed(vae, device, repeats) * 1e3:.1f} ms "
              f"(first three calls {time.perf_counter() - start:.0f} s)", flush=True)
    sd.vae.encoder = encoder.to(memory_format=torch.contiguous_format)
    torch.backends.cudnn.benchmark = False
    torch._dynamo.reset()

    model = N.NeRF(cfg.nerf).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    for shading in ("albedo", "lambertian") if "nerf" in parts else []:
        for mode in (None, "default", "reduce-overhead"):
            renderer = None if mode is None else torch.compile(N.render_rays, mode=mode, dynamic=False)

            def fn():
                cam = N.sample_cameras(1, cfg.nerf, g, device)
                torch.compiler.cudagraph_mark_step_begin()
                with torch.autocast(device.type, dtype=torch.float16):
                    out = N.render(model, cam, cfg.height, cfg.width, shading=shading, generator=g,
                                   ray_renderer=renderer)
                    loss = out["image"].float().mean() + out.get("orientation", 0)
                loss.backward()
            start = time.perf_counter()
            fn()
            fn()
            sync(device)
            compile_s = time.perf_counter() - start
            print(f"explore: nerf render+backward ({shading}) {mode or 'eager'}: "
                  f"{timed(fn, device, repeats) * 1e3:.2f} ms (first two calls {compile_s:.0f} s)",
                  flush=True)
            torch._dynamo.reset()


def benchmark(name, sd, device, steps, repeats, model_folder=None, fast=True, small=False,
              profile=False, rounds=3, explore_parts=False, final_steps=40):
    cfg = T.TextTo3DConfig(export=False, preview_every=0, progress=False, cpu_steps=None)
    if small:  # CPU smoke test: a small NeRF and 32x32 renders, so it ends in a minute or so
        from sdskit import nerf as N
        cfg.nerf = N.NeRFConfig(grid_levels=4, grid_max_res=64, num_samples=16, hidden=32)
        cfg.height = cfg.width = 32
    print(f"\n=== {name} on {device_name(device)}, {sd.precision_t} ===", flush=True)
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
    print(f"STEP eager (kit default): {step * 1e3:.1f} ms = {1 / step:.2f} it/s; step/floor = "
          f"{statistics.median(ratios):.2f} (median of turns; {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"peak {peak:.2f} GiB", flush=True)
    if profile:
        profile_step(sd, device, cfg)
    if model_folder:
        final_cell_runs(model_folder, final_steps)
    if explore_parts:
        explore(sd, device, cfg, repeats, explore_parts)
    fast_s = None
    if fast:
        try:
            fast_s = fast_step(sd, device, steps, cfg, step, floor)
        except Exception as error:  # noqa: BLE001 - report and go on
            print(f"fast path failed: {type(error).__name__}: {str(error)[:600]}", flush=True)
    print(f"\nSUMMARY {name}, {device_name(device)}: floor {1 / floor:.2f} it/s ({floor * 1e3:.1f} ms); "
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
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-fast", action="store_true", help="skip the fast path")
    parser.add_argument("--no-final-cell", action="store_true", help="skip the final-cell memory runs")
    parser.add_argument("--final-cell", action="store_true", help="the final-cell memory runs alone")
    parser.add_argument("--explore", default="", help="time these parts (vae,nerf) under each compile mode")
    parser.add_argument("--profile", action="store_true", help="print where a step's time goes")
    parser.add_argument("--final-cell-only", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--vram-o", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.final_cell_only:
        return final_cell_only(args.final_cell_only, args.steps, args.vram_o, args.cap)
    SD = solution_class()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"torch {torch.__version__}, device {device_name(device)}")

    if args.tiny or not cuda:
        sd = SD(str(device), cuda, False, hf_key=str(TINY_SD))
        cfg_steps, repeats = (min(args.steps, 3), 2) if not cuda else (args.steps, args.repeats)
        benchmark("tiny (random) SD", sd, device, cfg_steps, repeats, fast=False, small=not cuda)
        if not cuda:
            print("\nCPU smoke run only: the figures above say nothing about GPU speed.")
        return

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
            benchmark(name, sd, device, args.steps, args.repeats,
                      model_folder=folder if first and not args.no_final_cell else None,
                      fast=first and not args.no_fast, profile=args.profile and first,
                      explore_parts=[p for p in args.explore.split(",") if p] if first else [], final_steps=args.final_steps)
            del sd
            torch._dynamo.reset()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
