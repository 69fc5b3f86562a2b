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
  vram_O      the step with the class's small-GPU mode, StableDiffusion(vram_O=True): VAE slicing,
              VAE gradient checkpointing and sequential CPU offload: time and peak memory (measured
              in a fresh process)
  compiled    the step with the opt-in faster U-Net (channels_last + torch.compile), and the
              U-Net's CFG forward compiled, against the eager floor
  --profile   where a step's time goes (torch.profiler's top operations, CPU and GPU)
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


def step_time(sd, device, steps, config):
    """Mean seconds per step of the kit's loop (a short warm-up run first)."""
    T.run(sd, "a hamburger", steps=3, config=config, device=device)
    reset_peak(device)
    result = T.run(sd, "a hamburger", steps=steps, config=config, device=device)
    return result.seconds / result.steps, peak_gib(device)


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


def vram_o_step(folder, steps):
    """The step with StableDiffusion(..., vram_O=True), in a fresh process, so that its peak
    memory counts its own model only (offload hooks keep references that outlive an instance)."""
    command = [sys.executable, __file__, "--vram-o-only", str(folder), "--steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("STEP")]
    print(lines[-1] if lines else f"vram_O step failed: {done.stderr.strip()[-600:]}", flush=True)


def vram_o_only(folder, steps):
    sd = solution_class()("cuda", True, True, hf_key=str(folder))
    cfg = T.TextTo3DConfig(export=False, preview_every=0, progress=False, cpu_steps=None)
    s, p = step_time(sd, torch.device("cuda"), steps, cfg)
    print(f"STEP with vram_O=True (VAE slicing + VAE gradient checkpointing + sequential CPU offload): "
          f"{s * 1e3:.1f} ms = {1 / s:.2f} it/s; peak {p:.2f} GiB", flush=True)


def benchmark(name, sd, device, steps, repeats, vram_folder=None, do_compile=True, small=False,
              profile=False, compile_mode="reduce-overhead", rounds=3):
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
    print(f"floor: U-Net CFG fwd + VAE enc fwd+bwd@512, together: {floor * 1e3:.1f} ms (median of "
          f"{rounds} turns; peak {floor_peak:.2f} GiB)", flush=True)
    print(f"STEP (kit default, eager): {step * 1e3:.1f} ms = {1 / step:.2f} it/s; step/floor = "
          f"{statistics.median(ratios):.2f} (median of turns; {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"peak {peak:.2f} GiB", flush=True)
    if profile:
        profile_step(sd, device, cfg)
    if vram_folder:
        vram_o_step(vram_folder, steps)
    if do_compile:
        try:
            start = time.perf_counter()
            T.faster_unet(sd, compile_mode)
            T.run(sd, "a hamburger", steps=3, config=cfg, device=device)  # compiles
            compile_s = time.perf_counter() - start
            s3, p3 = step_time(sd, device, steps, cfg)
            u3, _, floor3, _ = floor_time(sd, device, repeats)
            print(f"STEP with channels_last + torch.compile U-Net: {s3 * 1e3:.1f} ms = {1 / s3:.2f} it/s "
                  f"(eager {step * 1e3:.1f} ms); U-Net CFG {u3 * 1e3:.1f} ms; floor {floor3 * 1e3:.1f} ms; "
                  f"peak {p3:.2f} GiB; compile+warm-up {compile_s:.0f} s", flush=True)
        except Exception as error:  # noqa: BLE001 - report and go on
            print(f"compiled path failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
    return step, floor


def device_name(device):
    return torch.cuda.get_device_name() if device.type == "cuda" else "CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the kit's tiny model (CPU smoke test)")
    parser.add_argument("--models", default="SD 2.1-base,SD 1.5")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        help='torch.compile mode for the U-Net, e.g. "reduce-overhead" (CUDA graphs)')
    parser.add_argument("--profile", action="store_true", help="print where a step's time goes")
    parser.add_argument("--no-vram-o", action="store_true", help="skip the vram_O=True step")
    parser.add_argument("--vram-o-only", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vram_o_only:
        return vram_o_only(args.vram_o_only, args.steps)
    SD = solution_class()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"torch {torch.__version__}, device {device_name(device)}")

    if args.tiny or not cuda:
        sd = SD(str(device), cuda, False, hf_key=str(TINY_SD))
        cfg_steps, repeats = (min(args.steps, 3), 2) if not cuda else (args.steps, args.repeats)
        benchmark("tiny (random) SD", sd, device, cfg_steps, repeats,
                  do_compile=cuda and not args.no_compile, small=not cuda)
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
            step, floor = benchmark(name, sd, device, args.steps, args.repeats,
                                    vram_folder=None if args.no_vram_o else folder,
                                    do_compile=not args.no_compile and first,
                                    profile=args.profile and first, compile_mode=args.compile_mode)
            del sd
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
