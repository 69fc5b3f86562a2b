"""Run a student's blank against the kit's tests in a fresh, limited, sandboxed process.

Two layers:

* The **worker** (`python -m autograder.sandbox`) imports torch, the tiny model and the reference
  tensors once (about 9 CPU seconds), then reads tasks (JSON lines) on stdin. It runs inside
  bubblewrap where available: no network, a private /tmp, only the Python installation, the
  kit's `sdskit/` and `assets/`, and the worker's own module and the hidden cases visible, all
  read-only. The submissions, the output folder, the
  gradebook, `solutions/` (the hidden tests' source) and the repository are simply not there.
* For each blank the worker **forks a child**: a fresh copy of that warm state, in its own
  process group and scratch folder, with rlimits (CPU, address space, file size, no core
  dumps). The child runs the trusted setup (the release's imports cell), the student's cell
  as text, then the kit's own check (`sdskit.checks`), and writes the verdict to a pipe. The
  worker enforces the wall-clock limit and turns a crash, a timeout or an early exit into a
  message. Nothing a blank does survives into the next blank or the next student.

Tampering: before the student's code runs, the child takes a snapshot of what the verdict
depends on (torch, torch.Tensor, torch.autograd, torch.testing, numpy.testing, builtins,
sdskit.checks and its Report, sdskit.i18n and its Text, which word the messages, the reference
tensors' contents); after the check, anything rebound or changed voids the blank. The checks
read every result as a plain tensor they own (`sdskit.checks._plain`); what they noticed (a
tensor subclass) becomes a `review` flag. The verdict is read from the Report's problem list by
the harness, not from the student's notebook, and the test cells in the notebook are never run.

Languages: every message goes back twice, [passed, English, the task's language] (the staff's
class report reads English; the student's feedback their edition's language), and so does a
review flag ("flag" in English, "flag_shown" in the task's language).
"""

import errno
import hashlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder import ipython_cells
from sdskit.config import COURSE
from sdskit.i18n import N_, render, tr_in, tr_pair
from sdskit.paths import HIDDEN_REFERENCES, REFERENCES, ROOT

RESULT_LIMIT = 64 * 1024  # bytes of verdict read from one child
# What of the repository a sandboxed worker sees (read-only).
SANDBOX_VISIBLE = ("sdskit", "assets", "autograder/__init__.py", "autograder/sandbox.py",
                   "autograder/ipython_cells.py", str(HIDDEN_REFERENCES.relative_to(ROOT)))


# ---------------------------------------------------------------------------------------
# The parent's side: start a worker (sandboxed if possible) and talk to it.
# ---------------------------------------------------------------------------------------
def bwrap_command(scratch: Path | None = None) -> list[str] | None:
    """The bubblewrap prefix, or None where bubblewrap is missing or does not work here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None or COURSE.sandbox == "none":
        return None
    command = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
               "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
               "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            command += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            command += ["--ro-bind", link, link]
    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix}):
        if not prefix.startswith("/usr"):
            command += ["--ro-bind", prefix, prefix]
    # The student's package, its assets, and of the instructor's side only what the worker
    # runs and the hidden cases it checks against (not the corpus, the example answers or
    # solutions/).
    for part in SANDBOX_VISIBLE:
        command += ["--ro-bind", str(ROOT / part), str(ROOT / part)]
    command += ["--chdir", "/tmp", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
                "--setenv", "SDSKIT_SANDBOXED", "1", "--cap-drop", "ALL", "--"]
    probe = subprocess.run(command + ["/bin/true"], capture_output=True)
    return command if probe.returncode == 0 else None


def sandbox_kind() -> str:
    """'bwrap' or 'none' (rlimits and a fresh process only): what grading will use here."""
    kind = "bwrap" if bwrap_command() else "none"
    if COURSE.sandbox == "bwrap" and kind != "bwrap":
        raise SystemExit("error: the config asks for the bwrap sandbox, but bubblewrap is "
                         "missing or does not work here (apt-get install bubblewrap).")
    return kind


class WorkerDied(RuntimeError):
    pass


class Worker:
    """One warm, sandboxed grader process; grade(...) one student at a time."""

    def __init__(self):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "HOME": "/tmp", "NBGRADER_EXECUTION": "autograde",
               "PYTHONDONTWRITEBYTECODE": "1"}
        prefix = bwrap_command()
        self.kind = "bwrap" if prefix else "none"
        command = (prefix or []) + [sys.executable, "-m", "autograder.sandbox"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, cwd="/tmp",
                                        text=True, bufsize=1)

    def grade(self, task: dict, timeout: float) -> dict:
        """Send one student's cells; return {blank: {"visible": (ok, msg), ...}, ...}."""
        try:
            self.process.stdin.write(json.dumps(task) + "\n")
            self.process.stdin.flush()
        except OSError as error:
            raise WorkerDied(str(error)) from error
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise WorkerDied("the grader took too long")
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise WorkerDied("the grader stopped")
        return json.loads(line)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


