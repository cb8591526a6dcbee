"""Walking a published collection (electorate, ballots, subtotals) on the proposal's host.

A host cannot make another server answer for its ballots, and a page from elsewhere
could be anyone's: the collection and every page must live on the proposal's own host,
and each page must say it is part of the collection. The walk is bounded
(:data:`MAX_PAGES`, :data:`MAX_ITEMS`) so that an endless collection cannot run the
audit forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from federation.errors import FederationError
from node.governance.audit.fetch import FetchDocument
from node.governance.audit.fields import AuditError, integer, quoted

MAX_PAGES = 2_000
MAX_ITEMS = 2_000_000

Origin = tuple[str, str, int | None]
"""Scheme, host and port (None: the scheme's own) of a URL, as httpx reads it."""


def url_origin(url: str) -> Origin:
    """The origin of ``url``; raises :class:`httpx.InvalidURL` for one that is not a URL."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


async def crawl(
    fetch: FetchDocument,
    fetch_large: FetchDocument,
    collection_url: str,
    origin: Origin,
    what: str,
    on_items: Callable[[list[Any]], None] | None = None,
) -> tuple[list[Any], int | None]:
    """Every item of an ordered collection, page by page, and its ``totalItems``.

    A page must say it is ``partOf`` the collection and live on the proposal's host. A
    page linked twice (a loop) is refused, and so are more than :data:`MAX_PAGES`
    pages or :data:`MAX_ITEMS` items: a host cannot keep the audit walking forever.
    ``on_items`` gets each page's items as soon as they are in.
    """
    same_host(collection_url, origin, what)
    collection = await fetch_or_fail(fetch, collection_url, what)
    same_host(collection.get("id"), origin, what)
    if collection.get("type") not in ("OrderedCollection", "Collection"):
        raise AuditError(
            f"an OrderedCollection, not a {quoted(collection.get('type'))}", field=what
        )
    total = collection.get("totalItems")
    if total is not None:
        total = integer(total, f"{what}.totalItems")
    items: list[Any] = []
    inline = collection.get("orderedItems")
    if inline is not None:
        if not isinstance(inline, list):
            raise AuditError("a list", field=f"{what}.orderedItems")
        items.extend(inline)
        if on_items is not None:
            on_items(inline)
    page_ref = collection.get("first")
    seen: set[str] = set()
    pages = 0
    while page_ref is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise AuditError(f"more than {MAX_PAGES} pages: the walk stops here", field=what)
        if isinstance(page_ref, dict):  # the first page embedded in the collection
            page = page_ref
            page_url = str(page.get("id") or collection_url)
        elif isinstance(page_ref, str):
            page_url = page_ref
            same_host(page_url, origin, f"{what} page")
            if page_url in seen:
                raise AuditError(f"page {page_url} comes back: the pages loop", field=what)
            page = await fetch_or_fail(fetch_large, page_url, f"{what} page")
            same_host(page.get("id"), origin, f"{what} page")
        else:
            raise AuditError(f"a page link, not {quoted(page_ref)}", field=f"{what} page")
        seen.add(page_url)
        if page.get("partOf") != collection_url:
            raise AuditError(
                f"page {page_url} is part of {quoted(page.get('partOf'))}, not of {collection_url}",
                field=f"{what} page",
            )
        page_items = page.get("orderedItems", [])
        if not isinstance(page_items, list):
            raise AuditError("a list", field=f"{what} page {page_url}: orderedItems")
        items.extend(page_items)
        if len(items) > MAX_ITEMS:
            raise AuditError(f"more than {MAX_ITEMS} items: the walk stops here", field=what)
        if on_items is not None:
            on_items(page_items)
        page_ref = page.get("next")
    return items, total


def same_host(url: object, origin: Origin, what: str) -> None:
    """Refuses ``url`` unless it is a URL on ``origin``; ``what`` names the field."""
    if not isinstance(url, str):
        raise AuditError(f"a URL, not {quoted(url)}", field=what)
    try:
        here = url_origin(url)
    except httpx.InvalidURL:
        raise AuditError(f"not a valid URL: {quoted(url)}", field=what) from None
    if here != origin:
        raise AuditError(
            f"{url} is on another host than the proposal ({origin[0]}://{origin[1]}"
            f"{'' if origin[2] is None else f':{origin[2]}'}): refused",
            field=what,
        )


async def fetch_or_fail(fetch: FetchDocument, url: str, what: str) -> dict[str, Any]:
    """``fetch(url)``, a failure to fetch being an :class:`AuditError` about ``what``."""
    try:
        return await fetch(url)
    except FederationError as exc:
        raise AuditError(f"could not fetch {url}: {exc.reason}", field=what) from None
