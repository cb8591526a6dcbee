"""The orders API: a member orders from another co-op's offer and follows her orders;
the seller (the offer's author, or an admin) answers the orders received.

- ``POST /api/v1/orders`` ``{offer_id, quantity, delivery, payment, note}``
- ``GET /api/v1/orders`` (mine) and ``GET /api/v1/orders?received=1``
- ``GET /api/v1/orders/{key}``
- ``POST /api/v1/orders/{key}/{accept|reject|fulfil|cancel}`` ``{note}``
- ``PUT /api/v1/offers/{key}/order-policy`` ``{policy}``
- ``GET /orders/{key}``, ``GET /agreements/{key}``: the documents at the order's ids, for
  the other party's server only (a signed GET)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.errors import Invalid, NotFound
from node.orders import buying, reading, selling
from node.orders.model import Side
from node.web.api import authenticate, json_body
from node.web.responses import activity, error, node_of
from node.web.signed import signed_by


async def place(request: Request) -> Response:
    info = await authenticate(request, role="member")
    if info.actor_id is None:
        raise Invalid("this token is not a member's: log in as a member to order")
    order = await buying.place_order(node_of(request), info.actor_id, await json_body(request))
    return JSONResponse(reading.view(order), status_code=201)


async def listing(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    if request.query_params.get("received") in ("1", "true"):
        member_id = await reading.member_of(node, info.actor_id)
        found = await reading.received(node, member_id=member_id, admin=info.role == "admin")
        return JSONResponse({"received": found})
    mine = [] if info.actor_id is None else await reading.mine(node, info.actor_id)
    return JSONResponse({"orders": mine})


async def show(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    member_id = await reading.member_of(node, info.actor_id)
    found = await reading.one(
        node, request.path_params["key"], member_id=member_id, admin=info.role == "admin"
    )
    return JSONResponse(found)


async def decide(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    key, decision = request.path_params["key"], request.path_params["decision"]
    data = await json_body(request) if await request.body() else {}
    note = data.get("note", "") if isinstance(data, dict) else ""
    member_id = await reading.member_of(node, info.actor_id)
    admin = info.role == "admin"
    shown = await reading.one(node, key, member_id=member_id, admin=admin)
    if shown["side"] == Side.BUYER.value:
        if decision != "cancel":
            raise NotFound(f"a buyer may only cancel an order, not {decision} it")
        order = await buying.cancel(node, key, member_id=member_id, admin=admin)
    else:
        order = await selling.decide(
            node, key, decision, note=note, member_id=member_id, admin=admin
        )
    return JSONResponse(reading.view(order))


async def order_document(request: Request) -> Response:
    """``/orders/{key}`` (a buyer's ``Offer``) and ``/agreements/{key}`` (the seller's
    agreement): for the other party's server, by a signed GET; nobody else learns
    that the order exists."""
    node = node_of(request)
    kind = "order" if request.url.path.startswith("/orders/") else "agreement"
    found = await reading.document(node, kind, request.path_params["key"])
    if found is None or not await signed_by(request, node, {found[1]}):
        return error(404, "not_found", f"no such {kind} here")
    return activity(found[0])


async def policy(request: Request) -> Response:
    """``PUT /api/v1/offers/{key}/order-policy`` ``{"policy": "auto"|"manual"}``: how the
    orders for one of the co-op's offers are answered (its author or an admin)."""
    info = await authenticate(request, role="member")
    node = node_of(request)
    data = await json_body(request)
    chosen = data.get("policy") if isinstance(data, dict) else None
    member_id = await reading.member_of(node, info.actor_id)
    key = request.path_params["key"]
    await selling.set_policy(
        node, key, str(chosen), member_id=member_id, admin=info.role == "admin"
    )
    return JSONResponse({"offer": node.urls.offer(key), "policy": chosen})


routes = [
    Route("/api/v1/orders", place, methods=["POST"]),
    Route("/api/v1/orders", listing, methods=["GET"]),
    Route("/api/v1/orders/{key}", show, methods=["GET"]),
    Route("/api/v1/orders/{key}/{decision}", decide, methods=["POST"]),
    Route("/api/v1/offers/{key}/order-policy", policy, methods=["PUT"]),
    Route("/orders/{key}", order_document, methods=["GET"]),
    Route("/agreements/{key}", order_document, methods=["GET"]),
]
