"""Signed POSTs on HTTP/1.1 connections of the node's own: the session of
:class:`federation.poster.GuardedPoster`.

A delivery needs little of an HTTP client: one request line, headers already built and
signed, a small body; and of the answer, its status and ``Retry-After``. A general
client (aiohttp's cost about 120 µs of CPU a request here, ``bench/delivery.py``) spends
most of its time on what this path never uses. This one writes the request's bytes in
one go and reads the answer with httptools (llhttp, the parser uvicorn serves with).

What a peer may answer is bounded: at most :data:`MAX_HEAD` bytes of status line and
headers are read. The answer is its status, known with the headers; a connection is
kept for the next POST only if the whole answer had come by then (a small body comes
with its headers) and the server did not ask to close it. Anything llhttp cannot parse
fails the POST, and the connection is closed.

The address guard is :class:`federation.netguard.GuardedBackend`'s, as everywhere:

- an address written in the URL is judged before anything else (in any form a
  resolver reads: ``127.1``, ``2130706433``);
- a name is resolved by the guard, which answers its allowed addresses only (refusing
  the name when all of them are forbidden);
- each address is judged again just before its socket connects, whatever produced it.

Proxy variables are ignored, redirects are answers like any other (never followed),
TLS verifies the certificate against the URL's host name (also sent as SNI). Within a
session, connections are kept per origin (scheme, host, port) for the next POST to the
same server; a kept connection the server closed before answering is replaced once by
a new one (a server drops idle connections when it likes; an inbox takes a repeated
activity once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import socket
import ssl
from collections.abc import AsyncIterator
from typing import cast

import httpcore
import httptools
from yarl import URL

from federation.netguard import ForbiddenAddress, GuardedBackend, IPAddress, literal_refusal
from federation.poster import Answer, PostFailed, PostSession, SignedPost

__all__ = ["MAX_HEAD", "open_session"]

MAX_HEAD = 64 * 1024
"""Bytes of status line and headers read from an answer, at most."""
MAX_RETRY_AFTER = 64
"""Characters of ``Retry-After`` kept (a date is 29)."""

_Origin = tuple[str, str, int]
# Control characters (CR and LF above all) never reach the wire: the URL is a peer's.
# CR and LF are counted apart: each line of the request's head ends with one of each.
_UNSAFE = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


@contextlib.asynccontextmanager
async def open_session(
    guard: GuardedBackend,
    ssl_context: ssl.SSLContext | bool,
    headers: dict[str, str],
    connect_timeout: float | None,
) -> AsyncIterator[PostSession]:
    """Connections through ``guard`` for the ``async with`` block, all closed after it.
    ``headers`` go with every request (the User-Agent); ``ssl_context`` True is the
    system's certificates."""
    loop = asyncio.get_running_loop()
    session = _Session(loop, guard, _context(ssl_context), headers, connect_timeout)
    try:
        yield session
    finally:
        session.close()


