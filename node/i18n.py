"""The node's languages and their messages, and numbers, prices and dates written the
way their readers write them: what the web pages and the emails share.

Messages are read from the ``.po`` files of ``node/locale/LANG/LC_MESSAGES/`` the first
time a language is used; no compile step. Its functions import what they use when they
run: Babel loads on the first page or email, not when a command or a worker starts.
"""

from __future__ import annotations

import functools
import io
from datetime import datetime
from decimal import Decimal
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel import Locale
    from babel.messages.catalog import Catalog
    from babel.support import Translations

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = files("node") / "locale"  # package data: LANG/LC_MESSAGES/*.po
# A header longer than this is not from a real browser; reading it is wasted work.
_MAX_HEADER_LENGTH = 1024


def negotiate(header: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 12.5.4)."""
    from babel import Locale

    preferred = parse_accept_language(header)
    if not preferred:
        return DEFAULT_LANGUAGE
    found = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
    if found is not None:
        return str(found.language)
    return DEFAULT_LANGUAGE


def parse_accept_language(header: str | None) -> list[str]:
    """Language ranges by decreasing weight (header order among equals), without
    ``*`` and those refused with ``q=0``."""
    if not header or len(header) > _MAX_HEADER_LENGTH:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")):
        tag, _, params = entry.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or not all(c.isalnum() or c == "-" for c in tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if 0 < quality <= 1:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def catalogue(language: str) -> Catalog:
    """The language's messages: ``messages.po`` (whose header gives the plural rules),
    then every other ``.po`` file of its ``LC_MESSAGES`` folder in name order, one file
    per part of the interface. A message already read is not replaced."""
    from babel.messages.pofile import read_po

    folder = LOCALE_DIR / language / "LC_MESSAGES"
    others = (p for p in folder.iterdir() if p.name.endswith(".po") and p.name != "messages.po")
    paths = [folder / "messages.po", *sorted(others, key=lambda p: p.name)]
    merged: Catalog | None = None
    for path in paths:
        with path.open("rb") as source:
            part = read_po(source, locale=language)
        if merged is None:
            merged = part
            continue
        for message in part:
            if message.id and message.id not in merged:
                merged[message.id] = message
    assert merged is not None
    return merged


@functools.cache
def translations(language: str) -> Translations:
    """The language's messages, read from its ``.po`` files once per process."""
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    compiled = io.BytesIO()
    write_mo(compiled, catalogue(language))
    compiled.seek(0)
    return Translations(fp=compiled)


def reason(text: object, language: str) -> str:
    """A service's reason for refusing something (written in English, as the API says
    it), in ``language`` where the catalogue has it (``errors.po``), else as it is."""
    if not isinstance(text, str):
        return "" if text is None else str(text)
    return str(translations(language).gettext(text))


# --- formatting --------------------------------------------------------------------
# Babel reads a locale's data from a string on every call; a Locale object, once.


@functools.cache
def locale(language: str) -> Locale:
    from babel import Locale

    return Locale.parse(language)


@functools.lru_cache(maxsize=4096)  # catalogues repeat prices; Babel takes ~75 µs a call
def format_price(amount: Decimal, currency: str | None, language: str) -> str:
    """``12,50 €`` in French, ``€12.50`` in English. A currency that is not an ISO
    code (some peers name theirs by URI) is written after the amount."""
    from babel.numbers import format_currency, format_decimal

    if currency and len(currency) == 3 and currency.isalpha() and currency.isupper():
        try:
            return str(format_currency(amount, currency, locale=locale(language)))
        except (ValueError, KeyError):  # pragma: no cover - Babel knows the ISO codes
            pass
    number = str(format_decimal(amount, locale=locale(language)))
    return f"{number} {currency}" if currency else number


def format_number(amount: Decimal | float, language: str) -> str:
    from babel.numbers import format_decimal

    return str(format_decimal(amount, locale=locale(language)))


def format_date(moment: datetime, language: str) -> str:
    from babel.dates import format_date as babel_format_date

    return str(babel_format_date(moment, format="medium", locale=locale(language)))


def format_datetime(moment: datetime, language: str) -> str:
    from babel.dates import format_datetime as babel_format_datetime

    return str(babel_format_datetime(moment, format="medium", locale=locale(language)))


def format_day(moment: datetime, language: str) -> str:
    """A day as a sentence says it: ``12 December``, ``12 décembre``."""
    from babel.dates import format_date as babel_format_date

    return str(babel_format_date(moment, format="d MMMM", locale=locale(language)))


def format_moment(moment: datetime, language: str) -> str:
    """A day and time to the minute: ``12 December 2026 18:00``."""
    from babel.dates import format_datetime as babel_format_datetime

    return str(babel_format_datetime(moment, format="d MMMM y HH:mm", locale=locale(language)))
