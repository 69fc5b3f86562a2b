"""The text-to-3D oracle check (sdskit/oracle.py), through the kit's own train_step.

A prior that knows the right answer (an oracle denoiser for a known object) drives the kit's
text-to-3D loop. SDS done right must reconstruct the object on held-out views; SDS done wrong
(the gradient's sign flipped, or the targets not detached) must fail the same check.
About 10 s per optimisation on one CPU thread (100 steps of 24x24 renders); three of them here.
"""

import hashlib
import json

import pytest
import torch

from autograder.notebook_code import solution_class
from sdskit.oracle import MIN_IOU, MIN_PSNR, OracleCheck, oracle_config
from sdskit.paths import ASSETS

SD = solution_class()


class FlippedSign(SD):
    """SDS with the sign of the gradient flipped: ascends instead of descends."""

    def sds_gradient(self, noise_pred, noise, w):
        return -w * (noise_pred - noise)


class TargetsNotDetached(SD):
    """Targets keep their autograd history: the loss's gradient w.r.t. the latents is zero."""

    def sds_targets(self, latents, grad):
        return latents - grad


@pytest.fixture(scope="module")
def right():
    torch.manual_seed(0)
    return OracleCheck(SD).run()


def test_sds_recovers_the_object(right):
    print(f"\noracle check, right SDS: IoU {right['iou']:.3f}, PSNR {right['psnr']:.1f} dB, "
          f"{right['steps']} steps, {right['seconds']:.1f} s")
    assert right["iou"] >= MIN_IOU, right
    assert right["psnr"] >= MIN_PSNR, right
    assert right["passed"]


def test_the_stored_figure_shows_what_the_check_measures(right):
    """Part 6's stored figure (scripts/make_figures.py) was made by this check, with its config:
    its numbers, written beside it, are what the check measures now, and the PNG is theirs."""
    figure = ASSETS / "figures" / "oracle_check.png"
    numbers = json.loads(figure.with_suffix(".json").read_text())
    redo = "run `make figures` (then `make release`)"
    cfg = oracle_config()
    assert (numbers["steps"], numbers["height"], numbers["width"], numbers["num_samples"],
            numbers["seed"]) == (cfg.steps, cfg.height, cfg.width, cfg.nerf.num_samples,
                                 cfg.seed), f"the figure is of another config than the check's; {redo}"
    assert hashlib.sha256(figure.read_bytes()).hexdigest() == numbers["png_sha256"], \
        f"oracle_check.png and oracle_check.json are not from the same run; {redo}"
    assert right["steps"] == numbers["steps"]
    assert abs(right["iou"] - numbers["iou"]) < 0.01, (right["iou"], numbers, redo)
    assert abs(right["psnr"] - numbers["psnr"]) < 0.5, (right["psnr"], numbers, redo)


@pytest.mark.parametrize("wrong", [FlippedSign, TargetsNotDetached], ids=["sign-flipped", "not-detached"])
def test_wrong_sds_fails_the_check(right, wrong):
    torch.manual_seed(0)
    out = OracleCheck(wrong).run()
    print(f"\noracle check, {wrong.__name__}: IoU {out['iou']:.3f}, PSNR {out['psnr']:.1f} dB, "
          f"{out['seconds']:.1f} s (right SDS: IoU {right['iou']:.3f}, PSNR {right['psnr']:.1f} dB)")
    assert not out["passed"], out
    # and clearly, not by a hair: well below what right SDS reaches
    assert out["iou"] < MIN_IOU - 0.1 or out["psnr"] < MIN_PSNR - 3, out
