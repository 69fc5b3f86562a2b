"""The fast path's group norm (sdskit/group_norm.py) against torch's, on the CPU.

Its Triton kernels run on a GPU; here torch's operations compute the same formulas, and, where
Triton is installed, its CPU interpreter runs the kernels themselves (a subprocess: the
interpreter is chosen when Triton starts). scripts/benchmark_sds_step.py measures the GPU's
agreement with eager, and its speed.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sdskit import group_norm as G

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ("channels_first", "channels_last", "transposed_3d", "grad_in_other_layout")


def case(layout, dtype, seed=0):
    """x, dy, weight, bias: 2 samples, 96 channels in 8 groups, 12 x 20 positions, x's mean far
    from zero against its spread (30 against 2), which is where a careless variance cancels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 96, 12, 20, generator=g) * 2 + 30
    dy = torch.randn(2, 96, 12, 20, generator=g) * 1e-2
    if layout in ("channels_last", "grad_in_other_layout"):
        x = x.to(memory_format=torch.channels_last)
    if layout == "channels_last":
        dy = dy.to(memory_format=torch.channels_last)
    if layout == "transposed_3d":  # (N, C, L) seen through a transpose, as diffusers' attention norm
        x, dy = x.flatten(2).transpose(1, 2).contiguous().transpose(1, 2), dy.flatten(2)
    w, b = torch.randn(96, generator=g), torch.randn(96, generator=g)
    return x.to(dtype), dy.to(dtype), w.to(dtype), b.to(dtype)


def run(norm, x, dy, w, b):
    """The output and the gradients on x, weight, bias."""
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y = norm(x, 8, w, b, 1e-6)
    y.backward(dy)
    return y.detach(), x.grad, w.grad, b.grad


def errors(got, reference):
    return [float((a.double() - r).norm() / r.norm()) for a, r in zip(got, reference)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_same_values_and_gradients_as_torch_in_fp32(layout):
    x, dy, w, b = case(layout, torch.float32)
    exact = run(F.group_norm, *(t.double() for t in (x, dy, w, b)))
    kit = run(G.group_norm, x, dy, w, b)
    assert max(errors(kit, exact)) < 5e-6, errors(kit, exact)
    # the output and the input's gradient keep the input's layout
    assert kit[0].stride() == x.stride() and kit[1].stride() == x.stride()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_in_fp16_no_further_from_the_exact_values_than_torch_itself(layout):
    x, dy, w, b = case(layout, torch.float16)
    exact = run(F.group_norm, *(t.double() for t in (x, dy, w, b)))
    ours, torchs = errors(run(G.group_norm, x, dy, w, b), exact), errors(run(F.group_norm, x, dy, w, b), exact)
    assert all(o <= 1.3 * t + 1e-5 for o, t in zip(ours, torchs)), (ours, torchs)
    assert run(G.group_norm, x, dy, w, b)[0].dtype == torch.float16


def test_without_weight_and_bias():
    x, dy, _, _ = case("channels_last", torch.float32)
    ours = G.group_norm(x, 8)
    assert torch.allclose(ours.double(), F.group_norm(x.double(), 8), atol=1e-5)


def test_bad_shapes_say_what_is_wrong():
    with pytest.raises(ValueError, match="96 channels, so it needs shape"):
        G.group_norm(torch.zeros(1, 96, 4, 4), 8, torch.ones(95))
    with pytest.raises(ValueError, match="does not split into 7 groups"):
        G.group_norm(torch.zeros(1, 96, 4, 4), 7)


def test_installed_in_the_tiny_models_it_gives_their_results_and_comes_out_again(tiny_models):
    vae, unet = tiny_models
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def encode():
        image.grad = None
        h = vae.encoder(2 * image - 1)
        (h * torch.linspace(0, 1, h.numel()).view_as(h)).sum().backward()
        return h.detach(), image.grad.clone()

    inputs = (torch.randn(2, 4, 8, 8), torch.tensor([500, 500]),
              torch.randn(2, 77, unet.config.cross_attention_dim))
    h0, g0 = encode()
    with torch.no_grad():
        u0 = unet(*inputs).sample
    norms = [m for m in (*vae.encoder.modules(), *unet.modules()) if type(m) is torch.nn.GroupNorm]
    assert len(norms) > 10
    for module in (vae.encoder, unet):
        module.to(memory_format=torch.channels_last)
        G.install(module)
    try:
        assert all("forward" in m.__dict__ for m in norms)
        h1, g1 = encode()
        with torch.no_grad():
            u1 = unet(*inputs).sample
    finally:
        for module in (vae.encoder, unet):
            G.remove(module)
            module.to(memory_format=torch.contiguous_format)
    assert not any("forward" in m.__dict__ for m in norms)
    for ours, theirs in ((h1, h0), (g1, g0), (u1, u0)):
        assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-5


@pytest.fixture(scope="module")
def tiny_models():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from sdskit.paths import TINY_SD
    vae = AutoencoderKL.from_pretrained(TINY_SD / "vae").requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(TINY_SD / "unet").requires_grad_(False)
    return vae.float(), unet.float()


INTERPRETED = """
import torch, torch.nn.functional as F
from sdskit import group_norm as G
from tests.test_group_norm import LAYOUTS, case, errors, run
assert G.use_triton(torch.zeros(1)), "not the Triton path"
for layout in LAYOUTS:
    for dtype in (torch.float32, torch.float16):
        x, dy, w, b = case(layout, dtype, seed=1)
        exact = run(F.group_norm, *(t.double() for t in (x, dy, w, b)))
        ours, torchs = errors(run(G.group_norm, x, dy, w, b), exact), errors(run(F.group_norm, x, dy, w, b), exact)
        assert all(o <= 1.3 * t + 5e-6 for o, t in zip(ours, torchs)), (layout, dtype, ours, torchs)
print("checked", len(LAYOUTS) * 2)
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                    reason="Triton is not installed (a CPU build of torch needs none); the GPU "
                           "benchmark checks the kernels there")
def test_the_triton_kernels_in_triton_s_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", INTERPRETED], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "checked 8" in done.stdout, done.stdout + done.stderr[-3000:]
