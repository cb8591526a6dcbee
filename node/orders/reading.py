"""Orders as the API, the pages and the command line show them: a member's own orders
("my orders"), the orders the co-op received (for an admin all of them, for a member
those of the offers she published), and one order with what its reader may do."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from federation.inbox import host_of
from node.errors import NotFound
from node.members import store as members_store
from node.offers import store as offers_store
from node.offers.validation import decimal_text
from node.orders import store, wire
from node.orders.model import HOLDING, Side, State
from node.orders.store import StoredOrder
from node.runtime import Node

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# What each state means to whoever reads the order, by side.
SAID = {
    (Side.BUYER, State.PENDING): "waiting for the seller",
    (Side.SELLER, State.PENDING): "waiting for your answer",
    (Side.BUYER, State.ACCEPTED): "accepted",
    (Side.SELLER, State.ACCEPTED): "accepted: to fulfil",
    (Side.BUYER, State.REJECTED): "rejected",
    (Side.SELLER, State.REJECTED): "rejected",
    (Side.BUYER, State.CANCELLED): "cancelled",
    (Side.SELLER, State.CANCELLED): "cancelled",
    (Side.BUYER, State.FULFILLED): "fulfilled",
    (Side.SELLER, State.FULFILLED): "fulfilled",
    (Side.BUYER, State.EXPIRED): "expired: the seller did not answer in time",
    (Side.SELLER, State.EXPIRED): "expired: not answered in time",
}


def amount_text(value: Decimal) -> str:
    """3.5 as "3.50": amounts keep two decimals at least, more when they have them."""
    if value == value.quantize(Decimal("0.01")):
        return decimal_text(value.quantize(Decimal("0.01")))
    return decimal_text(value.normalize())


def quantity_text(value: Decimal) -> str:
    return decimal_text(
        value.normalize() if value != value.to_integral_value() else value.quantize(Decimal(1))
    )


def actions(order: StoredOrder) -> list[str]:
    """What the reader of ``order`` may do with it now, on its side."""
    if order.side is Side.BUYER:
        return ["cancel"] if order.state in HOLDING else []
    return {
        State.PENDING: ["accept", "reject"],
        State.ACCEPTED: ["fulfil", "cancel"],
    }.get(order.state, [])


def view(order: StoredOrder, title: str | None = None) -> dict[str, Any]:
    return {
        "key": order.key,
        "side": order.side.value,
        "state": order.state.value,
        "said": SAID[(order.side, order.state)],
        "offer": {"uri": order.offer_uri, "id": order.offer_id, "title": title},
        "quantity": quantity_text(order.quantity),
        "unit": order.unit,
        "total": None if order.total is None else amount_text(order.total),
        "currency": order.currency,
        "delivery": order.delivery,
        "payment": order.payment,
        "note": order.note,
        "answer": order.answer,
        "reason": None if order.reason is None else order.reason.value,
        "seller": order.seller,
        "buyer": order.buyer,
        "agreement": order.agreement_uri,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "expires_at": None if order.expires_at is None else order.expires_at.isoformat(),
        "actions": actions(order),
    }


def _title(conn: Connection, order: StoredOrder) -> str | None:
    shown = offers_store.shown_by_uri(conn, order.offer_uri)
    return None if shown is None else shown.title


def _views(conn: Connection, orders: list[StoredOrder]) -> list[dict[str, Any]]:
    return [view(order, _title(conn, order)) for order in orders]


async def mine(node: Node, actor_pk: int, *, limit: int = 50) -> list[dict[str, Any]]:
    def read(conn: Connection) -> list[dict[str, Any]]:
        member_id = members_store.member_of_actor(conn, actor_pk)
        if member_id is None:
            return []
        return _views(conn, store.for_member(conn, member_id, limit=limit))

    return await node.db.read(read)


async def placed(node: Node, *, limit: int = 50) -> list[dict[str, Any]]:
    """Every order placed from this node, for its operator."""
    return await node.db.read(lambda conn: _views(conn, store.placed(conn, limit=limit)))


async def received(
    node: Node, *, member_id: int | None, admin: bool, limit: int = 50
) -> list[dict[str, Any]]:
    """The orders the co-op received: all of them for an admin, else those of the
    offers ``member_id`` published."""

    def read(conn: Connection) -> list[dict[str, Any]]:
        if admin:
            return _views(conn, store.received(conn, limit=limit))
        if member_id is None:
            return []
        return _views(conn, store.received(conn, author_id=member_id, limit=limit))

    return await node.db.read(read)


async def one(node: Node, key: str, *, member_id: int | None, admin: bool) -> dict[str, Any]:
    def read(conn: Connection) -> dict[str, Any]:
        order = store.by_key(conn, key)
        if order is None:
            raise NotFound(f"no order {key!r}")
        allowed = admin
        if order.side is Side.BUYER:
            allowed = allowed or (member_id is not None and order.member_id == member_id)
        else:
            found = offers_store.find_editable(conn, order.offer_uri)
            allowed = allowed or (
                found is not None and member_id is not None and found.author_id == member_id
            )
        if not allowed:
            raise NotFound(f"no order {key!r}")
        return view(order, _title(conn, order))

    return await node.db.read(read)


async def document(node: Node, kind: str, key: str) -> tuple[dict[str, Any], str] | None:
    """The order's document at its id, with the host of the party who may read it
    besides this node: the seller's agreement (``kind`` "agreement") for the buyer's
    server, or the buyer's ``Offer`` ("order") for the seller's; None if there is none."""
    order = await node.db.read(lambda conn: store.by_key(conn, key))
    if order is None:
        return None
    if kind == "agreement":
        if order.side is not Side.SELLER or order.document is None:
            return None
        return json.loads(order.document), host_of(order.buyer)
    if order.side is not Side.BUYER:
        return None
    offer = wire.order_offer(
        order.terms,
        id=order.offer_activity,
        actor=order.buyer,
        seller=order.seller,
        published=order.created_at,
    )
    return offer, host_of(order.seller)


async def member_of(node: Node, actor_pk: int | None) -> int | None:
    """The member whose actor is ``actor_pk`` (None for a token without one)."""
    if actor_pk is None:
        return None
    return await node.db.read(lambda conn: members_store.member_of_actor(conn, actor_pk))