# ---------------------------------------------------------------------------------------
# The worker's side.
# ---------------------------------------------------------------------------------------
class _Bounded:
    """A stdout/stderr that keeps the first `limit` characters and drops the rest."""

    def __init__(self, limit: int):
        self.limit, self.size, self.parts = limit, 0, []

    def write(self, text):
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def _fingerprint(value) -> str:
    """A hash of nested dicts/lists of tensors and numbers (the reference tensors)."""
    import torch

    digest = hashlib.sha256()

    def walk(item):
        if isinstance(item, dict):
            for key in sorted(item, key=str):
                digest.update(str(key).encode())
                walk(item[key])
        elif isinstance(item, (list, tuple)):
            for sub in item:
                walk(sub)
        elif isinstance(item, torch.Tensor):
            digest.update(item.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(item).encode())

    walk(value)
    return digest.hexdigest()


def _guarded_namespaces():
    """The objects whose attributes the verdict relies on."""
    import builtins

    import numpy
    import numpy.testing
    import torch
    import torch.autograd
    import torch.nn.functional
    import torch.testing

    from sdskit import checks, experiment_checks, i18n

    return {"torch": torch, "torch.Tensor": torch.Tensor, "torch.testing": torch.testing,
            "torch.nn.functional": torch.nn.functional, "torch.nn.Module": torch.nn.Module,
            "torch.autograd": torch.autograd,
            "numpy.testing": numpy.testing, "numpy": numpy, "builtins": builtins,
            "sdskit.checks": checks, "Report": checks.Report, "sdskit.i18n": i18n,
            "Text": i18n.Text, "sdskit.experiment_checks": experiment_checks}


# Module state that changes by itself (the language last chosen: the harness names its
# languages explicitly), not a tool the verdict relies on.
_CHANGING = {"__warningregistry__", "_", "__builtins__", "_chosen"}


def _snapshot():
    return {name: dict(vars(obj)) for name, obj in _guarded_namespaces().items()}


def _tampered(before: dict) -> list[str]:
    changed = []
    for name, obj in _guarded_namespaces().items():
        now = vars(obj)
        for key, value in before[name].items():
            if key in _CHANGING:
                continue
            if key not in now or now[key] is not value:
                changed.append(f"{name}.{key}")
    return changed


def _restore(before: dict) -> None:
    """Put back what the student's code rebound, so that the harness's own message about it is
    worded by the kit's code, not theirs (the blank is void either way)."""
    for name, obj in _guarded_namespaces().items():
        for key, value in before[name].items():
            if key not in _CHANGING and vars(obj).get(key) is not value:
                try:
                    setattr(obj, key, value)
                except (AttributeError, TypeError):
                    pass


# An OSError with one of these numbers is the sandbox saying no (read-only mounts, missing
# paths outside it, no network): worth a flag, since a blank's code has no business there.
# (The flags are catalogue messages, sdskit/i18n.py: grade.py words them in each language.)
_BLOCKED = {errno.EROFS: N_("sandbox blocked a write to a read-only file"),
            errno.EACCES: N_("sandbox blocked a file access"),
            errno.EPERM: N_("sandbox blocked an operation"),
            errno.ENETUNREACH: N_("sandbox blocked the network"),
            errno.ECONNREFUSED: N_("sandbox blocked the network")}
