"""The inbox's verification pipeline: everything between the bytes a peer POSTs and an
activity we are willing to store.

Order matters, cheapest and most damning first, and nothing is fetched for a request
that can be refused without it:

1. content type (415) — the body size (413) is enforced by the caller while reading;
2. JSON shape: an object with an ``id``, a ``type`` and an ``actor`` (400);
3. a ``Delete`` from an actor we never knew is accepted and dropped without any fetch
   (Mastodon does the same: such deletes arrive in storms when a server shuts down);
4. the HTTP signature, draft-cavage or RFC 9421 (401), with the key from the cache or a
   signed fetch;
5. origin: the signing key belongs to the activity's actor, and the activity's id is on
   the actor's host (401 / 400). Embedded objects from another origin are left for the
   handler, which fetches them by id rather than trusting them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from federation import httpsig, mediatypes, rfc9421
from federation.errors import (
    FetchError,
    MalformedInput,
    NotAuthorized,
    Refused,
    UnsupportedMediaType,
)
from federation.jsonlimits import parse_object
from federation.keycache import KeyCache
from federation.origins import ascii_host, same_origin

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Verified:
    activity: dict[str, Any]
    actor: str
    key_id: str
    # The body as text, exactly as the peer sent it (for storage: no re-encoding).
    text: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Accepted (202) but not worth storing: a Delete from an actor we never knew."""

    reason: str


# The common shape, read without urlsplit (which costs several microseconds a call): a
# scheme, a host name of letters, digits, dots and hyphens, an optional port, then the end
# or a path, query or fragment.
_PLAIN_HTTP_HOST = re.compile(r"https?://([A-Za-z0-9.-]+)(?::[0-9]*)?(?=[/?#]|\Z)")


def host_of(url: str) -> str:
    """The lower-cased host of an http(s) URL ("" if it has none), an international name
    in its ASCII (punycode) form: the one form domain policies are written in, so that
    ``bücher.example`` and ``xn--bcher-kva.example`` are one host to a block."""
    plain = _PLAIN_HTTP_HOST.match(url)
    if plain is not None:
        return plain.group(1).lower()
    # User info, IPv6 literals and anything unusual: the standard library decides.
    return ascii_host(urlsplit(url).hostname or "")


def actor_id(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def read_activity(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], str, str]:
    """The activity a POST carries, its actor's id and its text, before any signature is
    looked at: ActivityStreams JSON (415), UTF-8, a JSON object within the parser's
    bounds, with an http(s) ``id``, a ``type`` and an http(s) ``actor`` (400)."""
    content_type = headers.get("content-type")
    if not mediatypes.is_activity_content_type(content_type):
        raise UnsupportedMediaType(
            f"send ActivityStreams JSON ({mediatypes.AS2}), not {content_type or 'nothing'}"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # RFC 8259, section 8.1: JSON exchanged between systems is UTF-8.
        raise MalformedInput(f"the body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    activity = parse_object(text)
    activity_id = activity.get("id")
    actor = actor_id(activity.get("actor"))
    if not isinstance(activity_id, str) or not activity_id.startswith(("https://", "http://")):
        raise MalformedInput("the activity needs an id that is an http(s) URL")
    if not isinstance(activity.get("type"), str):
        raise MalformedInput("the activity needs a type")
    if actor is None or not actor.startswith(("https://", "http://")):
        raise MalformedInput("the activity needs an actor that is an http(s) URL")
    return activity, actor, text


async def verify_incoming(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    keys: KeyCache,
    now: datetime,
    known_actor: Callable[[str], Awaitable[bool]],
    refusal: Callable[[str], str | None] | None = None,
    on_verified: Callable[[str], Awaitable[None]] | None = None,
) -> Verified | Dropped:
    """``on_verified(key_id)`` is awaited once the request is known to be the actor's:
    what was fetched to find its key may be kept from then on, not before."""
    activity, actor, text = read_activity(headers, body)
    activity_id = activity["id"]
    if refusal is not None:
        _check_origins(activity, actor, refusal)
    if activity["type"] == "Delete" and not await known_actor(actor):
        return Dropped(reason="a Delete from an actor this node never knew")

    verified_key = await _verify_signature(method, url, headers, body, keys, now, refusal)
    signer = keys.cached(verified_key)
    owner = signer.owner if signer is not None else None
    if owner != actor:
        raise NotAuthorized(f"the request is signed by {owner} but the activity's actor is {actor}")
    if not same_origin(activity_id, actor):
        raise MalformedInput(f"the activity {activity_id} is not on its actor's server")
    if on_verified is not None:
        await on_verified(verified_key)
    return Verified(activity=activity, actor=actor, key_id=verified_key, text=text)


def _check_origins(
    activity: dict[str, Any], actor: str, refusal: Callable[[str], str | None]
) -> None:
    """Refuse an activity from a refused domain, or one that boosts (Announce) an object
    of a refused domain: relaying a blocked server's content is taking it in."""
    reason = refusal(host_of(actor))
    if reason is None and activity.get("type") == "Announce":
        shared = actor_id(activity.get("object"))
        if shared is not None:
            reason = refusal(host_of(shared))
    if reason is not None:
        raise Refused(reason)


def _key_unavailable(key_id: str, exc: FetchError) -> FetchError:
    said = f"the key {key_id} could not be fetched: "
    return type(exc)(said + exc.reason, public=said + exc.public)


async def _verify_signature(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    keys: KeyCache,
    now: datetime,
    refusal: Callable[[str], str | None] | None,
) -> str:
    async def lookup(key_id: str) -> Any:
        # A key on a refused domain is never fetched.
        if refusal is not None and (reason := refusal(host_of(key_id))) is not None:
            raise Refused(reason)
        try:
            return (await keys.get(key_id)).public_key
        except FetchError as exc:
            raise _key_unavailable(key_id, exc) from exc

    async def refetch(key_id: str) -> Any:
        try:
            key = await keys.refetch(key_id)
        except FetchError as exc:
            raise _key_unavailable(key_id, exc) from exc
        return None if key is None else key.public_key

    if "signature-input" in headers:
        verified = await rfc9421.verify_request(
            method=method,
            url=url,
            headers=headers,
            body=body,
            now=now,
            key_lookup=lookup,
            refetch=refetch,
        )
        return str(verified.key_id)
    if "signature" not in headers:
        raise NotAuthorized("the request is not signed: sign it as Mastodon does")
    parts = urlsplit(url)
    cavage = await httpsig.verify_request(
        method=method,
        path=parts.path,
        query=parts.query,
        headers=headers,
        body=body,
        now=now,
        key_lookup=lookup,
        refetch=refetch,
    )
    return str(cavage.key_id)
