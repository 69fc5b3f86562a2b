"""How fast does grade.py grade a class? Prints figures; it is not a timed test.

    PYTHONPATH=. python scripts/benchmark_grading.py [--students 100] [--jobs 2]

Grades a generated sample class (a mix of complete, partly wrong and blank notebooks) with
`autograder/grade.py --jobs N`, and reports:

* CPU seconds per submission: grade.py's own CPU, plus every forked blank's CPU as the
  workers report it (bubblewrap hides it from this process's accounting), plus each worker's
  one-off warm-up (importing torch, loading the tiny model), divided by the number of
  students; and the same without the warm-up.
* The wall time for a class of 100: measured, with the default --students 100 (grading,
  nbgrader's gradebook and feedback included); with a smaller sample, extrapolated as the
  warm-up plus the sample's per-student wall time times 100, and it says so.
"""

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder import sandbox, submissions  # noqa: E402
from sdskit.paths import ROOT  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def warm_up() -> tuple[float, float]:
    """(wall, CPU) seconds to start one worker and have it answer an empty task."""
    cpu, wall = children_cpu(), time.perf_counter()
    from autograder import locate

    release = locate.release_cells()
    worker = sandbox.Worker()
    answer = worker.grade({"setup": release["imports"], "release_class": release["blank1_2_class"],
                  "cells": {}, "blanks": [], "blank_cells": {}, "methods": {},
                  "limits": sandbox.limits(), "scratch": f"/tmp/bench-{secrets.token_hex(4)}"},
                 600)
    worker.close()
    # Under bubblewrap the worker's CPU is not visible to this process: the worker reports it.
    reported = answer.get("cpu", {}).get("total", 0.0)
    return time.perf_counter() - wall, max(reported, children_cpu() - cpu)


def sample_class(folder: Path, count: int) -> None:
    solution = submissions.solution_answers()
    for index in range(count):
        kind = index % 4
        if kind == 0:
            answers = solution
        elif kind == 1:
            answers = {**solution, 1 + index % 7: submissions.MISTAKES[1 + index % 7]}
        elif kind == 2:
            answers = {**solution, **submissions.ALTERNATIVES}
        else:
            answers = {b: solution[b] for b in list(solution)[: index % 7]}
        submissions.write_submission(folder, f"student{index:03d}", answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    warm_wall, warm_cpu = warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "class", Path(tmp) / "out"
        sample_class(folder, args.students)
        cpu, wall = children_cpu(), time.perf_counter()
        subprocess.run([sys.executable, "autograder/grade.py", str(folder), "--out", str(out),
                        "--jobs", str(args.jobs)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - wall
        parent_cpu = children_cpu() - cpu  # grade.py itself (and the workers, without bwrap)
        blanks_cpu = sum(json.loads(p.read_text())["cpu_s"]
                         for p in (out / "results").glob("*.json"))
        cpu = parent_cpu + blanks_cpu + (args.jobs * warm_cpu if sandbox.sandbox_kind() ==
                                         "bwrap" else 0.0)
    n = args.students
    per_student_cpu = cpu / n
    marginal_cpu = (cpu - args.jobs * warm_cpu) / n
    per_student_wall = max(wall - warm_wall, 0.0) / n
    measured = n == 100
    class_wall = wall if measured else warm_wall + 100 * per_student_wall
    figures = {
        "sandbox": sandbox.sandbox_kind(), "cores": os.cpu_count(), "jobs": args.jobs,
        "sample_students": n, "sample_wall_s": round(wall, 1), "sample_cpu_s": round(cpu, 1),
        "worker_warmup_wall_s": round(warm_wall, 1), "worker_warmup_cpu_s": round(warm_cpu, 1),
        "cpu_s_per_submission": round(per_student_cpu, 2),
        "cpu_s_per_submission_after_warmup": round(marginal_cpu, 2),
        ("class_of_100_wall_s" if measured else "class_of_100_wall_s_extrapolated"):
            round(class_wall, 0),
    }
    print(json.dumps(figures, indent=1))
    print(f"\nCPU per submission: {per_student_cpu:.1f} s measured over {n} students "
          f"({marginal_cpu:.1f} s each once the {args.jobs} workers are warm; target <= 10 s).")
    how = ("measured" if measured else f"EXTRAPOLATED from the {n}-student sample (warm-up "
           f"{warm_wall:.0f} s + 100 x {per_student_wall:.1f} s)")
    print(f"A class of 100 with --jobs {args.jobs} on {os.cpu_count()} cores: "
          f"{class_wall / 60:.1f} min, {how}; target <= 10 min.")


if __name__ == "__main__":
    main()
