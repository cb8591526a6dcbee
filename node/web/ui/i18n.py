"""The language of a page: the one asked for with ``?lang=`` (then remembered in the
``lang`` cookie), else the one in the cookie, else the best match of the browser's
``Accept-Language``, else English. The messages and the formatting are
:mod:`node.i18n`'s, shared with the emails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    catalogue,
    format_date,
    format_datetime,
    format_number,
    format_price,
    locale,
    negotiate,
    parse_accept_language,
    reason,
    translations,
)

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "COOKIE",
    "COOKIE_MAX_AGE",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Choice",
    "catalogue",
    "choose_language",
    "format_date",
    "format_datetime",
    "format_number",
    "format_price",
    "locale",
    "negotiate",
    "parse_accept_language",
    "reason",
    "translations",
]

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Choice:
    language: str
    remember: bool  # asked for with ?lang=: the response sets the cookie


def choose_language(request: Request) -> Choice:
    asked = (request.query_params.get("lang") or "").strip().lower()
    if asked in LANGUAGES:
        return Choice(asked, remember=True)
    kept = (request.cookies.get(COOKIE) or "").strip().lower()
    if kept in LANGUAGES:
        return Choice(kept, remember=False)
    return Choice(negotiate(request.headers.get("accept-language")), remember=False)
