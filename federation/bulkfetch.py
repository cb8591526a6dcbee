"""Many documents fetched at once, each as :func:`federation.fetch.fetch_json` fetches one.

Fetching one actor document per voter of a large vote is thousands of small GETs, where
the httpx client's own cost per request (about 2 ms of CPU) would be most of the work.
A :class:`BulkFetcher` made from a guarded client (one that
:func:`federation.netguard.client_guard` recognises) sends them through aiohttp with the
same address guard, TLS context and User-Agent, and with ``fetch_json``'s rules: http(s)
URLs only, one deadline, ActivityStreams content type, a capped and depth-limited body,
and the ``id`` the URL asked for. Anything unusual (a redirect, another ``id``) is
handed to ``fetch_json`` itself, which knows how to follow it. Any other client (the
tests' in-process network, a client of the caller's own) is used as it is, through
``fetch_json``.

    async with BulkFetcher(http, limit=32).opened() as fetch:
        document = await fetch(url)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from federation import mediatypes
from federation.aioguard import guarded_connector
from federation.bodies import read_capped
from federation.errors import FetchError, InvalidDocument, MalformedInput
from federation.fetch import (
    ACCEPT_AS2,
    DEADLINE,
    MAX_DOCUMENT_BYTES,
    MAX_JSON_DEPTH,
    check_url,
    fetch_json,
)
from federation.jsonlimits import parse_object
from federation.netguard import client_guard, literal_refusal

__all__ = ["BulkFetcher"]


class BulkFetcher:
    """GETs of many documents through ``http``'s guard, at most ``limit`` connections
    open at once; use it as ``async with fetcher.opened() as fetch`` (outside that
    block, or for a client without the guard, each fetch is :func:`fetch_json`'s)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        allow_http: bool = False,
        limit: int = 32,
        deadline: float = DEADLINE,
    ) -> None:
        self._http = http
        self._allow_http = allow_http
        self._limit = limit
        self._deadline = deadline
        self._guard = client_guard(http)
        self._session: aiohttp.ClientSession | None = None
        # (scheme, host and port) -> why its URLs are not fetched, or None
        self._origins: dict[tuple[str, str], str | None] = {}

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[BulkFetcher]:
        """The fetcher with its connections open for the block, closed after it."""
        if self._guard is None:
            yield self
            return
        connector = guarded_connector(
            self._guard.guard, ssl_context=self._guard.ssl_context, limit=self._limit
        )
        headers = {"User-Agent": self._guard.user_agent} if self._guard.user_agent else {}
        async with aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        ) as session:
            self._session = session
            try:
                yield self
            finally:
                self._session = None

    async def __call__(self, url: str) -> dict[str, Any]:
        """The ActivityStreams object at ``url``; a :class:`FetchError` says why not."""
        if self._session is None:
            return await self._fetch_json(url)
        self._check(url)
        try:
            async with asyncio.timeout(self._deadline):
                async with self._session.get(
                    url, headers={"Accept": ACCEPT_AS2}, allow_redirects=False
                ) as response:
                    if 300 <= response.status < 400:
                        document = None
                    else:
                        document = await _read(response, url)
        except TimeoutError:
            raise FetchError(f"{url}: no complete answer within {self._deadline:g} s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # yarl refuses some URLs
            raise FetchError(f"{url}: {exc or type(exc).__name__}") from exc
        if document is None or document.get("id") != url:
            return await self._fetch_json(url)
        return document

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        return await fetch_json(
            self._http, url, allow_http=self._allow_http, deadline=self._deadline
        )

    def _check(self, url: str) -> None:
        """``check_url``'s rules (http(s), a host, no credentials, a valid literal
        address) and the guard's judgement of a literal address, made once per scheme
        and host: parsing every URL with httpx costs more than fetching it. The guard
        still checks every address connected to."""
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.netloc)
            refusal = self._origins.get(origin, "")
            if refusal == "":
                refusal = self._refusal(parts.scheme, parts.netloc, parts.hostname or "")
                self._origins[origin] = refusal
        except ValueError as exc:
            raise FetchError(f"{url!r} is not a valid URL: {exc}") from None
        if refusal is not None:
            raise FetchError(f"{url}: {refusal}")

    def _refusal(self, scheme: str, netloc: str, host: str) -> str | None:
        try:
            check_url(f"{scheme}://{netloc}/", allow_http=self._allow_http)
        except FetchError as exc:
            return exc.reason
        if self._guard is None:
            return None
        try:
            forbidden = literal_refusal(self._guard.guard, host)
        except ValueError as exc:
            return f"invalid host {host!r}: {exc}"
        return None if forbidden is None else str(forbidden)


async def _read(response: aiohttp.ClientResponse, url: str) -> dict[str, Any]:
    if response.status != 200:
        raise FetchError(f"{url} answered {response.status}")
    content_type = response.headers.get("Content-Type")
    if not mediatypes.is_activity_content_type(content_type):
        raise InvalidDocument(
            f"{url} answered {content_type or 'no content type'}, not an ActivityStreams document"
        )
    body = await read_capped(
        response.content.iter_chunked(65536),
        declared=response.headers.get("Content-Length"),
        limit=MAX_DOCUMENT_BYTES,
        too_large=lambda what: InvalidDocument(f"{url} {what}"),
    )
    try:
        return parse_object(body, max_depth=MAX_JSON_DEPTH)
    except MalformedInput as exc:
        raise InvalidDocument(f"{url} answered {exc.reason}") from exc
