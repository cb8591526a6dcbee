"""Deliveries through aiohttp's client: the session of :class:`federation.poster.AiohttpPoster`.

Kept apart from :mod:`federation.poster` so that aiohttp, which takes about a tenth of
a second to import, is loaded by the first round of deliveries rather than while the
node starts. The address guard is :mod:`federation.aioguard`'s.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from federation.aioguard import GuardRefused, guarded_connector, literal_refusal
from federation.netguard import ForbiddenAddress, GuardedBackend
from federation.poster import Answer, PostFailed, PostSession, SignedPost, request_headers

__all__ = ["open_session"]


@contextlib.asynccontextmanager
async def open_session(
    guard: GuardedBackend,
    ssl_context: ssl.SSLContext | bool,
    headers: dict[str, str],
    connect_timeout: float | None,
) -> AsyncIterator[PostSession]:
    """A pool of connections through ``guard``, open for the ``async with`` block."""
    # limit=0: the caller limits requests in flight, per host and in all
    connector = guarded_connector(guard, ssl_context=ssl_context, limit=0)
    async with aiohttp.ClientSession(
        connector=connector,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    ) as client:
        yield _AiohttpSession(client, guard)


class _AiohttpSession(PostSession):
    def __init__(self, client: aiohttp.ClientSession, guard: GuardedBackend) -> None:
        self._client = client
        self._guard = guard
        # host -> the refusal of its literal address (None: a name, or allowed)
        self._literals: dict[str, PostFailed | None] = {}

    async def post(self, signed: SignedPost, *, keep_alive: bool = True) -> Answer:
        self._check_literal(signed.url)
        try:
            async with self._client.post(
                signed.url,
                data=signed.content,
                headers=request_headers(signed, keep_alive),
                allow_redirects=False,
            ) as response:
                answer = Answer(response.status, response.headers.get("Retry-After"))
                if not keep_alive:
                    response.close()
                return answer
        except aiohttp.ClientError as exc:
            raise PostFailed(_message(exc), _forbidden(exc)) from exc

    def _check_literal(self, url: URL) -> None:
        # An address written in any of the forms a resolver reads (2130706433, 127.1)
        # is judged here, as the httpx guard judges it; the socket check covers the rest.
        host = url.raw_host or ""
        if host not in self._literals:
            self._literals[host] = self._literal_refusal(host)
        refusal = self._literals[host]
        if refusal is not None:
            raise PostFailed(str(refusal), refusal.forbidden)

    def _literal_refusal(self, host: str) -> PostFailed | None:
        try:
            forbidden = literal_refusal(self._guard, host)
        except ValueError as exc:
            return PostFailed(f"invalid host {host!r}: {exc}")
        return None if forbidden is None else PostFailed(str(forbidden), forbidden)


def _forbidden(exc: BaseException) -> ForbiddenAddress | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GuardRefused):
            return seen.forbidden
        seen = seen.__cause__
    return None


def _message(exc: aiohttp.ClientError) -> str:
    forbidden = _forbidden(exc)
    if forbidden is not None:
        return str(forbidden)
    return str(exc) or type(exc).__name__
