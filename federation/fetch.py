"""Fetching ActivityPub documents and resolving ``user@host`` handles.

Every remote GET goes through :func:`fetch_json`, which trusts nothing the remote says:

- every URL, the first and each redirect's, must be https (http too in local mode)
  and on a domain the caller's policy does not refuse; redirects are followed here, at
  most :data:`MAX_REDIRECTS`, and a loop is refused;
- one deadline covers the whole fetch, so a peer sending a byte a second cannot hold
  us longer than that;
- the body is capped while it is read, must be ActivityStreams when an object is asked
  for, and may not nest deeper than :data:`MAX_JSON_DEPTH`;
- a document's ``id`` must be on the origin (scheme, host and port) of the URL it
  was finally served from, redirects followed: an open redirect on one server cannot
  make another server's document pass for the first one's (Mastodon checks the same
  since CVE-2024-23832);
- the returned ``id`` must be the URL asked for. When it is not, the document is
  fetched once more by its own id and must carry that id there, as Mastodon does
  (``FetchResourceService``, app/services/fetch_resource_service.rb), so a server
  cannot answer for an object it does not host.

:func:`fetch_exact` fetches a document that must be at exactly the URL asked for (no
redirect, no second fetch by id), with a cap of the caller's choosing;
:mod:`federation.bulkfetch` fetches many documents at once with :func:`fetch_json`'s rules.

Which addresses may be connected to is decided by the client's transport
(:func:`federation.netguard.make_guarded_transport`), because only there is the check
made on the address actually connected to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from federation import mediatypes, netguard, webfinger
from federation.bodies import read_capped
from federation.errors import FetchError, InvalidDocument, MalformedInput, Refused, RemoteNotFound
from federation.jsonlimits import parse_object
from federation.origins import ascii_host, origin_of, same_origin

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
MAX_JSON_DEPTH = 64
DEADLINE = 10.0
CONNECT_TIMEOUT = 5.0
ACCEPT_AS2 = f"{mediatypes.AS2}, {mediatypes.LD_JSON_AS2};q=0.9"
ACCEPT_JRD = f"{mediatypes.JRD}, application/json;q=0.9"
ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# host -> why the node will not talk to it, or None: the domain policy, passed in (this
# library knows nothing of the node's blocks and allow-lists).
Refusal = Callable[[str], str | None]


async def fetch_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    accept: str = ACCEPT_AS2,
    activity: bool = True,
    auth: httpx.Auth | None = None,
    allow_http: bool = False,
    deadline: float = DEADLINE,
    connect_timeout: float = CONNECT_TIMEOUT,
    refusal: Refusal | None = None,
) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; raise a :class:`FetchError` saying why not.

    ``activity`` asks for an ActivityStreams object (content type and ``id`` checked);
    without it any JSON object will do (WebFinger). ``auth`` signs each request,
    redirects and the fetch by id included. ``allow_http`` is for local mode.
    ``deadline`` bounds the whole fetch in seconds. ``refusal`` is the domain policy:
    a URL whose host it refuses, the first or any redirect's, is not requested
    (:class:`Refused`).
    """
    get = _Getter(
        http,
        accept=accept,
        activity=activity,
        auth=auth,
        allow_http=allow_http,
        timeout=httpx.Timeout(deadline, connect=min(connect_timeout, deadline)),
        refusal=refusal,
    )
    with anyio.move_on_after(deadline):
        document, ended = await get(url)
        if not activity:
            return document
        claimed = document.get("id")
        if not isinstance(claimed, str):
            raise InvalidDocument(f"{url} answered a document whose id is {claimed!r}")
        _check_served_from(claimed, ended, url)
        if claimed == url:
            return document
        refetched, ended = await get(claimed)
        if refetched.get("id") != claimed:
            raise InvalidDocument(
                f"{url} answered a document whose id is {claimed}, "
                f"and {claimed} answered one whose id is {refetched.get('id')!r}"
            )
        _check_served_from(claimed, ended, claimed)
        return refetched
    raise FetchError(f"{url}: no complete answer within {deadline:g} s")


