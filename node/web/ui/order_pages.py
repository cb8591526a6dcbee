"""Orders in the browser: a member orders from another co-op's offer, follows her
orders and cancels one; the seller (the offer's author, or an admin) answers the orders
the co-op received.

- ``GET|POST /catalogue/offers/ID/order``: the order form of a catalogue's offer of
  another co-op (the offer's page links to it). A refusal shows the form again with
  the reason next to its field and what was typed kept; an order placed leads to its
  page.
- ``GET /me/orders``: the member's orders, newest first.
- ``GET /me/orders/received``: the orders received, all of them for an admin, those of
  the offers she published for a member.
- ``GET /me/orders/KEY``: one order, with the buttons its reader may use.
- ``POST /me/orders/KEY/DECISION``: cancel (the buyer), or accept, reject, fulfil,
  cancel (the seller).

Everything goes through the orders' use cases (:mod:`node.orders`), as the API does;
who may see or answer an order is decided there, and an order someone may not see is
answered as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from node.errors import Conflict, Forbidden, Invalid, NotFound
from node.offers import reading as offers_reading
from node.offers import store as offers_store
from node.offers import titles
from node.offers.model import UNIT_BY_WIRE_NAME, UNITS
from node.offers.store import Shown
from node.orders import buying, listing, reading, selling
from node.orders.model import Side
from node.services import tokens
from node.services.sessions import Session
from node.storage.ids import is_row_id
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors, refusal_page

ORDER_FIELDS = ("quantity", "delivery", "payment", "note")
DECISIONS = ("accept", "reject", "fulfil", "cancel")
NOT_A_LOCAL_MEMBER = "only a member with an account on this node can order here"


@dataclass(frozen=True, slots=True)
class Orderable:
    """What the order form says of the offer ordered from."""

    id: int
    title: str
    coop: str
    price: Decimal | None
    currency: str | None
    unit: str
    minimum: Decimal | None
    available: Decimal | None
    delivery: tuple[str, ...]
    payment: tuple[str, ...]
    active: bool


def unit_label(unit: str | None, language: str) -> str:
    """A unit, by our name or its wire name, as members read it."""
    if not unit:
        return ""
    found = UNITS.get(unit) or UNIT_BY_WIRE_NAME.get(unit)
    return unit if found is None else found.labels.get(language, unit)


def _orderable(shown: Shown, coop: str, language: str, now: datetime) -> Orderable:
    offer = listing.proposal_of(shown)
    sale = listing.for_sale(shown, available=offer.available)
    title, _ = titles.in_language(offer.titles, [language])
    ended = sale.end_time is not None and sale.end_time <= now
    return Orderable(
        id=shown.id,
        title=title or shown.title,
        coop=coop,
        price=sale.price,
        currency=sale.currency,
        unit=unit_label(offer.unit, language),
        minimum=sale.minimum,
        available=sale.available,
        delivery=sale.delivery,
        payment=sale.payment,
        active=not sale.withdrawn and not ended,
    )


def _admin(session: Session) -> bool:
    return tokens.allows(session.role, "admin")


def offer_href(order: dict[str, Any]) -> str | None:
    """Where the page links an order's offer: ours at its path, a peer's in the
    catalogue."""
    offer = order["offer"]
    if order["side"] == Side.SELLER.value:
        return urlsplit(offer["uri"]).path or None
    return None if offer["id"] is None else f"/catalogue/offers/{offer['id']}"


async def _shown_all(
    request: Request, orders: list[dict[str, Any]], language: str
) -> list[dict[str, Any]]:
    """The orders as the pages show them, each offer's title in the page's language
    where the offer has one."""
    uris = {order["offer"]["uri"] for order in orders}

    def read(conn: Any) -> dict[str, str]:
        found = {}
        for uri in uris:
            shown = offers_store.shown_by_uri(conn, uri)
            if shown is not None:
                found[uri] = titles.title_of(shown.document, shown.title, [language])[0]
        return found

    named = await node_of(request).db.read(read) if uris else {}
    return [
        _shown(
            {**order, "offer": {**order["offer"], "title": named.get(order["offer"]["uri"])}}
            if order["offer"]["uri"] in named
            else order,
            language,
        )
        for order in orders
    ]


def _shown(order: dict[str, Any], language: str) -> dict[str, Any]:
    return {
        **order,
        "unit_label": unit_label(order["unit"], language),
        "href": offer_href(order),
        "created": datetime.fromisoformat(order["created_at"]),
    }


# --- ordering ------------------------------------------------------------------------------


async def _read_offer(request: Request) -> Orderable | None:
    offer_id = request.path_params["offer_id"]
    if not is_row_id(offer_id):
        return None
    node = node_of(request)
    handle = node.settings.handle
    read = await node.db.read(
        lambda conn: offers_reading.read_catalogue_offer(conn, offer_id, handle=handle)
    )
    if read.offer is None or read.offer.local:
        return None
    label = read.label
    coop = label.name.strip()[:200] if label is not None and label.name else ""
    coop = coop or urlsplit(read.offer.actor).netloc
    try:
        return _orderable(
            read.offer, coop, i18n.choose_language(request).language, node.clock.now()
        )
    except NotFound:  # a document the orders cannot read: nothing to order
        return None


def _order_form(
    request: Request,
    session: Session,
    offer: Orderable,
    *,
    values: dict[str, str] | None = None,
    error: Invalid | None = None,
) -> Response:
    errors: dict[str, str] = {}
    general = None
    if error is not None:
        if error.field in ORDER_FIELDS:
            errors[str(error.field)] = error.reason
        else:
            general = error.reason
    form = values or {
        "quantity": "" if offer.minimum is None else reading.quantity_text(offer.minimum),
        "delivery": offer.delivery[0] if len(offer.delivery) == 1 else "",
        "payment": offer.payment[0] if len(offer.payment) == 1 else "",
        "note": "",
    }
    response = render.page(
        request,
        i18n.choose_language(request),
        "order_form.html",
        {
            "session": session,
            "csrf": session.csrf,
            "offer": offer,
            "form": form,
            "errors": errors,
            "general_error": general,
        },
        status=400 if error is not None else 200,
    )
    return render.no_store(response)


@html_errors
async def order_form(request: Request) -> Response:
    session = await sessions.require(request, "member")
    offer = await _read_offer(request)
    if offer is None:
        return render.not_found(request)
    return _order_form(request, session, offer)


@html_errors
async def place(request: Request) -> Response:
    session = await sessions.require(request, "member")
    offer = await _read_offer(request)
    if offer is None:
        return render.not_found(request)
    form = await sessions.read_form(request, session)
    values = {
        name: value.strip() if isinstance(value := form.get(name), str) else ""
        for name in ORDER_FIELDS
    }
    if session.actor_id is None:
        return refusal_page(request, Forbidden(NOT_A_LOCAL_MEMBER))
    data: dict[str, Any] = {
        "offer_id": offer.id,
        # A French member writes "1,5": the API's numbers take a point.
        "quantity": values["quantity"].replace(",", ".", 1),
        "delivery": values["delivery"] or None,
        "payment": values["payment"] or None,
        "note": values["note"],
    }
    try:
        order = await buying.place_order(node_of(request), session.actor_id, data)
    except Invalid as exc:
        return _order_form(request, session, offer, values=values, error=exc)
    except NotFound:
        return render.not_found(request)
    return RedirectResponse(f"/me/orders/{order.key}?placed=1", status_code=303)


# --- following them ------------------------------------------------------------------------


@html_errors
async def my_orders(request: Request) -> Response:
    session = await sessions.require(request, "member")
    choice = i18n.choose_language(request)
    found = (
        [] if session.actor_id is None else await reading.mine(node_of(request), session.actor_id)
    )
    response = render.page(
        request,
        choice,
        "my_orders.html",
        {
            "session": session,
            "csrf": session.csrf,
            "orders": await _shown_all(request, found, choice.language),
        },
    )
    return render.no_store(response)


@html_errors
async def received_orders(request: Request) -> Response:
    session = await sessions.require(request, "member")
    choice = i18n.choose_language(request)
    admin = _admin(session)
    found = await reading.received(node_of(request), member_id=session.member_id, admin=admin)
    response = render.page(
        request,
        choice,
        "orders_received.html",
        {
            "session": session,
            "csrf": session.csrf,
            "admin": admin,
            "orders": await _shown_all(request, found, choice.language),
            "done": request.query_params.get("done") in DECISIONS,
        },
    )
    return render.no_store(response)


@html_errors
async def order_page(request: Request) -> Response:
    session = await sessions.require(request, "member")
    choice = i18n.choose_language(request)
    try:
        found = await reading.one(
            node_of(request),
            request.path_params["key"],
            member_id=session.member_id,
            admin=_admin(session),
        )
    except NotFound:
        return render.not_found(request)
    done = request.query_params.get("done")
    response = render.page(
        request,
        choice,
        "order.html",
        {
            "session": session,
            "csrf": session.csrf,
            "order": (await _shown_all(request, [found], choice.language))[0],
            "placed": request.query_params.get("placed") == "1",
            "done": done if done in DECISIONS else None,
        },
    )
    return render.no_store(response)


@html_errors
async def decide(request: Request) -> Response:
    """A button of an order's page or of the received orders: the buyer may cancel,
    the seller accept, reject, fulfil or cancel."""
    session = await sessions.require(request, "member")
    node = node_of(request)
    key, decision = request.path_params["key"], request.path_params["decision"]
    if decision not in DECISIONS:
        return render.not_found(request)
    admin = _admin(session)
    try:
        found = await reading.one(node, key, member_id=session.member_id, admin=admin)
    except NotFound:
        return render.not_found(request)
    form = await sessions.read_form(request, session)
    note = form.get("note")
    try:
        if found["side"] == Side.BUYER.value:
            if decision != "cancel":
                return render.not_found(request)
            await buying.cancel(node, key, member_id=session.member_id, admin=admin)
        else:
            await selling.decide(
                node,
                key,
                decision,
                note=note if isinstance(note, str) else "",
                member_id=session.member_id,
                admin=admin,
            )
    except Conflict as exc:  # answered meanwhile, elsewhere
        return refusal_page(request, exc)
    except NotFound:
        return render.not_found(request)
    back = "/me/orders/received" if form.get("back") == "received" else f"/me/orders/{key}"
    return RedirectResponse(f"{back}?done={decision}", status_code=303)


routes: list[BaseRoute] = [
    Route("/catalogue/offers/{offer_id:int}/order", order_form, methods=["GET"]),
    Route("/catalogue/offers/{offer_id:int}/order", place, methods=["POST"]),
    Route("/me/orders", my_orders, methods=["GET"]),
    # Ahead of /me/orders/{key}: the received orders are a list, not an order.
    Route("/me/orders/received", received_orders, methods=["GET"]),
    Route("/me/orders/{key}", order_page, methods=["GET"]),
    Route("/me/orders/{key}/{decision}", decide, methods=["POST"]),
]