def _context(ssl_context: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(ssl_context, ssl.SSLContext):
        return ssl_context
    if not ssl_context:
        raise ValueError("deliveries always verify TLS certificates")
    return _default_context()


@functools.cache
def _default_context() -> ssl.SSLContext:
    """The system's certificates, loaded once per process (it takes milliseconds)."""
    return ssl.create_default_context()


class _Session(PostSession):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        guard: GuardedBackend,
        ssl_context: ssl.SSLContext,
        headers: dict[str, str],
        connect_timeout: float | None,
    ) -> None:
        self._loop = loop
        self._guard = guard
        self._ssl = ssl_context
        self._common = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._common_lines = len(headers)
        self._connect_timeout = connect_timeout
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        # host -> the refusal of its literal address (None: a name, or allowed)
        self._literals: dict[str, PostFailed | None] = {}
        # Connections waiting for an answer, with the loop's time it must come by; one
        # timer for them all (see _watch).
        self._due: dict[_Connection, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    async def post(
        self,
        signed: SignedPost,
        *,
        keep_alive: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 (enforced on the connection: cheaper)
    ) -> Answer:
        url = signed.url
        origin = self._origin(url)
        request = self._request(url, signed, keep_alive)
        # One deadline for the whole exchange: the session's one timer enforces it while
        # the answer is awaited (a timer per POST, asyncio.timeout's or the loop's, costs
        # 4 to 7 µs, some 3 to 4 % of a delivery's CPU in bench/delivery.py); a new
        # connection is made under asyncio.timeout.
        deadline = None if timeout is None else self._loop.time() + timeout
        connection = self._kept(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, origin, request, keep_alive, deadline)
            except _ClosedUnanswered:
                pass  # the server dropped the kept connection: once more, on a new one
        async with asyncio.timeout_at(deadline):
            connection = await self._connect(origin)
        try:
            return await self._exchange(connection, origin, request, keep_alive, deadline)
        except _ClosedUnanswered as exc:
            raise PostFailed(str(exc)) from None

    def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    def _origin(self, url: URL) -> _Origin:
        scheme, host, port = url.scheme, url.raw_host or "", url.port
        if scheme not in ("http", "https") or not host or port is None:
            raise PostFailed(f"not an http(s) URL with a host: {str(url)[:200]!r}")
        if host not in self._literals:
            self._literals[host] = self._literal_refusal(host)
        refusal = self._literals[host]
        if refusal is not None:
            raise PostFailed(str(refusal), refusal.forbidden)
        return scheme, host, port

    def _literal_refusal(self, host: str) -> PostFailed | None:
        try:
            forbidden = literal_refusal(self._guard, host)
        except ValueError as exc:
            return PostFailed(f"invalid host {host!r}: {exc}")
        return None if forbidden is None else PostFailed(str(forbidden), forbidden)

    def _request(self, url: URL, signed: SignedPost, keep_alive: bool) -> bytes:
        target, host = url.raw_path_qs, url.host_port_subcomponent or ""
        fields = "".join([f"{name}: {value}\r\n" for name, value in signed.headers.items()])
        head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\n{self._common}{fields}"
        # Each line ends with the CRLF written here, and holds no other control character.
        lines = 2 + self._common_lines + len(signed.headers)
        if _UNSAFE.search(head) or head.count("\r") != lines or head.count("\n") != lines:
            raise PostFailed("the URL or a header holds a control character")
        head += f"Content-Length: {len(signed.content)}\r\n"
        if not keep_alive:
            # The server closes the connection after its answer (RFC 9112, 9.6): no idle
            # socket left behind for a host that gets nothing more this round.
            head += "Connection: close\r\n"
        try:
            return head.encode("ascii") + b"\r\n" + signed.content
        except UnicodeEncodeError:
            raise PostFailed("the URL or a header is not ASCII") from None

    def _kept(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
        return None

    async def _exchange(
        self,
        connection: _Connection,
        origin: _Origin,
        request: bytes,
        keep_alive: bool,
        deadline: float | None,
    ) -> Answer:
        waiter = connection.send(request)
        if deadline is not None:
            self._watch(connection, deadline)
        try:
            answer = await waiter
        except BaseException:
            connection.close()
            self._open.discard(connection)
            raise
        finally:
            self._due.pop(connection, None)
        if keep_alive and connection.usable:
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()
            self._open.discard(connection)
        return answer

    def _watch(self, connection: _Connection, deadline: float) -> None:
        """Fail ``connection``'s exchange if no answer came by ``deadline``."""
        self._due[connection] = deadline
        if deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._loop.call_at(at, self._expire_due), at

    def _expire_due(self) -> None:
        """The timer: the exchanges past their deadline fail, and it is armed again for
        the earliest of the others. Most answers come long before their deadline, so it
        rarely runs more than once per timeout while POSTs go on."""
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        late = [connection for connection, at in self._due.items() if at <= now]
        for connection in late:
            del self._due[connection]
            connection.expire()
        if self._due:
            self._arm(min(self._due.values()))

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        try:
            addresses = await self._guard.allowed_addresses(host, port)
        except ForbiddenAddress as exc:
            raise PostFailed(str(exc), exc) from exc
        except httpcore.ConnectError as exc:
            raise PostFailed(str(exc) or f"cannot reach {host}") from exc
        failure = ""
        for address in addresses:
            try:
                connection = await self._connect_to(address, scheme, host, port)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                failure = str(exc) or type(exc).__name__
                continue
            self._open.add(connection)
            return connection
        raise PostFailed(f"cannot connect to {host}:{port}: {failure}")

    async def _connect_to(
        self, address: IPAddress, scheme: str, host: str, port: int
    ) -> _Connection:
        # Judged again here, whatever produced the address.
        reason = self._guard.refusal(address)
        if reason is not None:
            forbidden = ForbiddenAddress(str(address), address, reason)
            raise PostFailed(str(forbidden), forbidden)
        loop = self._loop
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            async with asyncio.timeout(self._connect_timeout):
                await loop.sock_connect(sock, (str(address), port))
                _, connection = await loop.create_connection(
                    functools.partial(_Connection, loop),
                    sock=sock,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except BaseException:
            sock.close()
            raise
        return connection


class _ClosedUnanswered(PostFailed):
    """The connection closed before any byte of an answer came: on a kept connection,
    the POST is tried once more on a new one."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its answer read by llhttp.

    The answer is known once its headers are: the POST's caller has it then. The
    connection is kept for another POST only if the whole answer (its body too) had
    come by the time the caller looked, and the server did not ask to close."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._received = 0  # bytes of the current answer
        self._head = 0  # bytes of its headers
        self._retry_after: str | None = None
        self._reusable = False
        self._closed = False

    @property
    def usable(self) -> bool:
        return not self._closed and self._reusable

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        """Write ``request``: the future is its answer."""
        assert self._transport is not None
        assert self._waiter is None
        self._waiter = waiter = self._loop.create_future()
        self._received = self._head = 0
        self._retry_after, self._reusable = None, False
        self._transport.write(request)
        return waiter

    def expire(self) -> None:
        """No answer came in time: the exchange fails with :class:`TimeoutError`, and
        the connection is closed."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimeoutError("no answer by the deadline"))
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: a server talking out of turn is not kept.
            self.close()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(PostFailed("the server answered with a protocol upgrade"))
            return
        except httptools.HttpParserError as exc:
            self._fail(PostFailed(f"unreadable answer: {exc}"))
            return
        waiting = self._waiter is not None and not self._waiter.done()
        if waiting and self._received > MAX_HEAD:
            self._fail(PostFailed(f"the answer's headers are over {MAX_HEAD} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._received == 0:
            waiter.set_exception(_ClosedUnanswered("the server closed the connection"))
        else:
            waiter.set_exception(PostFailed("the server closed the connection mid-answer"))

    # --- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4
        if name.lower() == b"retry-after":
            self._retry_after = value[:MAX_RETRY_AFTER].decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # an interim answer (103 Early Hints): the final one follows
        if self._head > MAX_HEAD:
            self._fail(PostFailed(f"the answer's headers are over {MAX_HEAD} bytes"))
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Answer(status, self._retry_after))

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            self._head, self._retry_after = 0, None
            return
        self._reusable = self._parser.should_keep_alive()
        self._waiter = None

    # ---

    def _fail(self, error: PostFailed) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()
