"""Signed POSTs to inboxes: the delivery path of the node's one HTTP client.

Delivering an activity is the hottest outgoing path: one activity to a co-op's
followers is one signed POST per inbox, thousands at a time. Fetches (GETs) go through
the node's ``httpx.AsyncClient``; deliveries go through a :class:`Poster`, which sends
on HTTP/1.1 connections of its own (:mod:`federation.wirepost`) when the node's client
is the guarded one of :func:`federation.netguard.make_guarded_transport`, and through
the httpx client itself otherwise (the tests' in-process network). :func:`poster_for`
chooses. (bench/delivery.py: httpx costs about 2 ms of CPU a request on this path,
aiohttp's client about 120 µs, wirepost about 35 µs.)

- :class:`InboxSigner` signs a POST exactly as :func:`federation.httpsig.sign_request`
  does (the same Host, Date, Digest and Signature headers), with what does not change
  from one delivery to the next prepared once: the key, the key id, the Date of the
  current second; a body and its digests are a :class:`Payload`, made once per activity.
  :class:`Rfc9421Signer` signs the same POST as :func:`federation.rfc9421.sign_request`
  does (RFC 9421, which is how an Ed25519 key signs), likewise prepared.
  The RSA signature is most of a delivery's CPU, and cryptography releases the GIL
  while it signs: ``sign_many`` signs on threads of their own, so that a sender can
  sign the next requests on other cores while it sends the last ones.
- ``async with poster.session() as session`` opens a pool of connections for one round
  of deliveries; ``await session.post(signed)`` sends a :class:`SignedPost` and returns
  an :class:`Answer` (status and ``Retry-After``) or raises :class:`PostFailed` when no
  answer came. Redirects are never followed: a server that redirects an inbox POST
  gets its 3xx classified, not the body resent elsewhere.

wirepost keeps the address guard of :mod:`federation.netguard`: an address written in
the URL, in any form a resolver reads, is judged before anything else; a name is
resolved by the guard, which answers its allowed addresses only; and every address is
judged again just before its socket connects. Proxy variables are ignored, as with the
httpx client.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import email.utils
import functools
import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from yarl import URL

from federation import rfc9421
from federation.clock import Clock
from federation.digests import b64encode
from federation.errors import FederationError, MalformedInput
from federation.httpsig import HS2019, RSA_SHA256, format_signature_header, sign_string
from federation.keys import PrivateKey
from federation.netguard import ForbiddenAddress, GuardedBackend, client_guard
from federation.sfv import serialize_string

__all__ = [
    "SIGNING_THREADS",
    "Answer",
    "GuardedPoster",
    "HttpxPoster",
    "InboxSigner",
    "Payload",
    "PostFailed",
    "PostSession",
    "Poster",
    "Rfc9421Signer",
    "SignedPost",
    "poster_for",
    "request_headers",
]


@dataclass(frozen=True, slots=True)
class Answer:
    """What an inbox answered: its status and its ``Retry-After``, if any."""

    status: int
    retry_after: str | None = None


class PostFailed(FederationError):
    """No answer came: refused or reset connection, TLS failure, unreadable response.

    ``forbidden`` is set when the guard refused the inbox's address: no connection was
    attempted, and none ever will be while the inbox stays where it is.
    """

    status = 502

    def __init__(self, message: str, forbidden: ForbiddenAddress | None = None) -> None:
        super().__init__(message)
        self.forbidden = forbidden


@dataclass(frozen=True, slots=True)
class SignedPost:
    """A POST ready to go: the URL exactly as it will be sent, every header, the body."""

    url: URL
    headers: dict[str, str]
    content: bytes

    @property
    def rfc9421(self) -> bool:
        """Whether it is signed RFC 9421 (``Signature-Input``), not draft-cavage."""
        return "Signature-Input" in self.headers


@dataclass(frozen=True, slots=True)
class Payload:
    """A body to POST, with its ``Digest`` (draft-cavage) and ``Content-Digest``
    (RFC 9421) header values: made once per activity."""

    content: bytes
    content_type: str
    digest: str
    content_digest: str

    @classmethod
    def of(cls, content: bytes, content_type: str) -> Payload:
        sha256 = b64encode(hashlib.sha256(content).digest())
        return cls(content, content_type, f"SHA-256={sha256}", f"sha-256=:{sha256}:")


class _Signer(abc.ABC):
    """What the two signers share: ``sign``, and ``sign_many`` on the signing threads.
    ``costly``: whether a signature holds the loop long enough (RSA: 0.3 to 1 ms) to be
    made on a signing thread rather than as the POST is sent (Ed25519: some 20 µs)."""

    key_id: str
    costly: bool

    @abc.abstractmethod
    def sign(self, inbox: str, payload: Payload) -> SignedPost:
        """``payload`` POSTed to ``inbox``, signed; :class:`PostFailed` for an inbox
        that is no http(s) URL."""

    async def sign_many(
        self, posts: Sequence[tuple[str, Payload]]
    ) -> list[SignedPost | PostFailed]:
        """:meth:`sign` for each ``(inbox, payload)``, on a signing thread (see
        :data:`SIGNING_THREADS`); a failure is returned in its place."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_signing_threads(), self._sign_all, list(posts))

    def _sign_all(self, posts: list[tuple[str, Payload]]) -> list[SignedPost | PostFailed]:
        signed: list[SignedPost | PostFailed] = []
        for inbox, payload in posts:
            try:
                signed.append(self.sign(inbox, payload))
            except PostFailed as exc:
                signed.append(exc)
        return signed


