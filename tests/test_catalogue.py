"""The message catalogues (sdskit/i18n.py, scripts/make_catalogue.py): every message the kit
says has a current translation with the same placeholders, the generated files match their
sources, and each kind of problem is caught."""

import copy

import pytest

from scripts import make_catalogue
from sdskit import i18n

LANGUAGE = make_catalogue.translated_languages()[0]  # "ko"


def test_every_message_has_a_current_translation_and_the_files_are_generated():
    found = make_catalogue.problems()
    assert not found, ("the catalogues need work (python scripts/make_catalogue.py):\n"
                       + "\n".join(f"- {p}" for p in found))


@pytest.fixture(scope="module")
def catalogue():
    return make_catalogue.merged(LANGUAGE)


def _one_translated(catalog):
    """A translated message with placeholders and no twin that differs only in case ("Blank
    {number}" and "blank {number}"): Babel's fuzzy merge would take the twin for its old English."""
    lowered = [m.id.lower() for m in catalog if m.id]
    return next(m for m in catalog if m.id and m.string and i18n.N_(m.id)
                and make_catalogue.placeholders(m.id) and lowered.count(m.id.lower()) == 1)


def test_a_missing_translation_is_named(catalogue):
    catalog = copy.deepcopy(catalogue)
    message = _one_translated(catalog)
    message.string = ""
    found = make_catalogue.message_problems(catalog, LANGUAGE)
    assert found == [f"[{LANGUAGE}] no translation: {message.id!r}"]


def test_a_message_whose_english_changed_is_stale(catalogue):
    """Babel's merge keeps the old translation of a changed English message, marked fuzzy with
    the old English beside it; the check calls it stale, with both."""
    template = make_catalogue.template()
    message = _one_translated(catalogue)
    changed = message.id.replace(" ", "  ", 1)  # the English edited a little
    template.delete(message.id)
    template.add(changed)
    catalog = copy.deepcopy(catalogue)
    catalog.update(template)
    found = make_catalogue.message_problems(catalog, LANGUAGE)
    assert len(found) == 1 and found[0].startswith(f"[{LANGUAGE}] stale:"), found
    assert repr(message.id) in found[0] and repr(changed) in found[0]


def test_a_placeholder_mismatch_is_named(catalogue):
    catalog = copy.deepcopy(catalogue)
    message = _one_translated(catalog)
    field = make_catalogue.placeholders(message.id)[0]
    message.string = message.string.replace("{" + field + "}", "{" + field + "_typo}")
    found = make_catalogue.message_problems(catalog, LANGUAGE)
    assert len(found) == 1 and "placeholders differ" in found[0], found


def test_an_f_string_message_cannot_be_extracted_and_is_reported(capsys):
    code = 'name = "x"\nprint(tr(f"Hello {name}"))\nprint(tr("Hello {name}", name=name))\n'
    assert make_catalogue.messages_in_code(code, where="cell") == ["Hello {name}"]
    assert "cell:2: warning: Skipping f-string" in capsys.readouterr().err


def test_the_language_comes_from_the_environment_then_the_notebook(monkeypatch):
    message = "{blank}: all checks passed."
    monkeypatch.delenv(i18n.ENVIRONMENT, raising=False)
    monkeypatch.setattr(i18n, "_chosen", None)
    assert i18n.tr(message, blank="B") == "B: all checks passed."
    i18n.set_language(LANGUAGE)
    korean = i18n.tr(message, blank="B")
    assert korean != "B: all checks passed." and korean.startswith("B")
    monkeypatch.setenv(i18n.ENVIRONMENT, "en")  # the grader's choice wins
    assert i18n.tr(message, blank="B") == "B: all checks passed."
    assert i18n.tr_in(LANGUAGE, message, blank="B") == korean
    with pytest.raises(ValueError, match="Unknown language 'xx'"):
        i18n.set_language("xx")


def test_a_lazy_message_renders_in_any_language():
    text = i18n.lazy("{what} contains NaN or inf values.", what=i18n.lazy("latents")) + "!"
    assert text.render("en") == "latents contains NaN or inf values.!"
    assert text.render(LANGUAGE) != text.render("en") and text.render(LANGUAGE).endswith("!")


def test_the_check_my_work_table_lines_up_in_korean(monkeypatch, capsys):
    """Hangul takes two columns in a notebook's output: the table's columns start at the same
    place on every line, in each language, and a long message is cut to the same width."""
    from sdskit import checks

    def fake(number):
        def check(cls, cases):
            if number % 2:
                return checks.Report(checks.N_("Blank {number}").format(number=number))
            problem = i18n.lazy("{what} contains NaN or inf values.", what=i18n.lazy("latents"))
            return checks.Report(checks.N_("Blank {number}").format(number=number),
                                 [problem + " " + i18n.lazy(checks.HIDDEN_NOT_HERE)])
        return check

    monkeypatch.setattr(checks, "CHECKS", {n: fake(n) for n in range(1, 8)})
    for language in ("en", LANGUAGE):
        with i18n.speaking(language):
            checks.check_all(object)
        lines = capsys.readouterr().out.splitlines()[:8]  # the header and the seven rows
        message = i18n.tr_in(language, "first message")
        start = i18n.width(lines[0][:lines[0].index(message)])
        for line in lines[1:]:
            first = i18n.tr_in(language, "all checks passed") if line.startswith(
                ("1", "3", "5", "7")) else i18n.tr_in(language, "latents")
            assert i18n.width(line[:line.index(first)]) == start, (language, lines)
            assert i18n.width(line) <= start + 88, line
