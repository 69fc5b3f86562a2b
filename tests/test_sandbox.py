"""What the grading sandbox blocks: a student's cell probes it from inside, and reports every
attempt that worked in the error it raises; nothing may work. Also the limits, directly."""

import json
import secrets
import shutil
import sys
from pathlib import Path

import pytest

from autograder import locate, sandbox, submissions
from sdskit.paths import REFERENCES, ROOT

PROBE = """
import os, socket
worked = []
def attempt(name, action):
    try:
        action()
        worked.append(name)
    except BaseException:
        pass
attempt("network", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("write references", lambda: open({references!r}, "ab").write(b"0"))
attempt("write kit code", lambda: open({kit!r}, "a").write("# hacked"))
attempt("read hidden tests", lambda: open({solutions!r}).read())
attempt("read another student", lambda: open({other!r}).read())
attempt("read the gradebook", lambda: open({gradebook!r}).read())
attempt("read the example answers", lambda: open({answers!r}).read())
attempt("see the repository beyond sdskit/, assets/, the worker and the Python environment",
        lambda: [n for n in os.listdir({repo!r}) if n not in {allowed!r}][0])
attempt("leave a file for the next student", lambda: open("/tmp/planted", "w").write("x"))

raise RuntimeError("PROBE worked=" + ",".join(worked))
"""


def run_cell(blank: int, code: str, timeout: float = 60, language: str = "en") -> dict:
    release = locate.release_cells()
    cells = {locate.BLANK_CELLS[b]: "" for b in locate.BLANK_CELLS}
    cells[locate.BLANK_CELLS[blank]] = code
    task = {"setup": release["imports"], "release_class": release["blank1_2_class"],
            "cells": cells, "blanks": [blank],
            "blank_cells": {str(b): g for b, g in locate.BLANK_CELLS.items()},
            "methods": locate.METHODS, "limits": {**sandbox.limits(), "blank_s": timeout},
            "language": language, "scratch": f"/tmp/sandbox-test-{secrets.token_hex(4)}"}
    if _WORKER[0] is None:
        _WORKER[0] = sandbox.Worker()  # one warm worker serves every test here, as in grading
    return _WORKER[0].grade(task, timeout + 120)[str(blank)]


_WORKER = [None]


@pytest.fixture(scope="module", autouse=True)
def _close_worker():
    yield
    if _WORKER[0] is not None:
        _WORKER[0].close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outside")
    (folder / "alice").mkdir()
    (folder / "alice" / submissions.NOTEBOOK).write_text("{}")
    (folder / "gradebook.db").write_text("secret")
    return folder


def visible_in_repository() -> set[str]:
    """What the sandbox shows of the repository: the kit's code and assets, read-only, and the
    Python environment when it lives inside the repository (make's .venv), read-only too."""
    allowed = {"sdskit", "assets", "autograder"}  # of autograder/, only the worker's own files
    for prefix in {sys.prefix, sys.exec_prefix}:
        if Path(prefix).is_relative_to(ROOT):
            allowed.add(Path(prefix).relative_to(ROOT).parts[0])
    return allowed


@pytest.mark.skipif(sandbox.sandbox_kind() != "bwrap", reason="bubblewrap is not available")
def test_sandbox_blocks_network_files_and_leftovers(outside):
    before = REFERENCES.read_bytes()
    code = PROBE.format(references=str(REFERENCES), kit=str(ROOT / "sdskit" / "checks.py"),
                        solutions=str(ROOT / "solutions" / submissions.NOTEBOOK),
                        other=str(outside / "alice" / submissions.NOTEBOOK),
                        gradebook=str(outside / "gradebook.db"), repo=str(ROOT),
                        answers=str(ROOT / "autograder" / "submissions.py"),
                        allowed=visible_in_repository())
    result = run_cell(6, code)
    message = result["results"]["visible"][1]
    assert "PROBE worked=" in message, message
    worked = message.split("PROBE worked=")[1].split(",")
    # Only the child's own scratch and /tmp are writable, and /tmp is emptied between students.
    assert [w.strip() for w in worked if w.strip()] == ["leave a file for the next student"]
    assert REFERENCES.read_bytes() == before


def test_limits_stop_runaway_code():
    looping = run_cell(5, "while True:\n    pass", timeout=4)
    assert looping["flag"] == "time limit" and not looping["results"]["hidden"][0]
    memory = run_cell(7, "hog = bytearray(64 * 2**30)")
    assert memory["flag"] == "memory limit"


def test_verdicts_come_from_the_harness():
    forged = json.dumps({"results": {"visible": [True, "passed"], "hidden": [True, "passed"]},
                         "flag": None})
    code = ("import os\nfor fd in range(3, 256):\n    try:\n"
            f"        os.write(fd, {forged.encode()!r})\n    except OSError:\n        pass\n"
            "os._exit(0)")
    result = run_cell(6, code)
    assert result["flag"] == "tampering"
    assert not result["results"]["visible"][0]


def test_each_verdict_comes_in_english_and_in_the_students_language():
    """[passed, English, Korean]: the class report reads the English, a Korean student's
    feedback the Korean; the check's own message, and the harness's, rendered both ways."""
    from sdskit.i18n import tr_in

    wrong = submissions.MISTAKES[6].replace("grad = ", "    grad = ")
    code = f"def sds_gradient(self, noise_pred, noise, w):\n{wrong}\n    return grad\n"
    result = run_cell(6, code, language="ko")
    ok, english, korean = result["results"]["visible"]
    assert not ok
    hint = "the sign is flipped: it is the predicted noise minus the noise that was added."
    assert hint in english and tr_in("ko", hint) in korean and hint not in korean
    looping = run_cell(5, "while True:\n    pass", timeout=3, language="ko")["results"]["visible"]
    assert "longer than the 3 s limit" in looping[1] and "제한 시간 3초" in looping[2], looping


def test_rebinding_the_message_catalogue_is_tampering():
    """The messages are worded by sdskit.i18n: a cell that rebinds it voids the blank."""
    code = ("import sdskit.i18n\nsdskit.i18n.tr_in = lambda code, message, **values: 'passed'\n"
            "def sds_gradient(self, noise_pred, noise, w):\n    return w * (noise_pred - noise)\n")
    result = run_cell(6, code)
    assert result["flag"] == "tampering" and not result["results"]["visible"][0]
    assert "sdskit.i18n.tr_in" in result["results"]["visible"][1]