FLAGS = (N_("time limit"), N_("memory limit"), N_("kernel stopped"), N_("tampering"),
         N_("killed"), N_("disk limit"), N_("crash"))


def _blocked_flag(error: BaseException) -> str | None:
    import socket

    if isinstance(error, socket.gaierror):
        return N_("sandbox blocked the network")
    if isinstance(error, OSError) and error.errno in _BLOCKED:
        return _BLOCKED[error.errno]
    return None



def _child(task: dict, blank: int, base_namespace: dict, reference_print: str, write_fd: int,
           nonce: str):
    """In the forked child: limits, the student's cell, the trusted check, the verdict."""
    import resource

    os.setpgid(0, 0)
    if _PROTOCOL_FD is not None:
        os.close(_PROTOCOL_FD)  # the worker's channel to the parent is not the student's
    scratch = Path(task["scratch"]) / f"blank{blank}"
    scratch.mkdir(parents=True, exist_ok=True)
    os.chdir(scratch)
    os.environ["HOME"] = os.environ["TMPDIR"] = str(scratch)
    limits = task["limits"]
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    size = int(limits["file_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    memory = current + int(limits["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    output = _Bounded(int(limits["output_kb"]) * 1024)
    sys.stdout = sys.stderr = output
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)

    from sdskit import checks, experiment_checks

    experiment = isinstance(blank, str)  # "exp1": a function of Part 7, not a blank
    check = experiment_checks.CHECKS[blank] if experiment else checks.CHECKS[blank]
    report_type = checks.Report
    gid = task["blank_cells"][str(blank)]
    language = task.get("language", "en")
    verdict = {}

    def finish(results, flag=None, flag_shown=None):
        payload = json.dumps({"nonce": nonce, "results": results, "flag": flag,
                              "flag_shown": flag_shown}).encode()
        os.write(write_fd, payload[:RESULT_LIMIT])
        os._exit(0)

    before = _snapshot()
    namespace = dict(base_namespace)
    namespace.update(ipython_cells.notebook_names(namespace))
    try:
        # The student's cell as Jupyter runs it: magics, shell escapes, get_ipython().
        code = compile(ipython_cells.to_python(task["cells"][gid]), "<your cell>", "exec")
        if gid == "blank1_2_class" or experiment:
            exec(code, namespace)  # noqa: S102
        else:
            # Blanks 3-7 are graded alone: the released class (not the student's __init__),
            # then the student's cell, whose method is bound to it if the cell did not.
            exec(compile(task["release_class"], "<class cell>", "exec"), namespace)  # noqa: S102
            exec(code, namespace)  # noqa: S102
            method = task["methods"][gid]
            function = namespace.get(method)
            cls = namespace.get("StableDiffusion")
            if callable(function) and isinstance(cls, type) and method not in vars(cls):
                setattr(cls, method, function)
        if experiment:  # the check takes the student's function
            name = task["functions"][gid]
            cls = namespace.get(name)
            if not callable(cls):
                raise NameError(f"your cell does not define the function {name}")
        else:
            cls = namespace.get("StableDiffusion")
            if not isinstance(cls, type):
                raise NameError("your cells do not define the class StableDiffusion")
    except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
        message = tr_pair(language, "Your cell could not run: {error}: {text}",
                        error=type(error).__name__, text=str(error).strip()[:300])
        flag = {"MemoryError": "memory limit", "SystemExit": "kernel stopped",
                "KeyboardInterrupt": "kernel stopped"}.get(type(error).__name__)
        finish({"visible": [False, *message], "hidden": [False, *message]},
               flag or _blocked_flag(error))
    flag = None
    review = []  # what the check noticed about the results (a tensor subclass): for the staff
    for cases in ("visible", "hidden"):
        try:
            report = check(cls, cases)
            ok = (type(report) is report_type and type(report.problems) is list
                  and len(report.problems) == 0)
            message = (tr_pair(language, "passed") if ok else
                       [str(report_type.message_in(report, code))[:2000]
                        for code in ("en", language)])
            if type(report) is report_type and type(report.review) is list:
                review += [note for note in report.review
                           if render(note, "en") not in {render(n, "en") for n in review}]
        except BaseException as error:  # noqa: BLE001 - the student's code may raise anything
            ok, message = False, tr_pair(language, "Your code stopped the test: {error}: {text}",
                                       error=type(error).__name__,
                                       text=str(error).strip()[:300])
            flag = flag or _blocked_flag(error)
        verdict[cases] = [ok, *message]
    changed = _tampered(before)
    if not changed and _fingerprint(checks.references()) != reference_print:
        changed = ["the reference tensors"]
    if changed:
        _restore(before)
        message = tr_pair(language, "Your code changed the tools the tests use ({what}): no "
                        "points for this blank.", what=", ".join(changed[:3]))
        finish({"visible": [False, *message], "hidden": [False, *message]}, "tampering")
    flag_shown = None
    if review:  # for the staff in English; the student reads it in their language
        notes = {code: ", ".join(render(note, code)[:200] for note in review[:3])
                 for code in ("en", language)}
        flag_shown = "; ".join(filter(None, [flag and tr_in(language, flag), tr_in(
            language, "review: {notes}", notes=notes[language])]))
        flag = "; ".join(filter(None, [flag, tr_in("en", "review: {notes}", notes=notes["en"])]))
    finish(verdict, flag, flag_shown)


def _run_blank(task: dict, blank: int, base_namespace: dict, reference_print: str,
               timeout: float) -> tuple[dict, str | None, str | None]:
    """(results, flag, the flag in the task's language where it differs or None)."""
    read_fd, write_fd = os.pipe()
    nonce = secrets.token_hex(16)  # a verdict without it was not written by the harness
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_fd)
            _child(task, blank, base_namespace, reference_print, write_fd, nonce)
        finally:
            os._exit(3)
    os.close(write_fd)
    chunks, size = [], 0
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        if size < RESULT_LIMIT:
            chunks.append(chunk)
        size += len(chunk)
    os.close(read_fd)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)  # anything the blank started in the background
    except (ProcessLookupError, PermissionError):
        pass
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(Path(task["scratch"]) / f"blank{blank}", ignore_errors=True)
    language = task.get("language", "en")
    if timed_out:
        message = tr_pair(language, "Your code ran longer than the {limit} s limit (an endless "
                        "loop or a long sleep?), so its tests could not finish.",
                        limit=format(timeout, "g"))
        return {"visible": [False, *message], "hidden": [False, *message]}, "time limit", None
    data = b"".join(chunks)
    if size > RESULT_LIMIT:
        data = b""
    try:
        parsed = json.loads(data.decode())
        results = parsed["results"]
        assert set(results) == {"visible", "hidden"} and parsed["nonce"] == nonce
        return results, parsed.get("flag"), parsed.get("flag_shown")
    except Exception:  # noqa: BLE001 - no verdict: say why the process ended
        if data:
            message = tr_pair(language, "Your code wrote into the grader's result channel, so "
                            "this blank's result cannot be trusted: no points for it.")
            return {"visible": [False, *message], "hidden": [False, *message]}, "tampering", None
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        why = {signal.SIGXCPU: (N_("Your code used more than its CPU time limit, so this "
                                   "blank's tests could not finish."), "time limit"),
               signal.SIGKILL: (N_("Your code was stopped (out of memory, or over a limit), so "
                                   "this blank's tests could not finish."), "killed"),
               signal.SIGXFSZ: (N_("Your code wrote a file larger than the limit, so this "
                                   "blank's tests could not finish."), "disk limit"),
               signal.SIGSEGV: (N_("Your code crashed (segmentation fault), so this blank's "
                                   "tests could not finish."), "crash")}.get(
                   number, (N_("Your code was stopped by signal {number}, so this blank's tests "
                               "could not finish."), "crash"))
    else:
        why = (N_("Your code ended the Python process (exit code {number}) before the tests "
                  "could report, so this blank's tests could not finish."), "kernel stopped")
        number = os.WEXITSTATUS(status)
    message = tr_pair(language, why[0], number=number)
    return {"visible": [False, *message], "hidden": [False, *message]}, why[1], None


