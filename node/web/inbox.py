"""``POST /inbox`` and ``POST /actors/{name}/inbox``: verify, store, answer 202.

The reply comes only once the activity is committed, so a 202 is a promise kept even if
the node stops a moment later; the work it implies is the inbox worker's.

The shared inbox is where peers deliver (Mastodon uses it whenever an actor advertises
one), so it is the route under load. :func:`shared_inbox_lane` serves it before
Starlette's middleware and router, which cost about a tenth of the time an activity
takes; errors are answered exactly as the app's exception handlers would.
"""

from __future__ import annotations

import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from federation.bodies import refuse_declared
from federation.errors import FederationError, PayloadTooLarge
from federation.httpsig import lowered_headers
from federation.inbox import MAX_BODY_BYTES, Dropped, verify_incoming
from node.errors import NodeError
from node.inbox.receive import keep_verified
from node.runtime import Node
from node.services import identity, metrics
from node.web.responses import error, error_answer, node_of


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
    """``POST /inbox`` as a plain ASGI application, timed as the app times its routes
    (:class:`node.web.metrics.RouteTiming`)."""
    start = time.perf_counter()
    try:
        await receive_activity(node, scope, receive)
    except ClientDisconnect:
        return  # nobody to answer
    except (FederationError, NodeError) as exc:
        await error_answer(exc)(scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 202, "headers": _EMPTY_BODY})
        await send({"type": "http.response.body", "body": b""})
    _SHARED_INBOX_SECONDS.observe(time.perf_counter() - start)


_EMPTY_BODY = [(b"content-length", b"0")]
_SHARED_INBOX_SECONDS = metrics.REQUEST_SECONDS.labels("/inbox")


async def receive_activity(node: Node, scope: Scope, receive: Receive) -> None:
    """Verify and store the activity a peer POSTs; return once it is committed (the
    caller answers 202), or raise the error to answer. Counted: received, then refused
    (by the error's name) or accepted (by the state it is stored in).

    One coroutine from the request to the row (the body read by a plain loop, not an
    async generator): each layer is paid again at every wait, and this path is the one
    peers load."""
    metrics.INBOX_RECEIVED.inc()
    try:
        # ASGI gives names lower-cased, values as bytes; repeats are joined as RFC 9110 says.
        headers = lowered_headers(
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]
        )
        body = await read_body(receive, headers.get("content-length"))
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
            _DROPPED.inc()
            return
        await keep_verified(node, result, now=now)
    except (FederationError, NodeError) as exc:
        metrics.INBOX_REFUSED.labels(type(exc).__name__).inc()
        raise


_DROPPED = metrics.INBOX_ACCEPTED.labels("dropped")


def _too_large(what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body {what}")


async def read_body(receive: Receive, declared: str | None) -> bytes:
    """An inbox POST's whole body, as :func:`federation.bodies.read_capped` reads one:
    refused past MAX_BODY_BYTES as declared, or as it arrives; ``ClientDisconnect`` if
    the client leaves first."""
    refuse_declared(declared, limit=MAX_BODY_BYTES, too_large=_too_large)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"sent more than {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)