class InboxSigner(_Signer):
    """Signs POSTs as ``key_id``: draft-cavage over ``(request-target) host date digest``,
    as Mastodon signs them and as :func:`federation.httpsig.sign_request` would."""

    def __init__(self, key_id: str, private_key: PrivateKey, clock: Clock) -> None:
        self.key_id = key_id
        self._private_key = private_key
        self._algorithm = RSA_SHA256 if isinstance(private_key, rsa.RSAPrivateKey) else HS2019
        self.costly = isinstance(private_key, rsa.RSAPrivateKey)
        self._clock = clock
        # (Unix second, its HTTP date), replaced whole: read and written from two threads.
        self._date = (-1, "")

    def sign(self, inbox: str, payload: Payload) -> SignedPost:
        url = _target(inbox)
        headers = self.headers(url, payload.digest)
        headers["Content-Type"] = payload.content_type
        return SignedPost(url, headers, payload.content)

    def headers(self, url: URL, digest: str) -> dict[str, str]:
        """Host, Date, Digest and Signature for a POST to ``url`` of a body whose
        Digest header value is ``digest``."""
        host = url.host_port_subcomponent
        if host is None:
            raise ValueError(f"{url} is not an absolute URL")
        date = self._http_date(self._clock.now())
        text = (
            f"(request-target): post {url.raw_path_qs}\nhost: {host}\ndate: {date}\n"
            f"digest: {digest}"
        )
        signature = format_signature_header(
            self.key_id,
            self._algorithm,
            ("(request-target)", "host", "date", "digest"),
            sign_string(text, self._private_key),
        )
        return {"Host": host, "Date": date, "Digest": digest, "Signature": signature}

    def _http_date(self, now: datetime) -> str:
        second = int(now.timestamp())
        cached_second, date = self._date
        if second != cached_second:
            moment = datetime.fromtimestamp(second, UTC)
            date = email.utils.format_datetime(moment, usegmt=True)
            self._date = (second, date)
        return date

    def __repr__(self) -> str:
        return f"InboxSigner({self.key_id!r})"


