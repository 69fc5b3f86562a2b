"""Part 7's experiments with the real model, as the notebook's GPU branch runs them, in one
command: `python scripts/run_experiments_gpu.py --out DIR`.

It builds the solution's StableDiffusion (the real model of sdskit/config.py's sd_version, from
the Hugging Face cache or the hub), runs each experiment's GPU path with the solution's own
function (sdskit/experiments.py: weighting_prompt, schedule_prompt, guidance_prompt), and writes
DIR/exp1_weighting_gpu.png, DIR/exp2_schedule_gpu.png, DIR/exp3_guidance_gpu.png and
DIR/timings.json (seconds per run, and in all). Measured on an NVIDIA H200 (random-weight
SD 2.1-base, fp16): 24, 14 and 20 seconds for the three, the first run after loading the slowest
(100 steps of a 256x256 picture per run; inside the notebook each run took 3.2 to 3.7 s).

    --device cpu --model assets/tiny-sd --steps 3 --size 64   # the same code on the tiny model
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from autograder.notebook_code import solution_class, solution_functions  # noqa: E402
from sdskit import experiment_plots, experiments  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.loading import resolve_model_key  # noqa: E402

PROMPT = "a watercolor painting of hills under the sun"  # the notebook's EXPERIMENT_PROMPT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default=None, help="model id or folder (default: the real one)")
    parser.add_argument("--steps", type=int, default=experiments.PROMPT_CONFIG.steps)
    parser.add_argument("--size", type=int, default=experiments.PROMPT_CONFIG.size)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    functions = solution_functions()
    model = args.model or resolve_model_key(COURSE.sd_version)
    sd = solution_class()(args.device, args.device == "cuda", False, hf_key=model)
    config = replace(experiments.PROMPT_CONFIG, steps=args.steps, size=args.size)
    timings = {}
    for name, run, plot, function in (
            ("exp1_weighting", experiments.weighting_prompt, experiment_plots.plot_weighting,
             "sds_weight"),
            ("exp2_schedule", experiments.schedule_prompt, experiment_plots.plot_schedule,
             "annealed_timestep"),
            ("exp3_guidance", experiments.guidance_prompt, experiment_plots.plot_guidance,
             "csd_gradient")):
        start = time.perf_counter()
        result = run(sd, functions[function], PROMPT, config)
        timings[name] = {"seconds": round(time.perf_counter() - start, 1),
                         "runs": {key: round(r.seconds, 1) for key, r in result.runs.items()},
                         "saturation": {key: round(r.saturation[-1], 3)
                                        for key, r in result.runs.items()}}
        plot(result).savefig(args.out / f"{name}_gpu.png", dpi=80)
        print(name, json.dumps(timings[name]), flush=True)
    (args.out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
