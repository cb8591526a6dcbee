"""Search text: what an offer is found by, folded so that both engines agree.

Accents, case and ligatures are folded in Python ("Café" and "cafe" are the same word,
"Œufs" is "oeufs"), and the text is cut into words here too. SQLite's FTS5 and
PostgreSQL's ``simple`` configuration then see the same plain words separated by
spaces, so they match the same offers; neither needs an extension (PostgreSQL's
``unaccent`` wants a superuser to install it, which a co-op's managed database may not
give).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Letters that NFKD does not decompose into a base letter and a mark.
_LIGATURES = str.maketrans(
    {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i", "þ": "th"}
)
_WORD = re.compile(r"[^\W_]+")
# A query longer than this is cut: nobody types more, and each word costs the engines.
MAX_QUERY_WORDS = 12
MAX_WORD_LENGTH = 40


def fold(text: str) -> str:
    """Lower-case, without accents or ligatures: ``"Œufs frais, CAFÉ"`` →
    ``"oeufs frais, cafe"``."""
    lowered = text.casefold().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order."""
    return [w[:MAX_WORD_LENGTH] for w in _WORD.findall(fold(text))]


def search_text(parts: Iterable[str | None]) -> str:
    """One offer's searchable words (titles and descriptions in every language, category
    labels in both, claims, place): each distinct word once, space-separated."""
    seen: dict[str, None] = {}
    for part in parts:
        if part:
            for word in words(part):
                seen.setdefault(word, None)
    return " ".join(seen)


def query_words(query: str) -> list[str]:
    """The words of a member's query; each matches any word it begins ("pomme" finds
    "pommes")."""
    return list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]
