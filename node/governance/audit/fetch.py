"""Where the audit's documents come from: the caller's one HTTP client, through the
federation library.

The proposal and its collections are fetched as every remote document is
(:func:`federation.fetch.fetch_json`), a collection's pages as documents of the
proposal's own host (:func:`federation.fetch.fetch_exact`, with a larger cap), and the
voters' or co-ops' actor documents many at a time (:class:`federation.bulkfetch.BulkFetcher`).
Whatever guard the client has (the address guard refuses private and loopback addresses
unless told otherwise) applies to every one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from federation.fetch import fetch_exact, fetch_json

if TYPE_CHECKING:
    from federation.bulkfetch import BulkFetcher

ACTOR_CONCURRENCY = 32
"""Actor documents fetched at once: each voter's once, this many at a time."""
MAX_PAGE_BYTES = 32 * 1024 * 1024
"""A page of 1,000 ballots, each with its signed Notes, is about a megabyte: more than
:data:`federation.fetch.MAX_DOCUMENT_BYTES` allows any document. Collection pages are
read with this cap instead (a multiple-choice ballot carries one Note per option)."""
PAGE_SECONDS = 30.0
"""The deadline of one page: a large page is slower to serve than an actor document."""

FetchDocument = Callable[[str], Awaitable[dict[str, Any]]]
"""A document by its URL; raises :class:`federation.errors.FederationError` when it
cannot be had."""


@dataclass(frozen=True, slots=True)
class Sources:
    """The three ways the audit fetches, all through ``http``. ``allow_http`` lets http
    URLs through (a local node, tests); loopback addresses are the client's to allow."""

    http: httpx.AsyncClient
    allow_http: bool = False

    async def document(self, url: str) -> dict[str, Any]:
        """The proposal, a collection: any document, redirects followed."""
        return await fetch_json(self.http, url, allow_http=self.allow_http)

    async def page(self, url: str) -> dict[str, Any]:
        """A collection's page: at exactly ``url`` on the proposal's host, up to
        :data:`MAX_PAGE_BYTES`."""
        return await fetch_exact(
            self.http,
            url,
            max_bytes=MAX_PAGE_BYTES,
            allow_http=self.allow_http,
            deadline=PAGE_SECONDS,
        )

    def actors(self) -> contextlib.AbstractAsyncContextManager[BulkFetcher]:
        """``async with sources.actors() as fetch``: actor documents, many at a time."""
        # Imported here: it loads aiohttp, which the node need not load to start.
        from federation.bulkfetch import BulkFetcher

        fetcher = BulkFetcher(self.http, allow_http=self.allow_http, limit=ACTOR_CONCURRENCY)
        return fetcher.opened()