class Rfc9421Signer(_Signer):
    """Signs POSTs as ``key_id`` with an RFC 9421 signature (``sig1`` over ``@method``,
    ``@target-uri`` and ``content-digest``, exactly as :func:`federation.rfc9421.sign_request`
    makes it): the way to sign with an Ed25519 key, which draft-cavage's ``hs2019``
    leaves ambiguous. For servers that verify RFC 9421 (see :mod:`federation.schemes`).
    The same ``sign`` as :class:`InboxSigner`; made once per key and reused.

    With an Ed25519 key the signature itself is about a third of the work, so the
    signature base is written here directly, from parts prepared once (the parameters'
    tail, the payload's ``Content-Digest``), rather than through the general code."""

    def __init__(self, key_id: str, private_key: PrivateKey, clock: Clock) -> None:
        self.key_id = key_id
        self._private_key = private_key
        self._clock = clock
        self.costly = isinstance(private_key, rsa.RSAPrivateKey)
        self._algorithm = (
            rfc9421.RSA_V1_5_SHA256
            if isinstance(private_key, rsa.RSAPrivateKey)
            else rfc9421.ED25519
        )
        # What follows "created=<time>" in @signature-params, as sign_request writes it.
        self._params_tail = (
            f";keyid={serialize_string(key_id)};alg={serialize_string(self._algorithm)}"
        )
        self._sign_base: Callable[[bytes], bytes] = functools.partial(
            rfc9421.create_signature, key=private_key, algorithm=self._algorithm
        )
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            # libsodium's Ed25519, the same signature as cryptography's (RFC 8032 signs
            # deterministically) in about two thirds of the time.
            self._sign_base = _sodium_signer(private_key)

    def sign(self, inbox: str, payload: Payload) -> SignedPost:
        url = _target(inbox)
        host = url.host_port_subcomponent
        if host is None:
            raise PostFailed(f"invalid inbox URL {inbox!r}: not an absolute URL")
        target = str(url)
        if not (target.isascii() and target.isprintable()) or not payload.content:
            return self._sign_in_general(url, host, payload)
        params = (
            '("@method" "@target-uri" "content-digest");created='
            f"{int(self._clock.now().timestamp())}{self._params_tail}"
        )
        base = (
            f'"@method": POST\n"@target-uri": {target}\n'
            f'"content-digest": {payload.content_digest}\n"@signature-params": {params}'
        )
        signature = self._sign_base(base.encode("ascii"))
        headers = {
            "Host": host,
            "Content-Type": payload.content_type,
            "Content-Digest": payload.content_digest,
            "Signature-Input": f"sig1={params}",
            "Signature": f"sig1=:{b64encode(signature)}:",
        }
        return SignedPost(url, headers, payload.content)

    def _sign_in_general(self, url: URL, host: str, payload: Payload) -> SignedPost:
        # An empty body has no Content-Digest; a target with characters RFC 9421 does
        # not allow in a derived component is refused, as sign_request refuses it.
        headers = {"Host": host, "Content-Type": payload.content_type}
        try:
            headers |= rfc9421.sign_request(
                "POST",
                str(url),
                headers,
                payload.content,
                self.key_id,
                self._private_key,
                self._clock.now(),
            )
        except MalformedInput as exc:
            raise PostFailed(f"cannot sign a POST to {url}: {exc.reason}") from exc
        return SignedPost(url, headers, payload.content)

    def __repr__(self) -> str:
        return f"Rfc9421Signer({self.key_id!r})"


