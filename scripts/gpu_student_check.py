"""On a GPU: code that passes every visible test runs Parts 4 to 6 of the notebook, and the
answers that only fail on a GPU, which the visible tests now catch, are the ones that crash there.

    python scripts/gpu_student_check.py          # on a GPU: SD 2.1-base architecture, random weights
    python scripts/gpu_student_check.py --tiny   # the kit's tiny model (on a CPU nothing can crash)

Nothing is downloaded (the weights are random, built as scripts/benchmark_sds_step.py builds them;
the tokenizer and scheduler are the tiny model's). Needs torch with CUDA, and the kit's pinned
diffusers and transformers. On an NVIDIA H200 it took 41 s (2026-12-01: as expected, every
passing student ran Parts 4 to 6, and both GPU-only mistakes failed their visible test and
stopped Part 4).

The students are classes built the way grading builds them: the release notebook with answers
filled in, its class and blank cells run (autograder/submissions.py, notebook_code.py):

    passing        the solution's answers
    alternatives   every other correct way of writing each blank (submissions.ALTERNATIVES)
    <mistake>      the solution with one known mistake that gives the right values on a CPU in
                   float32 (autograder/mistakes.py, gpu_only): t made without device= (blank 5),
                   the VAE called on a float32 picture (blank 4)

For each, its visible tests run here first (the device and fp16 probes of sdskit/probes.py come
after a blank's value checks, so a mistake that fails only there passes every value check), then
on the device, the notebook's own calls of its Parts 4 to 6: train_step on a render and its
backward, the gradient-over-t and one-step-guess figures (Part 4); the oracle warm-up and three
steps of the prompt warm-up (Part 5); five steps of text_to_3d.run, with the export for the first
student (Part 6). On a CPU, the Part 4 figures run for the first student only (minutes there). It prints one table and exits 1 unless every passing student passes every
visible test and runs every part, and every mistake fails its blank's visible test and, on a GPU,
stops Part 4 (on a CPU it runs: nothing there can show the crash).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from autograder import mistakes, submissions  # noqa: E402
from autograder.notebook_code import run_cells  # noqa: E402
from sdskit import checks, figures, warmup  # noqa: E402
from sdskit import text_to_3d as T  # noqa: E402
from sdskit.paths import TINY_SD  # noqa: E402

PROMPT = "a watercolor painting of hills under the sun"


def students(folder: Path) -> dict:
    """{name: (StableDiffusion class, the blank its mistake is in, or None)}."""
    solution = submissions.solution_answers()
    answers = {"passing": (solution, None),
               "alternatives": ({**solution, **submissions.ALTERNATIVES}, None)}
    for mistake in mistakes.KNOWN:
        if mistake.gpu_only:
            answers[f"blank {mistake.blank}: {mistake.name}"] = (
                {**solution, mistake.blank: mistake.code}, mistake.blank)
    built = {}
    for number, (name, (filled, blank)) in enumerate(answers.items()):
        path = submissions.write_submission(folder, f"student{number}", filled)
        built[name] = run_cells(path)["StableDiffusion"], blank
    return built


def visible(cls) -> dict:
    """{blank: Report} of every blank's visible test (on the CPU, the tiny model)."""
    return {blank: check(cls, "visible") for blank, check in checks.CHECKS.items()}


def outcome(part) -> str:
    """'ok', or the error and the innermost file it came from."""
    try:
        part()
    except Exception as error:  # noqa: BLE001 - what breaks is what this script reports
        frame = traceback.extract_tb(error.__traceback__)[-1]
        where = "/".join(Path(frame.filename).parts[-3:])
        text = " ".join(str(error).split())[:150]
        return f"{type(error).__name__}: {text} (in {where}:{frame.lineno})"
    finally:
        plt.close("all")
    return "ok"


def part4(sd, device, with_figures=True):
    embeddings = torch.cat([sd.get_text_embeds([""]), sd.get_text_embeds([PROMPT])])
    pred_rgb = figures.demo_image(128).to(device).requires_grad_(True)
    loss = sd.train_step(embeddings, pred_rgb, guidance_scale=100)
    loss.backward()
    assert torch.isfinite(loss) and pred_rgb.grad is not None, "no finite loss or no gradient"
    if with_figures:
        figures.plot_sds_grad_vs_t(sd, figures.demo_image(128), embeddings)
        figures.one_step_denoise(sd, figures.demo_image(256), embeddings, guidance_scales=(7.5, 100))


