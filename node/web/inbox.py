"""``POST /inbox`` and ``POST /actors/{name}/inbox``: verify, store, answer 202.

The reply comes only once the activity is committed, so a 202 is a promise kept even if
the node stops a moment later; the work it implies is the inbox worker's.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from federation.bodies import read_capped
from federation.errors import PayloadTooLarge
from federation.inbox import MAX_BODY_BYTES, Dropped, verify_incoming
from node.inbox_worker import HANDLERS
from node.services import identity, inbox
from node.web.responses import error, node_of


async def shared_inbox(request: Request) -> Response:
    return await _receive(request)


async def actor_inbox(request: Request) -> Response:
    node = node_of(request)
    username = request.path_params["username"]
    if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
        return error(404, "not_found", f"no actor {username!r} here")
    return await _receive(request)


async def _receive(request: Request) -> Response:
    node = node_of(request)
    body = await _read_capped(request)
    # The URL as the peer addressed it (behind a proxy, request.url names the backend).
    target = node.urls.base + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    now = node.clock.now()
    result = await verify_incoming(
        method=request.method,
        url=target,
        headers=_combined(request.headers),
        body=body,
        keys=node.peers.keys,
        now=now,
        known_actor=node.peers.known_actor,
    )
    if isinstance(result, Dropped):
        return Response(status_code=202)
    # Types no handler acts on are kept (for the record and later handlers) but marked
    # ignored at once, so the worker never has to touch them.
    state = "pending" if result.activity["type"] in HANDLERS else "ignored"
    text = body.decode("utf-8")
    stored = await node.db.write(
        lambda conn: inbox.record(
            conn, result.activity, actor=result.actor, now=now, state=state, body=text
        )
    )
    if stored and state == "pending":
        node.inbox_wakeup.set()
    return Response(status_code=202)


def _combined(headers: Headers) -> dict[str, str]:
    """Header names lower-cased, repeated fields joined with ", " (RFC 9110, 5.3): read
    once here instead of on every lookup the signature checks make."""
    combined: dict[str, str] = {}
    for name, value in headers.items():
        combined[name] = f"{combined[name]}, {value}" if name in combined else value
    return combined


async def _read_capped(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (before any parsing)."""
    return await read_capped(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=MAX_BODY_BYTES,
        too_large=lambda what: PayloadTooLarge(f"the body {what}"),
    )
