"""Every text of every page is in both message catalogues, and translated in French:
a string added to a template without its translation fails here, not in front of a
French-speaking member."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir

from node.web.templates import TEMPLATES_DIR
from node.web.ui import i18n
from node.web.ui.i18n import LANGUAGES

PLACEHOLDER = re.compile(r"%\(\w+\)s")


def template_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, lineno, message, _, _ in extract_from_dir(
        str(TEMPLATES_DIR),
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
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
