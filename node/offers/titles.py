"""An offer's title in the reader's language: the ``nameMap`` entry of the first
language the reader prefers that the offer has, else its first title. The catalogue's
pages and its JSON API choose alike."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence


def in_language(texts: Mapping[str, str], preferred: Sequence[str]) -> tuple[str, str | None]:
    """The text in the first of ``preferred`` (language ranges, primary subtag compared)
    that ``texts`` has, else its first text; and that text's language tag (``None`` for
    ``und``). Empty texts give ``("", None)``."""
    if not texts:
        return "", None
    for wanted in preferred:
        primary = wanted.split("-")[0].lower()
        for tag, text in texts.items():
            if tag.split("-")[0].lower() == primary:
                return text, tag
    tag, text = next(iter(texts.items()))
    return text, None if tag == "und" else tag


def title_of(document: str, fallback: str, preferred: Sequence[str]) -> tuple[str, str | None]:
    """The title of the stored offer ``document`` (JSON text) in the first of
    ``preferred`` it has, and that title's language tag; ``fallback`` (the catalogue's
    title) with no tag when the document names none."""
    try:
        titles = json.loads(document).get("nameMap")
    except (ValueError, AttributeError):
        return fallback, None
    if not isinstance(titles, dict):
        return fallback, None
    found = {k: " ".join(v.split()) for k, v in titles.items() if isinstance(v, str) and v.strip()}
    title, tag = in_language(found, preferred)
    return (title, tag) if title else (fallback, None)
