"""The pages TAs grade written answers on: OUT/written/<grade_id>.html, one per question, and
the scores file they fill in, OUT/written/scores.csv (`write_outputs`, from grade.py).

Each page starts with the question's model answer and rubric (from solutions/), then holds
every student's answer, rendered as the notebook renders markdown (formulas by MathJax),
each under the student's id or, with `--blind`, an anonymous label; the points and comment
already given, if any. A student's text is untrusted: its HTML is shown as text, not run.
"""

import html
from pathlib import Path

from autograder import written, written_scores
from sdskit.i18n import language, tr

# The MathJax that nbconvert's HTML pages load (so formulas look as in the notebook).
MATHJAX = ("https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js"
           "?config=TeX-AMS_CHTML-full,Safe")
_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 1em auto; padding: 0 1em; line-height: 1.45; }
section.answer { border: 1px solid #888; border-radius: 4px; margin: 1em 0; }
section.answer > h2 { font-size: 1em; background: #e8eef7; margin: 0; padding: 4px 8px;
  border-bottom: 1px solid #888; }
section.answer > h2 span.score { float: right; font-weight: normal; }
section.answer > div.body { padding: 0 8px; overflow-wrap: anywhere; }
section.answer p.empty { color: #b00020; }
div.model, div.question { background: #f6f6f0; border: 1px solid #bbb; padding: 0 1em; }
pre { white-space: pre-wrap; }
"""


def render_markdown(text: str, attachments: dict | None = None) -> str:
    """Markdown as HTML, the way the notebook shows it, with any HTML in it escaped (a
    student's answer cannot run script on a TA's page) and formulas left to MathJax."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=True, allow_harmful_protocols=False,
                               exclude_anchor_links=True, attachments=attachments or {})
    try:
        return MarkdownWithMath(renderer=renderer).render(text)
    except Exception:  # noqa: BLE001 - e.g. a missing attachment: show the text as it is
        return f"<pre>{html.escape(text)}</pre>"


def page(title: str, body: str) -> str:
    config = ("MathJax.Hub.Config({tex2jax: {inlineMath: [['$','$'], ['\\\\(','\\\\)']], "
              "processEscapes: true}});")
    return (f"<!DOCTYPE html><html lang='{language()}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script type='text/x-mathjax-config'>{config}</script>"
            f"<script src='{MATHJAX}'></script></head><body>{body}</body></html>")


def _text(message: str) -> str:
    """A message of the kit (already translated), as HTML text."""
    return html.escape(message)


def question_page(question, rows: list[tuple[str, str | None, object]]) -> str:
    """rows: (who, answer, Score or None) per student, in the order shown."""
    title = question.title(language())
    heading = tr("Written question: {title}", title=title)
    about = tr("{gid}, {points} points, {count} students.", gid=question.grade_id,
               points=written.points_text(question.points), count=len(rows))
    how = tr("Give each answer its points in the scores file (student, question, points, "
             "comment), then run grade.py again with --written-scores FILE.")
    model = render_markdown(written.model_answer(question.grade_id, language()))
    rubric = tr("Model answer and rubric")
    asked = tr("The question")
    parts = [f"<h1>{_text(heading)}</h1>", f"<p>{_text(about)}</p>"]
    if question.text(language()):
        parts += [f"<h2>{_text(asked)}</h2>",
                  f"<div class='question'>{render_markdown(question.text(language()))}</div>"]
    parts += [f"<h2>{_text(rubric)}</h2>", f"<div class='model'>{model}</div>",
              f"<p>{_text(how)}</p>"]
    for who, answer, score in rows:
        if score is not None and score.points is not None:
            given = tr("{points} / {maximum} points", points=written.points_text(score.points),
                       maximum=written.points_text(question.points))
        elif not answer:
            given = tr("0 points (no response)")
        else:
            given = tr("not graded yet")
        if answer is None:
            missing = tr("No answer cell was found in this notebook (deleted, or moved without "
                         "its labels): look at the notebook itself.")
            body = f"<p class='empty'>{_text(missing)}</p>"
        elif not answer:
            empty = tr("No response: the answer cell is as it was released.")
            body = f"<p class='empty'>{_text(empty)}</p>"
        else:
            body = render_markdown(answer)
        if score is not None and score.comment:
            label = tr("Comment:")
            body += f"<p><b>{_text(label)}</b> {_text(score.comment)}</p>"
        anchor = html.escape(who, quote=True)
        parts.append(f"<section class='answer' id='{anchor}'><h2>{_text(who)}"
                     f"<span class='score'>{_text(given)}</span></h2>"
                     f"<div class='body'>{body}</div></section>")
    return page(heading, "\n".join(parts))


def write_pages(folder: Path, asked, students: list[str], answers: dict, scores: dict,
                labels: dict[str, str] | None) -> list[Path]:
    """OUT/written/<grade_id>.html for each question. answers: {student: {grade_id: text}};
    labels: show each student's anonymous label instead of the id (sorted by label)."""
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted(students, key=lambda s: labels[s]) if labels else students
    written_paths = []
    for question in asked:
        rows = [(labels[s] if labels else s, answers.get(s, {}).get(question.grade_id),
                 scores.get((s, question.grade_id))) for s in order]
        path = folder / f"{question.grade_id}.html"
        path.write_text(question_page(question, rows), encoding="utf-8")
        written_paths.append(path)
    return written_paths


def write_outputs(results: list, out: Path, scores: dict, blind: bool, given: bool) -> None:
    """OUT/written/: a page per written question with every answer, and scores.csv to fill in
    (with the scores read, if any). A scores.csv that holds scores is never replaced by an
    empty one: without --written-scores it is kept, and the message says how to record it."""
    asked = written.questions()
    if not asked:
        return
    folder = out / "written"
    students = [r.student_id for r in results]
    labels = written_scores.extend_labels(folder / "labels.csv", students) if blind else None
    answers = {r.student_id: r.written for r in results}
    write_pages(folder, asked, students, answers, scores, labels)
    path = folder / "scores.csv"
    if not given and written_scores.holds_scores(path):
        print(tr("kept {path}: it holds scores already. To record them, run again with "
                 "--written-scores {path}.", path=path))
    else:
        written_scores.write_scores(path, students, asked, answers, scores, labels)
    pending = sum(written_scores.effective(r.written.get(q.grade_id),
                                    scores.get((r.student_id, q.grade_id))) is None
                  for r in results for q in asked)
    print(tr("written answers: {pending} of {total} still to grade; one page per question in "
             "{folder}/, the scores to fill in: {path} (then run again with --written-scores "
             "FILE)", pending=pending, total=len(results) * len(asked), folder=folder, path=path))
