"""``POST /inbox`` and ``POST /actors/{name}/inbox``: verify, store, answer 202.

The reply comes only once the activity is committed, so a 202 is a promise kept even if
the node stops a moment later; the work it implies is the inbox worker's.

The shared inbox is where peers deliver (Mastodon uses it whenever an actor advertises
one), so it is the route under load. :class:`SharedInboxLane` serves it in front of
Starlette's router and exception middleware, which cost about a tenth of the time an
activity takes; errors are answered exactly as the app's exception handlers would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from federation.bodies import read_capped
from federation.errors import FederationError, PayloadTooLarge
from federation.httpsig import LoweredHeaders
from federation.inbox import MAX_BODY_BYTES, Dropped, verify_incoming
from node.errors import NodeError
from node.inbox_worker import HANDLERS
from node.runtime import Node
from node.services import identity, inbox
from node.web.responses import error, federation_error, node_error, node_of


async def shared_inbox(request: Request) -> Response:
    # Reached only when the lane is not in front (an app built without it).
    return await receive_activity(node_of(request), request.scope, request.receive)


async def actor_inbox(request: Request) -> Response:
    node = node_of(request)
    username = request.path_params["username"]
    if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
        return error(404, "not_found", f"no actor {username!r} here")
    return await receive_activity(node, request.scope, request.receive)


class SharedInboxLane:
    """ASGI middleware answering ``POST /inbox`` itself; everything else goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/inbox" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        node = scope["app"].state.node
        try:
            response = await receive_activity(node, scope, receive)
        except ClientDisconnect:
            return  # nobody to answer
        except FederationError as exc:
            response = federation_error(exc)
        except NodeError as exc:
            response = node_error(exc)
        await response(scope, receive, send)


async def receive_activity(node: Node, scope: Scope, receive: Receive) -> Response:
    headers = _combined(scope["headers"])
    body = await read_capped(
        _chunks(receive),
        declared=headers.get("content-length"),
        limit=MAX_BODY_BYTES,
        too_large=lambda what: PayloadTooLarge(f"the body {what}"),
    )
    # The URL as the peer addressed it (behind a proxy, the scope names the backend).
    target = node.urls.base + scope["path"]
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    now = node.clock.now()
    result = await verify_incoming(
        method=scope["method"],
        url=target,
        headers=headers,
        body=body,
        keys=node.peers.keys,
        now=now,
        known_actor=node.peers.known_actor,
    )
    if isinstance(result, Dropped):
        return _accepted()
    # Types no handler acts on are kept (for the record and later handlers) but marked
    # ignored at once, so the worker never has to touch them.
    state = "pending" if result.activity["type"] in HANDLERS else "ignored"
    values = inbox.record_values(
        result.activity, actor=result.actor, now=now, state=state, body=body.decode("utf-8")
    )
    await inbox.store(node.db, values)
    if state == "pending":  # a replay wakes the worker for nothing, which costs one query
        node.inbox_wakeup.set()
    return _accepted()


def _accepted() -> Response:
    return Response(status_code=202)


def _combined(raw: list[tuple[bytes, bytes]]) -> LoweredHeaders:
    """Header names lower-cased (ASGI gives them so), repeated fields joined with ", "
    (RFC 9110, 5.3): read once here instead of on every lookup the checks make."""
    combined = LoweredHeaders()
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1").strip()
        previous = combined.get(name)
        combined[name] = value if previous is None else f"{previous}, {value}"
    return combined


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
