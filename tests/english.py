"""English sentences in a notebook's outputs: what the Korean edition's run tests look for
(tests/test_student_bundle.py).

What is read, as a student sees it: the text a cell prints (stdout; stderr less the lines
libraries log there, such as `[transformers] ...` and Python's `...py:12: FutureWarning: ...`
warnings with the source line after them), the text of each displayed result (`text/plain`; of
`text/html` its visible text and its `alt` and `title` attributes, not the 3D viewer's embedded
page, which is three.js's), and each error's message (not its type, a Python name, nor the
traceback, which shows code).

What counts as English:
- A run of at least four English words in a row (`english_runs`). A word is a token of
  letters only, lower case or capitalised, optionally hyphenated (`right-drag`), with
  punctuation around it; anything with a digit, an underscore, a dot or a bracket inside
  (`min_step`, `torch.float32`, `mesh.glb`, `(1, 4, 64, 64)`), a capital letter inside
  (`StableDiffusion`, `NotImplementedError`, `IoU`), an acronym (`GPU`, `RMS`), a single
  letter other than "a" and "I" (`t`), Python's `True`, `False`, `None`, or a Hangul letter
  ends a run. Text inside backticks is code and is skipped. Proper names of two or three words
  (Stable Diffusion) stay below the threshold.
- A fragment of the kit's own English (a catalogue message, sdskit/locale/, split at its
  `{placeholders}` and line breaks) of at least two words, found whole in the output
  (`catalogue_fragments`): the kit's words printed untranslated. A fragment that its own
  translation keeps (a formula such as `d loss / d latents`) does not count.
Shorter English outside the catalogue (a lone "expect") is not found; every message the kit
prints goes through the catalogue, whose own test (tests/test_catalogue.py) fails on a message
without Korean.
"""

import html
import re

WORD = re.compile(r"^[\"'“‘(\[<]*([A-Za-z][a-z]*(?:['’][a-z]+)?|[a-z]+(?:-[a-z]+)+)"
                  r"[\"'”’)\]>.,:;!?]*$")
NOT_WORDS = {"True", "False", "None"}
CODE_SPAN = re.compile(r"`[^`\n]*`")
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
LIBRARY_LINE = re.compile(r"^\[[\w.-]+\] |^\S+\.py:\d+: \w*Warning: ")
RUN = 4  # words in a row that make a sentence


def is_word(token: str) -> bool:
    match = WORD.match(token)
    if not match:
        return False
    word = match.group(1)
    return word not in NOT_WORDS and (len(word) > 1 or word in "aAI")


def english_runs(text: str, at_least: int = RUN) -> list[str]:
    """Every run of `at_least` or more English words in a row, outside backticks."""
    runs, run = [], []
    for token in CODE_SPAN.sub(" ", text).split() + [""]:
        if token and is_word(token):
            run.append(token)
            continue
        if len(run) >= at_least:
            runs.append(" ".join(run))
        run = []
    return runs


def _stderr_text(text: str) -> str:
    """stderr less what libraries log there (a Python warning's source line follows it)."""
    kept, skip_next = [], False
    for line in text.splitlines():
        if skip_next:
            skip_next = False
            continue
        if LIBRARY_LINE.search(line):
            skip_next = "Warning: " in line
            continue
        kept.append(line)
    return "\n".join(kept)


def _visible_html(page: str) -> str:
    """The text a reader sees in an HTML output, with its alt and title attributes."""
    attributes = re.findall(r'\b(?:alt|title)="([^"]*)"', page)
    page = re.sub(r'\ssrcdoc="[^"]*"', "", page)  # an embedded page (the 3D viewer's)
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(" ".join([page, *attributes]))


def output_texts(notebook: dict) -> list[tuple[str, str]]:
    """(cell's grade_id, text) for every output a reader sees as text."""
    found = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id", "?")
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                text = "".join(output["text"])
                found.append((gid, _stderr_text(text) if output["name"] == "stderr" else text))
            elif kind == "error":
                found.append((gid, output["evalue"]))
            else:
                data = output.get("data", {})
                found.append((gid, "".join(data.get("text/plain", ""))))
                if "text/html" in data:
                    found.append((gid, _visible_html("".join(data["text/html"]))))
    return found


def catalogue_fragments(language: str) -> set[str]:
    """The kit's English, in pieces of two or more words that `language` does not keep."""
    from scripts import make_catalogue
    from sdskit.i18n import tr_in

    pieces = set()
    for message in make_catalogue.template():
        if not message.id:
            continue
        translated = tr_in(language, message.id)
        for piece in PLACEHOLDER.split(message.id):
            for line in piece.splitlines():
                line = " ".join(line.split())
                if sum(map(is_word, line.split())) >= 2 and line not in translated:
                    pieces.add(line)
    return pieces


def english_in_outputs(notebook: dict, language: str = "ko") -> list[tuple[str, str]]:
    """(grade_id, the English) for each English sentence or kit fragment in the outputs."""
    fragments = catalogue_fragments(language)
    found = []
    for gid, text in output_texts(notebook):
        plain = " ".join(CODE_SPAN.sub(" ", text).split())
        found += [(gid, run) for run in english_runs(text)]
        found += [(gid, piece) for piece in sorted(fragments) if piece in plain]
    return found
