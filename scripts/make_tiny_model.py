"""Build a tiny, random Stable Diffusion in diffusers format, offline and deterministically.

The kit cannot download real weights (tests, grading and CI have no model hub), so it
carries this stand-in. It has the same architecture families as Stable Diffusion 2.1-base
(CLIP text encoder + CLIP BPE tokenizer, AutoencoderKL with an 8x spatial factor and 4
latent channels, UNet2DConditionModel with cross-attention, DDIM scheduler with the SD
noise schedule), only with tiny widths. So `StableDiffusionPipeline.from_pretrained(path)`
and the guidance class load it through exactly the code a real model goes through.

Its weights are random: images it makes are noise. It exists to exercise code, not to paint.

Regenerate with `python scripts/make_tiny_model.py` (or `make tiny-model`); a test checks that the
committed copy equals what this script makes.
"""

import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit.paths import TINY_SD  # noqa: E402

SEED = 0

# Each component's config. Widths are tiny; everything that fixes shapes the guidance class
# relies on (8x VAE downsampling, 4 latent channels, 1000 train steps, the scaled-linear
# beta schedule) is as in Stable Diffusion.
TEXT_ENCODER = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=77,
    projection_dim=32,
    hidden_act="gelu",
)
VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[8, 8, 16, 16],  # 4 blocks -> 3 downsamplings -> 512 px gives 64 latents
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    sample_size=64,
    scaling_factor=0.18215,
)
UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=[16, 32],
    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=32,  # = TEXT_ENCODER hidden_size
    attention_head_dim=[2, 4],
    norm_num_groups=8,
    use_linear_projection=True,
)
SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255.

    Printable Latin-1 bytes stand for themselves; the others are shifted to code points 256+.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    symbols, shift = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shift))
            shift += 1
    return symbols


def _write_tokenizer(folder: Path) -> None:
    """A byte-level CLIP BPE tokenizer with a tiny vocabulary: every byte, and no merges.

    Any prompt tokenizes (into single characters), which is all the kit needs.
    """
    symbols = _byte_symbols()
    vocab = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, sort_keys=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            },
            indent=2,
        )
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "do_lower_case": True,
            },
            indent=2,
        )
    )


def build_tiny_sd(out: Path = TINY_SD) -> Path:
    """Write the tiny Stable Diffusion to `out` (replacing what is there) and return the path."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    _write_tokenizer(out / "tokenizer")
    vocab_size = len(json.loads((out / "tokenizer" / "vocab.json").read_text()))

    # One seed before each component, so a change to one leaves the others' weights alone.
    torch.manual_seed(SEED)
    text_config = CLIPTextConfig(vocab_size=vocab_size, bos_token_id=vocab_size - 2,
                                 eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
                                 **TEXT_ENCODER)
    CLIPTextModel(text_config).save_pretrained(out / "text_encoder")

    torch.manual_seed(SEED + 1)
    AutoencoderKL(**VAE).save_pretrained(out / "vae")

    torch.manual_seed(SEED + 2)
    UNet2DConditionModel(**UNET).save_pretrained(out / "unet")

    DDIMScheduler(**SCHEDULER).save_pretrained(out / "scheduler")

    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")
    _strip_versions(out)
    return out


def _strip_versions(out: Path) -> None:
    """Drop library version stamps from the configs, so the files depend only on this script."""
    for config in out.rglob("*.json"):
        data = json.loads(config.read_text())
        if isinstance(data, dict):
            for key in ("_diffusers_version", "transformers_version", "_name_or_path"):
                data.pop(key, None)
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    path = build_tiny_sd()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote the tiny Stable Diffusion to {path} ({size / 1e6:.1f} MB)")
