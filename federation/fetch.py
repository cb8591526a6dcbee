"""Fetching ActivityPub documents and resolving ``user@host`` handles.

Every remote GET goes through :func:`fetch_json`: it caps the body while reading it,
insists on an ActivityStreams content type, and requires the returned ``id`` to be the
URL asked for, so that a server cannot answer for an object it does not host.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from federation import mediatypes, webfinger
from federation.errors import FetchError, InvalidDocument, RemoteNotFound

MAX_DOCUMENT_BYTES = 1024 * 1024
ACCEPT_AS2 = f"{mediatypes.AS2}, {mediatypes.LD_JSON_AS2};q=0.9"
ACCEPT_JRD = f"{mediatypes.JRD}, application/json;q=0.9"
ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})


async def fetch_json(
    http: httpx.AsyncClient, url: str, *, accept: str = ACCEPT_AS2, activity: bool = True
) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; raise a :class:`FetchError` saying why not."""
    try:
        async with http.stream("GET", url, headers={"Accept": accept}) as response:
            if response.status_code in (404, 410):
                raise RemoteNotFound(f"{url} answered {response.status_code}")
            if response.status_code != 200:
                raise FetchError(f"{url} answered {response.status_code}")
            content_type = response.headers.get("content-type")
            if activity and not mediatypes.is_activity_content_type(content_type):
                raise InvalidDocument(
                    f"{url} answered {content_type or 'no content type'}, "
                    "not an ActivityStreams document"
                )
            body = await _read_capped(response, url)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidDocument(f"{url} answered invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidDocument(f"{url} answered JSON that is not an object")
    if activity and document.get("id") != url:
        raise InvalidDocument(f"{url} answered a document whose id is {document.get('id')!r}")
    return document


async def _read_capped(response: httpx.Response, url: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"{url} declares {declared} bytes, over {MAX_DOCUMENT_BYTES}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidDocument(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def resolve_handle(
    http: httpx.AsyncClient, handle: str, *, scheme: str = "https"
) -> dict[str, Any]:
    """Find the actor behind ``user@host`` by WebFinger, then fetch its document."""
    user, host = webfinger.parse_acct(handle, strict=False)
    jrd = await fetch_json(
        http, webfinger.webfinger_url(user, host, scheme), accept=ACCEPT_JRD, activity=False
    )
    try:
        actor_id = webfinger.actor_id_from_jrd(jrd)
    except webfinger.WebFingerError as exc:
        raise InvalidDocument(f"WebFinger for {user}@{host}: {exc}") from exc
    actor = await fetch_json(http, actor_id)
    if actor.get("type") not in ACTOR_TYPES:
        raise InvalidDocument(f"{actor_id} is a {actor.get('type')!r}, not an actor")
    return actor