def _sodium_signer(key: ed25519.Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """Signs with ``key`` through libsodium: the 64 bytes of the signature."""
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    signing_key = nacl.signing.SigningKey(seed)

    def sign(message: bytes) -> bytes:
        return signing_key.sign(message).signature

    return sign


class PostSession(abc.ABC):
    """Connections for one round of deliveries, closed with the round."""

    @abc.abstractmethod
    async def post(
        self,
        signed: SignedPost,
        *,
        keep_alive: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 (enforced on the connection: cheaper)
    ) -> Answer:
        """Send ``signed``.

        ``keep_alive=False`` says no other POST to this host is waiting: the request
        asks the server to close the connection after its answer, rather than keeping
        it idle (one activity to followers on a thousand servers must not leave a
        thousand idle sockets). ``timeout``: seconds for the whole exchange (resolving,
        connecting, sending, the answer's status and headers), after which the POST
        fails with :class:`TimeoutError`, so that a peer dripping its answer a byte at
        a time cannot hold it. Cancellation passes through; every other failure is
        :class:`PostFailed`.
        """


class Poster(abc.ABC):
    """Sends signed POSTs; see the module's description."""

    @abc.abstractmethod
    def session(self) -> contextlib.AbstractAsyncContextManager[PostSession]:
        """A pool of connections, open for the ``async with`` block."""


def _target(inbox: str) -> URL:
    try:
        url = URL(inbox)
    except (ValueError, TypeError) as exc:
        raise PostFailed(f"invalid inbox URL {inbox!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise PostFailed(f"invalid inbox URL {inbox!r}: not an http(s) URL")
    return url


def request_headers(signed: SignedPost, keep_alive: bool) -> dict[str, str]:
    """The headers ``signed`` is sent with, asking the server to close the connection
    after its answer unless ``keep_alive``."""
    # "Connection: close" has the server close the connection after its answer (RFC 9112,
    # 9.6), and the client then drops it rather than keeping it in the pool.
    return signed.headers if keep_alive else {**signed.headers, "Connection": "close"}


# Threads that sign: each can keep a core busy (an RSA-2048 signature takes from about
# 0.3 ms to 1 ms of CPU, depending on the processor), and a sender has the rest to do.
SIGNING_THREADS = max(1, min(4, os.cpu_count() or 1))


@functools.cache
def _signing_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The process's signing threads, made on first use."""
    return concurrent.futures.ThreadPoolExecutor(SIGNING_THREADS, thread_name_prefix="signing")


# --- through an httpx client -----------------------------------------------------------


class HttpxPoster(Poster):
    """POSTs through an ``httpx.AsyncClient`` as it is: its transport, its guard (if any),
    its pool. The tests' in-process network uses this one."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[PostSession]:
        yield _HttpxSession(self.client)

    def __repr__(self) -> str:
        return "HttpxPoster()"


class _HttpxSession(PostSession):
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(
        self,
        signed: SignedPost,
        *,
        keep_alive: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 (enforced on the connection: cheaper)
    ) -> Answer:
        try:
            async with (
                asyncio.timeout(timeout),
                self._client.stream(
                    "POST",
                    str(signed.url),
                    content=signed.content,
                    headers=request_headers(signed, keep_alive),
                ) as response,
            ):
                return Answer(response.status_code, response.headers.get("retry-after"))
        except httpx.HTTPError as exc:
            forbidden = exc.__cause__ if isinstance(exc.__cause__, ForbiddenAddress) else None
            raise PostFailed(str(exc) or type(exc).__name__, forbidden) from exc


# --- on connections of its own -------------------------------------------------------------------


class GuardedPoster(Poster):
    """POSTs on connections of its own (:mod:`federation.wirepost`), through ``guard``'s
    rules (see the module's description); ``ssl_context`` verifies peers (None: the system's
    certificates)."""

    def __init__(
        self,
        *,
        guard: GuardedBackend,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str | None = None,
        connect_timeout: float | None = 5.0,
    ) -> None:
        self.guard = guard
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._headers = {"User-Agent": user_agent} if user_agent else {}
        self._connect_timeout = connect_timeout

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[PostSession]:
        # Imported here: wirepost imports this module's classes.
        from federation import wirepost

        async with wirepost.open_session(
            self.guard, self._ssl, self._headers, self._connect_timeout
        ) as session:
            yield session

    def __repr__(self) -> str:
        return f"GuardedPoster(allow_loopback={self.guard.allow_loopback})"


# --- choosing ----------------------------------------------------------------------------


def poster_for(client: httpx.AsyncClient) -> Poster:
    """The poster for a node whose HTTP client is ``client``.

    A client built on :func:`federation.netguard.make_guarded_transport` gets an
    :class:`GuardedPoster` with the same guard (loopback allowed or not, resolver), TLS
    context, User-Agent and connect timeout. Any other client (the tests' in-process
    network, or a guarded client whose internals an httpx release has moved) is used
    as it is, through :class:`HttpxPoster`: slower, never less guarded.
    """
    found = client_guard(client)
    if found is None:
        return HttpxPoster(client)
    return GuardedPoster(
        guard=found.guard,
        ssl_context=found.ssl_context,
        user_agent=found.user_agent,
        connect_timeout=found.connect_timeout,
    )
