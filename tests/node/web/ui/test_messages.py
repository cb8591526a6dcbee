"""Every text of every page and email is in both message catalogues, and translated in French:
a string added to a template without its translation fails here, not in front of a
French-speaking member."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir

from node.i18n import LANGUAGES, LOCALE_DIR
from node.web.templates import TEMPLATES_DIR
from node.web.ui import i18n

PLACEHOLDER = re.compile(r"%\(\w+\)s")


def template_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, lineno, message, _, _ in extract_from_dir(
        str(TEMPLATES_DIR),
        # The pages, and the emails (node/templates/mail: a .txt template per kind).
        method_map=[("**.html", "jinja2"), ("mail/**.txt", "jinja2")],
        options_map={
            "**.html": {"extensions": "jinja2.ext.i18n"},
            "mail/**.txt": {"extensions": "jinja2.ext.i18n"},
        },
    ):
        text = message if isinstance(message, str) else message[0]
        found.setdefault(text, f"{filename}:{lineno}")
    return found


def test_every_page_text_is_in_each_catalogue_and_translated_in_french() -> None:
    messages = template_messages()
    assert len(messages) > 50  # the extraction itself works
    for language in LANGUAGES:
        catalogue = i18n.catalogue(language)
        missing = [f"{m!r} ({where})" for m, where in messages.items() if m not in catalogue]
        assert missing == [], f"{language}: not in the catalogue: {missing}"
        if language == "fr":
            untranslated = [m for m in messages if not catalogue[m].string]
            assert untranslated == []
            for message in messages:
                found = catalogue[message].string
                if not isinstance(found, tuple):
                    wanted = sorted(PLACEHOLDER.findall(message))
                    assert sorted(PLACEHOLDER.findall(found)) == wanted, (message, found)
                    continue
                # A plural message: every form has the other values; the count itself
                # ("%(num)s") may go unsaid where the form says it ("the oldest one").
                wanted = sorted(set(PLACEHOLDER.findall(message)) - {"%(num)s"})
                for form in found:
                    got = sorted(set(PLACEHOLDER.findall(form)) - {"%(num)s"})
                    assert got == wanted, (message, form)


def reasons_in_the_code() -> set[str]:
    """Every reason a refusal can give as a fixed text: the string literals of the
    node's code, and the ballot refusals."""
    import ast

    from node.governance.rules.tally import Reason

    root = LOCALE_DIR.parents[0]
    found = {reason.value for reason in Reason}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
            elif isinstance(node, ast.JoinedStr):  # f"this page needs the {role} role"
                found.add(
                    "".join(p.value if isinstance(p, ast.Constant) else "*" for p in node.values)
                )
    return found


def test_every_translated_reason_is_one_the_code_gives() -> None:
    """A reason reworded in the code and not in errors.po would silently go back to
    English: the catalogue names only texts the code still has, all translated."""
    import fnmatch

    from babel.messages.pofile import read_po

    known = reasons_in_the_code()
    with (LOCALE_DIR / "fr" / "LC_MESSAGES" / "errors.po").open("rb") as source:
        catalogue = read_po(source, locale="fr")
    ids = [m.id for m in catalogue if m.id]
    assert len(ids) > 40
    for message in ids:
        assert isinstance(message, str)
        assert message in known or any(
            "*" in k and fnmatch.fnmatchcase(message, k) for k in known
        ), message
        assert catalogue[message].string, message
        assert i18n.reason(message, "fr") == catalogue[message].string
    assert i18n.reason("a reason nobody translated", "fr") == "a reason nobody translated"
