"""Run a notebook cell's text as a Jupyter kernel would: IPython syntax included.

Students write `%matplotlib inline`, `%%time`, `!nvidia-smi`, `x = !ls` and `get_ipython()` in
their cells, since Colab and Jupyter run them. Plain Python cannot compile them, so every
student cell first goes through IPython's own input transformation (`to_python`), which turns
that syntax into calls on `get_ipython()`; `GraderShell` is the small object `get_ipython()`
returns while grading. It runs what changes the cell's result (the body of `%%time`,
`%%capture`, `%%timeit` and the statement of `%time`, `%timeit`, once, in the cell's
namespace; `%%writefile`; `%env`, `%cd`) and shell escapes (`!cmd`, `%%bash`, `%sx`), and
skips everything else (`%matplotlib`, `%load_ext`, `%pip`, `%config`, unknown magics), so that
a correct answer never loses points for the IPython syntax around it. Shell escapes run in
the grading sandbox: no network, the kit read-only, the blank's limits.
"""

import os
import re
import subprocess
import sys

_OUTPUT_LIMIT = 64 * 1024  # characters of a shell command's output kept by `x = !cmd`
# Leading options of %timeit / %%timeit (-n 10 -r 3 -q ...), which are not code.
_TIMEIT_OPTIONS = re.compile(r"^\s*(?:(?:-[nrp]\s*\d+|-[tcqo])(?:\s+|$))*")
_SHELL_CELLS = {"bash", "sh", "script", "system"}
_CODE_CELLS = {"time", "capture", "timeit", "prun"}


def to_python(cell: str) -> str:
    """A cell's text with IPython syntax turned into plain Python (what Jupyter runs)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(cell)
    except Exception:  # noqa: BLE001 - leave the text as it was; compiling it reports the problem
        return cell


class CapturedOutput:
    """What `%%capture name` binds: the text the cell printed."""

    def __init__(self, stdout: str, stderr: str):
        self.stdout, self.stderr, self.outputs = stdout, stderr, []

    def show(self):
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)

    __call__ = show


class _Capture:
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(str(text))
        return len(text)

    def flush(self):
        pass


class _Events:
    """`get_ipython().events`: callbacks are accepted and never called."""

    def register(self, event, function):
        pass

    unregister = register


class GraderShell:
    """The stand-in for IPython's InteractiveShell that `get_ipython()` returns in a graded cell.

    user_ns: the namespace the cell runs in (its globals).
    """

    def __init__(self, user_ns: dict):
        self.user_ns = user_ns
        # IPython's hooks, there so that code using them runs; grading never calls them (and
        # locate.py flags such code for review).
        self.input_transformers_cleanup, self.input_transformers_post = [], []
        self.ast_transformers, self.events = [], _Events()

    def set_custom_exc(self, exc_tuple, handler):
        pass

    def showtraceback(self, *args, **kwargs):
        pass

    # --- code ----------------------------------------------------------------------------
    def run_cell(self, cell: str, *args, local_ns: dict | None = None, **kwargs):
        code = compile(to_python(cell), "<your cell>", "exec")
        exec(code, self.user_ns, self.user_ns if local_ns is None else local_ns)  # noqa: S102

    def ex(self, cmd: str):
        self.run_cell(cmd)

    def ev(self, expr: str):
        return eval(to_python(expr), self.user_ns)  # noqa: S307

    # --- magics --------------------------------------------------------------------------
    def run_line_magic(self, magic_name: str, line: str, _stack_depth: int = 1):
        if magic_name in ("time", "timeit", "prun"):
            if magic_name == "timeit":
                line = _TIMEIT_OPTIONS.sub("", line, count=1)
            # As IPython does: the statement sees the names where the magic was written (a
            # method's locals, or the cell's globals).
            self.run_cell(line, local_ns=sys._getframe(_stack_depth).f_locals)
        elif magic_name in ("sx", "system"):
            return self.getoutput(line)
        elif magic_name == "env" and "=" in line:
            name, _, value = line.partition("=")
            os.environ[name.strip()] = value.strip()
        elif magic_name == "env" and len(line.split()) == 2:
            name, value = line.split()
            os.environ[name] = value
        elif magic_name == "cd" and line.strip():
            try:
                os.chdir(os.path.expanduser(line.strip().strip("'\"")))
            except OSError as error:
                print(error)
        return None  # %matplotlib, %load_ext, %pip, %config, ... and unknown magics: skipped

    def run_cell_magic(self, magic_name: str, line: str, cell: str):
        if magic_name in _CODE_CELLS:
            if magic_name == "timeit":
                setup = _TIMEIT_OPTIONS.sub("", line, count=1)
                if setup.strip():
                    self.run_cell(setup)
            if magic_name == "capture":
                return self._capture(line, cell)
            self.run_cell(cell)
        elif magic_name == "writefile":
            words = line.split()
            append = "-a" in words or "--append" in words
            names = [w for w in words if not w.startswith("-")]
            if names:
                with open(os.path.expanduser(names[0].strip("'\"")), "a" if append else "w") as f:
                    f.write(cell)
        elif magic_name in _SHELL_CELLS:
            program = line.split()[0] if magic_name == "script" and line.split() else "sh"
            self._run([program if magic_name != "bash" else "bash"], stdin=cell)
        return None  # %%html, %%markdown, %%javascript, ... and unknown magics: skipped

    def magic(self, arg_s: str):
        """The old spelling, `get_ipython().magic('matplotlib inline')`."""
        name, _, line = arg_s.lstrip("%").partition(" ")
        return self.run_line_magic(name, line, _stack_depth=2)

    def _capture(self, line: str, cell: str):
        out, err = _Capture(), _Capture()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            self.run_cell(cell)
        finally:
            sys.stdout, sys.stderr = saved
        names = [w for w in line.split() if not w.startswith("-")]
        if names:
            self.user_ns[names[0]] = CapturedOutput("".join(out.parts), "".join(err.parts))

    # --- shell escapes -------------------------------------------------------------------
    def _run(self, command: list[str], stdin: str | None = None, capture: bool = False):
        feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        try:
            done = subprocess.run(command, text=True, errors="replace",
                                  stdout=subprocess.PIPE if capture else None,
                                  stderr=subprocess.STDOUT if capture else None, **feed)
        except OSError as error:  # the program is not there: as a shell says, not a crash
            print(error)
            self.user_ns["_exit_code"] = 127
            return subprocess.CompletedProcess(command, 127, "")
        self.user_ns["_exit_code"] = done.returncode
        return done

    def system(self, cmd: str):
        """`!cmd`: run it with /bin/sh, output to the cell's (discarded) output."""
        self._run(["/bin/sh", "-c", cmd])

    system_piped = system_raw = system

    def getoutput(self, cmd: str, split: bool = True, depth: int = 0):
        """`x = !cmd`: run it and return its output lines."""
        text = (self._run(["/bin/sh", "-c", cmd], capture=True).stdout or "")[:_OUTPUT_LIMIT]
        return text.splitlines() if split else text


def display(*objects, **kwargs):
    """IPython's `display`, which notebooks use without importing it: print instead."""
    for item in objects:
        print(repr(item))


def notebook_names(user_ns: dict) -> dict:
    """The names a Jupyter kernel gives every cell without an import, bound to `user_ns`."""
    shell = GraderShell(user_ns)
    return {"get_ipython": lambda: shell, "display": display}
