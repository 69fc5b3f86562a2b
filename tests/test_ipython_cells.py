"""Cells with IPython syntax run as in Jupyter (autograder/ipython_cells.py): the grader's side
of the corpus cases `ipython_magics` and `ipython_cell_magics`, without the sandbox."""

from autograder import ipython_cells


def run(*cells: str) -> dict:
    namespace: dict = {}
    namespace.update(ipython_cells.notebook_names(namespace))
    for cell in cells:
        exec(compile(ipython_cells.to_python(cell), "<cell>", "exec"), namespace)  # noqa: S102
    return namespace


def test_cell_magics_run_their_body_in_the_cells_namespace():
    ns = run("%%time\ndef double(a):\n    return 2 * a\n",
             "%%timeit -n 1 -r 1\nfour = double(2)",
             "%%capture out\nprint('hello')")
    assert ns["double"](3) == 6 and ns["four"] == 4
    assert ns["out"].stdout == "hello\n"


def test_line_magics_and_get_ipython():
    ns = run("%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n%pip install nothing\n"
             "%config InlineBackend.figure_format = 'retina'\n%no_such_magic at all\n"
             "%time x = 1 + 1\nget_ipython().run_line_magic('matplotlib', 'inline')\n"
             "get_ipython().magic('time y = x * 3')",
             "def f(a):\n    %time b = a + 1\n    return a\n")
    assert ns["x"] == 2 and ns["y"] == 6 and ns["f"](5) == 5
    assert ns["get_ipython"]().user_ns is ns


def test_shell_escapes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = run("!echo one > made.txt\nlines = !echo two; echo three\n!no-such-program-here",
             "%%writefile notes.txt\nsome text\n")
    assert (tmp_path / "made.txt").read_text() == "one\n"
    assert ns["lines"] == ["two", "three"]
    assert ns["_exit_code"] == 127  # a missing program is the shell's answer, not an error
    assert (tmp_path / "notes.txt").read_text() == "some text\n"


def test_plain_python_is_left_alone():
    text = "x = 10 % 3\ny = (7\n     % 4)\ndef f(a):\n    return a % 2\n"
    assert ipython_cells.to_python(text) == text
