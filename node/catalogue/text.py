"""Search text: what an offer is found by, folded so that both engines agree.

Accents, case and ligatures are folded in Python ("Café" and "cafe" are the same word,
"Œufs" is "oeufs"), and the text is cut into words here too. SQLite's FTS5 and
PostgreSQL's ``simple`` configuration then see the same plain words separated by
spaces, so they match the same offers; neither needs an extension (PostgreSQL's
``unaccent`` wants a superuser to install it, which a co-op's managed database may not
give).
"""

from __future__ import annotations

import hashlib
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


# Filters indexed as words: a search with words and a category, claim or co-op then
# narrows in the text index itself instead of checking each matching offer. The prefix
# keeps them apart from anything a member types (they cannot hurt if typed: they only
# match what the filter would). SQL still applies the filters exactly.
_FILTER_PREFIX = {"category": "zzc", "claim": "zzk", "coop": "zzo"}
# What every word of filters, places and prices begins with (see catalogue_words).
RESERVED = "zz"
# Places, as the cell of a half-degree grid they fall in (about 55 by 40 km in France):
# a search near a point names the few cells its circle touches.
CELL_DEGREES = 0.5
MAX_CELLS = 48


def filter_word(kind: str, value: str) -> str:
    """As the text index keeps it: cut as every word is (a query asks for the same)."""
    if kind == "coop":
        return _FILTER_PREFIX[kind] + hashlib.sha256(value.encode()).hexdigest()[:16]
    return (_FILTER_PREFIX[kind] + "".join(words(value)))[:MAX_WORD_LENGTH]


# PostgreSQL's text index also holds the region of an offer's place: the cell of a
# two-degree grid, "zzr<row>x<column>" (migration 0025 makes it from the latitude and
# longitude columns). A circle whose half-degree cells are many is asked as its few
# regions where they hold not many more offers (see search.py): PostgreSQL's cost of
# an OR of words grows with their number, even of words that hold few offers.
REGION_DEGREES = 2.0


def _cell_index(latitude: float, longitude: float, degrees: float) -> tuple[int, int]:
    # Both sizes are powers of two: the division is exact, as PostgreSQL's (0025).
    return (int((latitude + 90) // degrees), int((longitude + 180) // degrees))


def cell_word(latitude: float, longitude: float) -> str:
    row, column = _cell_index(latitude, longitude, CELL_DEGREES)
    return f"zzg{row}x{column}"


def cell_words(south: float, north: float, west: float, east: float) -> list[str] | None:
    """The cells of the box, or None when there are too many to be worth naming."""
    return _grid_words("zzg", CELL_DEGREES, south, north, west, east)


def region_words(south: float, north: float, west: float, east: float) -> list[str] | None:
    """The regions of the box (PostgreSQL), or None when there are too many."""
    return _grid_words("zzr", REGION_DEGREES, south, north, west, east)


def _grid_words(
    prefix: str, degrees: float, south: float, north: float, west: float, east: float
) -> list[str] | None:
    first_row, first_column = _cell_index(max(south, -90.0), max(west, -180.0), degrees)
    last_row, last_column = _cell_index(min(north, 89.999), min(east, 179.999), degrees)
    count = (last_row - first_row + 1) * (last_column - first_column + 1)
    if count > MAX_CELLS:
        return None
    return [
        f"{prefix}{row}x{column}"
        for row in range(first_row, last_row + 1)
        for column in range(first_column, last_column + 1)
    ]


def price_word(currency: str, scaled: int) -> str:
    """A price, as the power of two its amount (in ten-thousandths, see
    ``store.scaled_price``) falls under, in its currency: a search in a price range names
    the few powers the range spans, and the text index narrows by price as it does by
    place. SQL still compares the prices exactly."""
    return _price_word(scaled.bit_length(), currency)


def price_words(currency: str, low: int, high: int) -> list[str]:
    """The words of every price from ``low`` to ``high`` (scaled, ``0 <= low <= high``)."""
    return [_price_word(p, currency) for p in range(low.bit_length(), high.bit_length() + 1)]


def _price_word(power: int, currency: str) -> str:
    return f"zzp{power}x{''.join(words(currency))}"[:MAX_WORD_LENGTH]


# PostgreSQL's text index also holds, for an offer priced in a three-letter currency
# code, the words "at most 2 to the power k", "zzq<k>x<code>", for the CEILINGS powers k
# from its price's (migration 0025 makes them from the price and currency columns, and
# fixes this number). A search up to a price asks for a few of them, one per CEILINGS
# powers down from the price's (see ceiling_words), not for every power's word below
# the price: PostgreSQL reads a word's list only around the other words' matches, but
# an OR of many words' lists at length.
CEILINGS = 8


def ceiling_words(currency: str, high: int) -> list[str] | None:
    """The words that together hold every offer priced at most ``high`` (scaled, at least
    0) in ``currency`` and few others, as PostgreSQL's text index keeps them; None for a
    currency other than a three-letter code in capitals. An offer whose price's power is
    at most ``high``'s has the ceiling of one power in every CEILINGS counted down from
    it."""
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        return None
    if not currency.isupper():
        return None
    code = currency.lower()
    return [f"zzq{power}x{code}" for power in range(high.bit_length(), -1, -CEILINGS)]