async def fetch_exact(
    http: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    allow_http: bool = False,
    deadline: float = DEADLINE,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> dict[str, Any]:
    """The ActivityStreams object at exactly ``url``, for a document the caller knows
    lives there (a collection's page, linked from the collection on the same server).

    Fetched as :func:`fetch_json` fetches an object, except that no redirect is followed
    (a 3xx is a :class:`FetchError`) and the document's ``id`` must be ``url`` itself:
    nothing is fetched again by another id. ``max_bytes`` caps the body, for a document
    that may be larger than :data:`MAX_DOCUMENT_BYTES` (a page of a large collection).
    """
    get = _Getter(
        http,
        accept=ACCEPT_AS2,
        activity=True,
        auth=None,
        allow_http=allow_http,
        timeout=httpx.Timeout(deadline, connect=min(connect_timeout, deadline)),
        follow_redirects=False,
        max_bytes=max_bytes,
    )
    with anyio.move_on_after(deadline):
        document, _ = await get(url)
        if document.get("id") != url:
            raise InvalidDocument(f"{url} answered a document whose id is {document.get('id')!r}")
        return document
    raise FetchError(f"{url}: no complete answer within {deadline:g} s")


def _check_served_from(claimed: str, ended: str, asked: str) -> None:
    """A document may only carry an id of the server that served it."""
    if not same_origin(claimed, ended):
        shown = asked if ended == asked else f"{asked} (redirected to {ended})"
        raise InvalidDocument(
            f"{shown} answered a document whose id {claimed} is on another server than "
            f"{origin_of(ended) or ended}"
        )


def check_url(url: str, *, allow_http: bool = False) -> httpx.URL:
    """``url`` parsed, if we may fetch it: http(s) only, https unless ``allow_http``.

    Addresses are left to the transport; a numeric host that cannot be an address, or
    an IPv6 zone identifier, is refused here.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"{url!r} is not a valid URL: {exc}") from exc
    allowed = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in allowed:
        raise FetchError(f"{url}: only {' and '.join(allowed)} URLs are fetched")
    if not parsed.host:
        raise FetchError(f"{url}: no host")
    if parsed.userinfo:
        raise FetchError(f"{url}: URLs with credentials are not fetched")
    try:
        netguard.parse_host_literal(parsed.host)
    except ValueError as exc:
        raise FetchError(f"{url}: {exc}") from exc
    return parsed


@dataclass(frozen=True)
class _Getter:
    """One document: redirects followed and checked, body capped and parsed."""

    http: httpx.AsyncClient
    accept: str
    activity: bool
    auth: httpx.Auth | None
    allow_http: bool
    timeout: httpx.Timeout
    refusal: Refusal | None = None
    follow_redirects: bool = True
    max_bytes: int = MAX_DOCUMENT_BYTES

    async def __call__(self, url: str) -> tuple[dict[str, Any], str]:
        """The document at ``url`` and the URL it was served from, redirects followed."""
        current = check_url(url, allow_http=self.allow_http)
        visited = {str(current)}
        for hop in range(MAX_REDIRECTS + 1):
            shown = f"{url} (redirected to {current})" if hop else url
            self._check_policy(current, shown)
            try:
                async with self.http.stream(
                    "GET",
                    current,
                    headers={"Accept": self.accept},
                    auth=self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT,
                    follow_redirects=False,
                    timeout=self.timeout,
                ) as response:
                    if response.status_code not in _REDIRECTS or not self.follow_redirects:
                        ended = url if hop == 0 else str(current)
                        return _parse(await self._body(response, shown), shown), ended
                    location = response.headers.get("location")
            except httpx.HTTPError as exc:
                raise _unreachable(shown, exc) from exc
            if not location:
                raise FetchError(f"{shown} answered {response.status_code} without a Location")
            try:
                target = current.join(location)
            except httpx.InvalidURL as exc:
                raise FetchError(f"{shown} redirected to an invalid URL: {exc}") from exc
            current = check_url(str(target), allow_http=self.allow_http)
            if str(current) in visited:
                raise FetchError(f"{url}: redirect loop back to {current}")
            visited.add(str(current))
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _check_policy(self, url: httpx.URL, shown: str) -> None:
        if self.refusal is None:
            return
        # The host as the policy knows it: lower-case, no port, no brackets, and an
        # international name as punycode (httpx's ``host`` gives it in Unicode).
        reason = self.refusal(ascii_host(url.raw_host.decode("ascii")))
        if reason is not None:
            raise Refused(f"{shown}: {reason}")

    async def _body(self, response: httpx.Response, shown: str) -> bytes:
        if response.status_code in (404, 410):
            raise RemoteNotFound(f"{shown} answered {response.status_code}")
        if response.status_code != 200:
            raise FetchError(f"{shown} answered {response.status_code}")
        content_type = response.headers.get("content-type")
        if self.activity and not mediatypes.is_activity_content_type(content_type):
            raise InvalidDocument(
                f"{shown} answered {content_type or 'no content type'}, "
                "not an ActivityStreams document"
            )
        return await read_capped(
            response.aiter_bytes(),
            declared=response.headers.get("content-length"),
            limit=self.max_bytes,
            too_large=lambda what: InvalidDocument(f"{shown} {what}"),
        )


def _unreachable(shown: str, exc: httpx.HTTPError) -> FetchError:
    forbidden = exc.__cause__
    if isinstance(forbidden, netguard.ForbiddenAddress):
        reason = f"{shown}: {forbidden}"
    else:
        reason = f"{shown}: {type(exc).__name__}: {exc}"
    # The reason names the addresses the resolver gave and its messages, for the node's
    # admin. A peer reads only the kind of failure, and one kind for a name resolving
    # to a forbidden address and for a name not resolving at all: told apart, they
    # would answer anyone asking which names exist inside the node's network.
    if isinstance(exc, httpx.TimeoutException):
        kind = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        kind = "could not connect (its address is not allowed, unknown or not answering)"
    else:
        kind = "the connection failed"
    return FetchError(reason, public=f"{shown}: {kind}")


def _parse(body: bytes, shown: str) -> dict[str, Any]:
    # Depth-limited: the JSON-LD processing that follows a fetch recurses on every level.
    try:
        return parse_object(body, max_depth=MAX_JSON_DEPTH)
    except MalformedInput as exc:
        raise InvalidDocument(f"{shown} answered {exc.reason}") from exc


async def resolve_handle(
    http: httpx.AsyncClient,
    handle: str,
    *,
    scheme: str = "https",
    auth: httpx.Auth | None = None,
    deadline: float = DEADLINE,
    refusal: Refusal | None = None,
) -> dict[str, Any]:
    """Find the actor behind ``user@host`` by WebFinger, then fetch its document.

    ``scheme="http"`` is local mode: http URLs are then fetched too. ``refusal`` is the
    domain policy, applied to every URL as in :func:`fetch_json`.
    """
    user, host = webfinger.parse_acct(handle, strict=False)
    allow_http = scheme == "http"
    jrd = await fetch_json(
        http,
        webfinger.webfinger_url(user, host, scheme),
        accept=ACCEPT_JRD,
        activity=False,
        auth=auth,
        allow_http=allow_http,
        deadline=deadline,
        refusal=refusal,
    )
    try:
        actor_id = webfinger.actor_id_from_jrd(jrd)
    except webfinger.WebFingerError as exc:
        raise InvalidDocument(f"WebFinger for {user}@{host}: {exc}") from exc
    actor = await fetch_json(
        http, actor_id, auth=auth, allow_http=allow_http, deadline=deadline, refusal=refusal
    )
    if actor.get("type") not in ACTOR_TYPES:
        raise InvalidDocument(f"{actor_id} is a {actor.get('type')!r}, not an actor")
    return actor