def part5(cls, sd):
    warm = warmup.oracle_warmup(cls, warmup.WarmupConfig(steps=30))
    assert warm.final_error < warm.start_error, "the oracle warm-up did not move towards its target"
    warmup.prompt_warmup(sd, PROMPT, guidance_scale=100, steps=3)


def part6(sd, device, out_dir, export):
    config = T.TextTo3DConfig(out_dir=str(out_dir), export=export, progress=False,
                              preview_every=0)
    # on a CPU, asking for the final cell's 400 steps gives its CPU run: 5 small steps
    steps = 5 if torch.device(device).type == "cuda" else 400
    result = T.run(sd, "a DSLR photo of a hamburger", steps=steps, config=config, device=device)
    assert len(result.losses) == result.steps, "text_to_3d did not run its steps"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="use the kit's tiny model (on the GPU if there is one)")
    args = parser.parse_args()
    begin = time.perf_counter()
    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    fp16 = gpu
    work = Path(tempfile.mkdtemp(prefix="gpu_student_check_"))
    try:
        return check(args, begin, gpu, device, fp16, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the random model: 2.5 GB on disk


def check(args, begin, gpu, device, fp16, work) -> int:
    if args.tiny:
        model, what = str(TINY_SD), "the tiny model"
    else:
        if not gpu:
            print("No GPU here: run with --tiny, or on a machine with a CUDA GPU.")
            return 2
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchmark_sds_step import MODELS, write_random_model

        model = str(write_random_model(MODELS["SD 2.1-base"], work / "sd21", device))
        what = "the SD 2.1-base architecture, random weights"
    name = torch.cuda.get_device_name(0) if gpu else "no GPU"
    print(f"device: {device} ({name}), fp16: {fp16}, model: {what}; "
          f"{time.perf_counter() - begin:.0f} s to build it")

    rows, failures = [], []
    for number, (student, (cls, blank)) in enumerate(students(work / "students").items()):
        reports = visible(cls)
        failed = sorted(b for b, report in reports.items() if not report.passed)
        torch.manual_seed(0)
        sd = cls(device, fp16, False, hf_key=model)  # the student's own __init__
        parts = {}
        # On a CPU the figures and the export, minutes there, run for the first student only.
        whole = gpu or number == 0
        for part, run in (("Part 4", lambda: part4(sd, device, whole)),
                          ("Part 5", lambda: part5(cls, sd)),
                          ("Part 6", lambda: part6(sd, device, work / f"out{number}", number == 0))):
            started = time.perf_counter()
            parts[part] = outcome(run)
            print(f"  {student}, {part}: {time.perf_counter() - started:.0f} s", flush=True)
        del sd
        if gpu:
            torch.cuda.empty_cache()
        rows.append((student, failed, parts, reports))
        if blank is None:
            if failed:
                failures.append(f"{student} fails the visible tests of blanks {failed}")
            failures.extend(f"{student}: {part} {said}" for part, said in parts.items()
                            if said != "ok")
        else:
            if failed != [blank]:
                failures.append(f"{student} should fail blank {blank}'s visible test alone; "
                                f"it fails {failed}")
            if gpu and parts["Part 4"] == "ok":
                failures.append(f"{student} runs Part 4 on the GPU: it should crash there")
            if not gpu and any(said != "ok" for said in parts.values()):
                failures.append(f"{student} should run on the CPU: {parts}")

    for student, failed, parts, reports in rows:
        print(f"\n{student}")
        print(f"  visible tests: {'all 7 pass' if not failed else f'blanks {failed} fail'}")
        for blank in failed:
            print("   ", " ".join(reports[blank].message.split())[:700])
        for part, said in parts.items():
            print(f"  {part}: {said}")
    if not gpu:
        print("\nNo GPU: the mistakes run here (their tensors are all on the CPU, in float32); "
              "on a GPU they stop Part 4.")
    print(f"\n{time.perf_counter() - begin:.0f} s in all")
    if failures:
        print("NOT AS EXPECTED:\n" + "\n".join(f"  - {f}" for f in failures))
        return 1
    print("As expected: the passing students pass every visible test and run Parts 4 to 6; each "
          "mistake fails its own blank's visible test" + (" and stops Part 4 on the GPU." if gpu
                                                            else "."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
