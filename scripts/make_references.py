"""Compute the reference tensors the test cells compare with.

The visible tests' cases go to `assets/references.pt`, which students get; the hidden tests'
cases (inputs and expected values) go to `autograder/hidden_references.pt`, which only the
instructor has.

Every expected value is computed by the solution notebook's own code (autograder.notebook_code),
on the tiny model, on the CPU, from fixed seeds. Inputs are drawn from seeded generators, so
running this again gives the same file; `tests/test_generated.py` checks that it does.

    python scripts/make_references.py                       # write both files
    python scripts/make_references.py --out F --hidden-out G  # elsewhere (the drift test)
"""

import sys
import argparse
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit.checks import reference_instance  # noqa: E402
from autograder.notebook_code import solution_class, solution_functions  # noqa: E402
from sdskit.paths import HIDDEN_REFERENCES, REFERENCES, TINY_SD  # noqa: E402


def _rand(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def make_references() -> dict:
    torch.use_deterministic_algorithms(True)
    # One thread: the VAE's sums then run in one order whatever the machine's cores or load, so
    # the drift test's regeneration matches the committed file on any machine.
    torch.set_num_threads(1)
    StableDiffusion = solution_class()
    refs: dict = {"format": 2}

    # Blank 1: the defaults' step range, and the parameter count of a correctly built module.
    sd = StableDiffusion("cpu", False, False, hf_key=str(TINY_SD))
    refs["init"] = {"min_step": sd.min_step, "max_step": sd.max_step}
    n_parameters = sum(p.numel() for p in sd.parameters())
    refs["blank1"] = {"visible": {"t_range": [0.02, 0.98]},
                      "hidden": {"t_range": [0.1, 0.7], "n_parameters": n_parameters}}
    step_range = sd.min_step, sd.max_step

    # Blank 2: (num_train_timesteps, t_range) cases. A visible one (the try-it cell's) and a
    # hidden one are where int() and round() disagree (987.5 and 999.5).
    cases = {
        "visible": [(1000, (0.02, 0.98)), (1000, (0.1, 0.9)), (1000, (0.0125, 0.9875))],
        "hidden": [(1000, (0.25, 0.75)), (50, (0.02, 0.98)), (1000, (0.0285, 0.9995)),
                   (500, (0.3, 0.7))],
    }
    refs["blank2"] = {}
    for split, items in cases.items():
        refs["blank2"][split] = []
        for steps, t_range in items:
            probe = reference_instance(StableDiffusion, step_range)
            probe.num_train_timesteps = steps
            probe.set_step_range(list(t_range))
            refs["blank2"][split].append({
                "num_train_timesteps": steps, "t_range": list(t_range),
                "min_step": probe.min_step, "max_step": probe.max_step,
            })

    sd = reference_instance(StableDiffusion, step_range)

    # Blank 3: 4-channel renders -> latents.
    refs["blank3"] = {}
    for split, seed, shape in (("visible", 30, (1, 4, 32, 32)), ("hidden", 31, (3, 4, 96, 128))):
        pred_rgb = _rand(seed, *shape)
        refs["blank3"][split] = {"pred_rgb": pred_rgb, "latents": sd.interpolate_latents(pred_rgb)}

    # Blank 4: RGB renders -> 512 -> VAE latents, and the gradient back to the render.
    refs["blank4"] = {}
    for split, seed, shape in (("visible", 40, (1, 3, 64, 64)), ("hidden", 41, (2, 3, 80, 120))):
        pred_rgb = _rand(seed, *shape).requires_grad_(True)
        torch.manual_seed(seed)  # encode_imgs samples the VAE posterior
        latents = sd.encode_rgb(pred_rgb)
        upstream = _randn(seed + 100, *latents.shape)
        latents.backward(upstream)
        refs["blank4"][split] = {
            "pred_rgb": pred_rgb.detach(), "seed": seed, "latents": latents.detach(),
            "upstream": upstream, "pred_rgb_grad": pred_rgb.grad.detach(),
        }

    # Blank 5: ranges and batch sizes to sample from; the check tests the draws' properties.
    refs["blank5"] = {
        "visible": [
            {"min_step": 20, "max_step": 980, "batch": 1, "draws": 300, "seed": 50},
            {"min_step": 5, "max_step": 9, "batch": 1, "draws": 400, "seed": 51},
        ],
        "hidden": [
            {"min_step": 0, "max_step": 3, "batch": 4, "draws": 300, "seed": 52},
            {"min_step": 7, "max_step": 7, "batch": 2, "draws": 20, "seed": 53},
            {"min_step": 100, "max_step": 103, "batch": 1, "draws": 400, "seed": 54},
        ],
    }

    # Blank 6: guided noise prediction, added noise, weight -> gradient.
    refs["blank6"] = {}
    for split, seed, batch in (("visible", 60, 1), ("hidden", 61, 3)):
        noise_pred = _randn(seed, batch, 4, 64, 64) * 3
        noise = _randn(seed + 1, batch, 4, 64, 64)
        w = 1 - sd.alphas[torch.tensor([500, 20, 980][:batch])].view(batch, 1, 1, 1)
        refs["blank6"][split] = {"noise_pred": noise_pred, "noise": noise, "w": w,
                                 "grad": sd.sds_gradient(noise_pred, noise, w)}

    # Blank 7: latents and gradient -> targets.
    refs["blank7"] = {}
    for split, seed, batch in (("visible", 70, 1), ("hidden", 71, 3)):
        latents = _randn(seed, batch, 4, 64, 64)
        grad = _randn(seed + 1, batch, 4, 64, 64) * 0.1
        refs["blank7"][split] = {"latents": latents, "grad": grad,
                                 "targets": sd.sds_targets(latents, grad)}
    make_experiment_references(refs, sd)
    return refs


def make_experiment_references(refs: dict, sd) -> None:
    """Part 7's cases (sdskit/experiment_checks.py), from the solution's own functions."""
    solution = solution_functions()

    # Experiment 1: abar_t of a few timesteps -> w for each kind. The hidden cases take other
    # timesteps and another unknown kind.
    refs["exp1"] = {}
    for split, steps, unknown in (("visible", [20, 500, 980], "snr"),
                                  ("hidden", [0, 137, 321, 640, 999], "min-snr")):
        abar = sd.alphas[torch.tensor(steps)].float()
        refs["exp1"][split] = {"abar": abar, "unknown_kind": unknown,
                               **{kind: solution["sds_weight"](abar, kind)
                                  for kind in ("dreamfusion", "uniform", "fantasia3d")}}

    # Experiment 2: (min_step, max_step, total_steps) -> the t of every step.
    cases = {"visible": [(20, 980, 5), (3, 7, 9)],
             "hidden": [(20, 980, 400), (100, 500, 7), (0, 999, 1000), (7, 7, 3), (50, 60, 2)]}
    refs["exp2"] = {split: [{"min_step": lo, "max_step": hi, "total_steps": total,
                             "t": [int(solution["annealed_timestep"](i, total, lo, hi))
                                   for i in range(total)]}
                            for lo, hi, total in items] for split, items in cases.items()}

    # Experiment 3: the two predictions and w -> the CSD gradient.
    refs["exp3"] = {}
    for split, seed, batch in (("visible", 80, 1), ("hidden", 81, 3)):
        uncond = _randn(seed, batch, 4, 32, 32)  # the gradient is elementwise: any size will do
        cond = uncond + 0.5 * _randn(seed + 1, batch, 4, 32, 32)
        w = 1 - sd.alphas[torch.tensor([300, 50, 900][:batch])].view(batch, 1, 1, 1)
        refs["exp3"][split] = {"noise_pred_uncond": uncond, "noise_pred_cond": cond, "w": w,
                               "grad": solution["csd_gradient"](uncond, cond, w)}


def split(refs: dict) -> tuple[dict, dict]:
    """(visible, hidden): every blank's hidden cases go to the instructor's file; everything
    else to the students' file."""
    visible = {"format": refs["format"], "init": refs["init"]}
    hidden = {"format": refs["format"]}
    for key, value in refs.items():
        if key.startswith(("blank", "exp")):
            visible[key] = {"visible": value["visible"]}
            hidden[key] = {"hidden": value["hidden"]}
    return visible, hidden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REFERENCES)
    parser.add_argument("--hidden-out", type=Path, default=HIDDEN_REFERENCES)
    args = parser.parse_args()
    for data, path in zip(split(make_references()), (args.out, args.hidden_out)):
        torch.save(data, path)
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
