"""``POST /inbox`` and ``POST /actors/{name}/inbox``: verify, store, answer 202.

The reply comes only once the activity is committed, so a 202 is a promise kept even if
the node stops a moment later; the work it implies is the inbox worker's.

The shared inbox is where peers deliver (Mastodon uses it whenever an actor advertises
one), so it is the route under load. :func:`shared_inbox_lane` serves it before
Starlette's middleware and router, which cost about a tenth of the time an activity
takes; errors are answered exactly as the app's exception handlers would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

from sqlalchemy.engine import Connection
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from federation.bodies import read_capped
from federation.errors import FederationError, PayloadTooLarge
from federation.httpsig import lowered_headers
from federation.inbox import MAX_BODY_BYTES, Dropped, host_of, verify_incoming
from node.errors import NodeError
from node.inbox.worker import wants
from node.runtime import Node
from node.services import domains, identity, inbox, outbox
from node.web.responses import error, federation_error, node_error, node_of


async def shared_inbox(request: Request) -> Response:
    # The app sends POST /inbox to the lane below; this route serves anything else
    # Starlette routes here (a HEAD, say, which it answers as a 405).
    await receive_activity(node_of(request), request.scope, request.receive)
    return Response(status_code=202)


async def actor_inbox(request: Request) -> Response:
    node = node_of(request)
    username = request.path_params["username"]
    if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
        return error(404, "not_found", f"no actor {username!r} here")
    await receive_activity(node, request.scope, request.receive)
    return Response(status_code=202)


async def shared_inbox_lane(node: Node, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /inbox`` as a plain ASGI application."""
    try:
        await receive_activity(node, scope, receive)
    except ClientDisconnect:
        return  # nobody to answer
    except FederationError as exc:
        await federation_error(exc)(scope, receive, send)
        return
    except NodeError as exc:
        await node_error(exc)(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 202, "headers": _EMPTY_BODY})
    await send({"type": "http.response.body", "body": b""})


_EMPTY_BODY = [(b"content-length", b"0")]


async def receive_activity(node: Node, scope: Scope, receive: Receive) -> None:
    """Verify and store the activity a peer POSTs; return once it is committed (the
    caller answers 202), or raise the error to answer."""
    # ASGI gives names lower-cased, values as bytes; repeats are joined as RFC 9110 says.
    headers = lowered_headers(
        (n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]
    )
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
        refusal=node.peers.policy.refusal,
        on_verified=node.peers.key_verified,
    )
    if isinstance(result, Dropped):
        return
    host = host_of(result.actor)
    if host in node.peers.policy.unavailable:
        await _back_online(node, host, now)
    # What no handler acts on is kept (for the record and later handlers) but marked
    # ignored at once, so the worker never has to touch them.
    state = "pending" if wants(result.activity) else "ignored"
    values = inbox.record_values(
        result.activity, actor=result.actor, now=now, state=state, body=result.text
    )
    await inbox.store(node.db, values)
    if state == "pending":  # a replay wakes the worker for nothing, which costs one query
        node.inbox_wakeup.set()


async def _back_online(node: Node, host: str, now: datetime) -> None:
    """A domain marked unavailable signed a request to us: it is back, and what we
    postponed for it is due now."""

    def unit(conn: Connection) -> None:
        domains.record_success(conn, host, now=now)
        outbox.release_host(conn, host, now=now)

    await node.db.write(unit)
    policy = node.peers.policy
    node.peers.policy = replace(policy, unavailable=policy.unavailable - {host})
    node.delivery_wakeup.set()


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