_PROTOCOL_FD = None


def _cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def worker_main() -> None:
    global _PROTOCOL_FD
    _PROTOCOL_FD = os.dup(1)
    protocol = os.fdopen(_PROTOCOL_FD, "w", buffering=1)
    os.dup2(2, 1)  # anything the warm-up prints goes to stderr, never into the protocol
    import torch

    torch.set_num_threads(1)
    from sdskit import checks

    checks.references()
    checks._tiny_components()
    from sdskit.i18n import LANGUAGES

    for code in LANGUAGES:  # each catalogue read once, before the forks
        tr_in(code, "passed")
    ipython_cells.to_python("%time")  # IPython's transformer, loaded once before the forks
    reference_print = _fingerprint(checks.references())
    base_namespace = None
    for line in sys.stdin:
        task = json.loads(line)
        if base_namespace is None:  # the trusted setup: the release's imports cell
            base_namespace = {"__name__": "__main__"}
            exec(compile(task["setup"], "<setup>", "exec"), base_namespace)  # noqa: S102
        Path(task["scratch"]).mkdir(parents=True, exist_ok=True)
        started, cpu_before = time.monotonic(), _cpu_seconds()
        answer = {}
        for blank in task["blanks"]:
            gid = task["blank_cells"][str(blank)]
            if gid not in task["cells"]:
                answer[blank] = {"results": None, "flag": None}
                continue
            left = task["limits"]["student_s"] - (time.monotonic() - started)
            if left <= 1:
                message = tr_pair(task.get("language", "en"), "Not graded: the notebook used up "
                                "its total time limit first.")
                answer[blank] = {"results": {"visible": [False, *message],
                                             "hidden": [False, *message]}, "flag": "time limit"}
                continue
            results, flag, flag_shown = _run_blank(task, blank, base_namespace, reference_print,
                                                   min(task["limits"]["blank_s"], left))
            answer[blank] = {"results": results, "flag": flag, "flag_shown": flag_shown}
        shutil.rmtree(task["scratch"], ignore_errors=True)
        if os.environ.get("SDSKIT_SANDBOXED") == "1":  # the sandbox's own /tmp: empty it, so
            for left in Path("/tmp").iterdir():      # nothing passes to the next student
                if left.is_dir() and not left.is_symlink():
                    shutil.rmtree(left, ignore_errors=True)
                else:
                    left.unlink(missing_ok=True)
        # CPU seconds of this worker and its reaped children (bubblewrap hides them from
        # the parent's own accounting): for this student, and since the worker started.
        answer["cpu"] = {"student": _cpu_seconds() - cpu_before, "total": _cpu_seconds()}
        protocol.write(json.dumps(answer) + "\n")


