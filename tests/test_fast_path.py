"""The fast path's choices and its fallback (sdskit/fast.py, text_to_3d._fast_path_for), on the CPU.

Its CUDA graphs need a GPU: scripts/benchmark_sds_step.py measures their speed and their agreement
with eager there. Here: which runs take it, and that a recording that fails leaves one line, no
traceback, and the eager results.
"""

from dataclasses import replace

import pytest
import torch

from autograder.notebook_code import solution_class
from sdskit import fast as F
from sdskit import nerf as N
from sdskit import text_to_3d as T
from sdskit.oracle import OracleUNet
from sdskit.paths import TINY_SD

SMALL = T.TextTo3DConfig(nerf=N.NeRFConfig(grid_levels=4, grid_max_res=32, num_samples=8, hidden=16),
                         height=16, width=16, export=False, progress=False, preview_every=0,
                         cpu_steps=None, albedo_steps_ratio=0.5)


@pytest.fixture(scope="module")
def sd():
    return solution_class()("cpu", False, False, hf_key=str(TINY_SD))


@pytest.fixture(autouse=True)
def eager_afterwards(sd):
    yield
    F.disable(sd)


def test_a_failed_recording_says_so_in_one_line_and_the_run_goes_on_eagerly(sd, monkeypatch, capsys,
                                                                          tmp_path):
    config = replace(SMALL, out_dir=str(tmp_path), as_latent=True)  # no VAE: quick on a CPU
    eager = T.run(sd, "a hamburger", steps=2, config=replace(config, fast=False), device="cpu")
    capsys.readouterr()
    # as on a GPU: the run takes the fast path and its parts try to record graphs, which fails
    # here (no CUDA), at the NeRF render's first call
    monkeypatch.setattr(T, "_fast_path_for", lambda sd, *args: F.enable(sd))
    monkeypatch.setattr(F, "on_gpu", lambda *tensors: True)
    fast = T.run(sd, "a hamburger", steps=2, config=replace(config, fast=True), device="cpu")
    out, err = capsys.readouterr()
    said = [line for line in (out + err).splitlines() if "fast path" in line]
    assert len(said) == 1 and "NeRF render" in said[0] and "eagerly" in said[0], out + err
    assert "Traceback" not in out + err
    assert F.enable(sd).failed is not None
    assert "forward" not in sd.unet.__dict__ and "forward" not in sd.vae.encoder.__dict__
    assert fast.losses == eager.losses  # the same steps, eagerly
    # a later run stays eager and says nothing more
    T.run(sd, "a hamburger", steps=1, config=replace(config, fast=None), device="cpu")
    assert "fast path" not in "".join(capsys.readouterr())


def test_a_run_on_the_fast_path_says_why_its_first_steps_are_slow(sd, monkeypatch, capsys, tmp_path):
    config = replace(SMALL, out_dir=str(tmp_path), as_latent=True, progress=True)
    T.run(sd, "a hamburger", steps=1, config=replace(config, fast=False), device="cpu")
    assert "first steps" not in "".join(capsys.readouterr())  # eager: nothing to say
    monkeypatch.setattr(T, "_fast_path_for", lambda sd, *args: F.enable(sd))
    T.run(sd, "a hamburger", steps=1, config=config, device="cpu")
    said = capsys.readouterr().out
    assert "The fast path is on: the first steps record the step as CUDA graphs" in said, said


def test_a_failed_recording_inside_train_step_falls_back_there(sd, monkeypatch, capsys):
    """The VAE encoder and the U-Net are recorded inside the student's train_step: a failure
    there never reaches the student's code."""
    monkeypatch.setattr(F, "on_gpu", lambda *tensors: True)
    F.enable(sd)
    emb = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds(["a hamburger"])])
    pred = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    noise = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    loss = sd.train_step(emb, pred, noise=noise)
    said = capsys.readouterr().out
    assert said.count("fast path") == 1 and "VAE encoder" in said, said
    # what the recording changed is back: torch's group norms, diffusers' attention, the layout
    assert not any("forward" in m.__dict__ for m in sd.vae.encoder.modules()
                   if isinstance(m, torch.nn.GroupNorm))
    assert {type(p).__name__ for p in sd.vae.attn_processors.values()} == {"AttnProcessor2_0"}
    assert all(p.is_contiguous() for p in sd.vae.encoder.parameters())
    F.disable(sd)
    torch.manual_seed(2)
    assert torch.equal(loss, sd.train_step(emb, pred, noise=noise))


def test_which_runs_take_the_fast_path(sd, monkeypatch, capsys):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 5))
    assert T._fast_path_for(sd, SMALL, cuda) is None  # a T4: eager by default
    assert T._fast_path_for(sd, replace(SMALL, fast=None), torch.device("cpu")) is None
    assert capsys.readouterr().out == ""
    assert isinstance(T._fast_path_for(sd, replace(SMALL, fast=True), cuda), F.FastPath)  # asked for
    F.disable(sd)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    fast = T._fast_path_for(sd, SMALL, cuda)  # an H100 or H200: fast by default
    assert isinstance(fast, F.FastPath) and isinstance(sd.unet.forward, F.GraphedUNet)
    F.disable(sd)
    assert sd.unet.forward.__self__ is sd.unet  # eager again
    # a stand-in U-Net whose output depends on more than its inputs (the oracle's): eager
    unet, sd.unet = sd.unet, OracleUNet(sd.scheduler.alphas_cumprod)
    try:
        assert T._fast_path_for(sd, SMALL, cuda) is None
    finally:
        sd.unet = unet
    # weights streamed from the CPU (vram_O): eager, and fast=True says why in one line
    monkeypatch.setattr(sd.unet, "_hf_hook", object(), raising=False)
    assert T._fast_path_for(sd, SMALL, cuda) is None
    assert capsys.readouterr().out == ""
    assert T._fast_path_for(sd, replace(SMALL, fast=True), cuda) is None
    assert "vram_O" in capsys.readouterr().out