def limits() -> dict:
    return {"cpu_s": COURSE.blank_cpu_s, "memory_mb": COURSE.blank_memory_mb,
            "file_mb": COURSE.blank_file_mb, "output_kb": COURSE.blank_output_kb,
            "blank_s": COURSE.blank_timeout_s, "student_s": COURSE.student_timeout_s}


def kit_fingerprint() -> str:
    """Changes whenever anything that decides a grade, or how its messages read, changes
    (tests, references, harness, the catalogues, how an edition is told)."""
    digest = hashlib.sha256()
    for path in [ROOT / "sdskit" / "checks.py", ROOT / "sdskit" / "experiment_checks.py",
                 ROOT / "sdskit" / "config.py",
                 ROOT / "sdskit" / "i18n.py", *sorted((ROOT / "sdskit" / "locale").rglob("*.mo")),
                 ROOT / "autograder" / "sandbox.py", ROOT / "autograder" / "locate.py",
                 ROOT / "autograder" / "ipython_cells.py", ROOT / "autograder" / "edition.py",
                 ROOT / "autograder" / "grade.py", ROOT / "autograder" / "written.py",
                 REFERENCES, HIDDEN_REFERENCES,
                 ROOT / "notebooks" / COURSE.notebooks[0]]:
        digest.update(path.read_bytes())
    digest.update(json.dumps(limits(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    worker_main()
