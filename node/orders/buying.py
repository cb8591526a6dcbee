"""The buyer's side: a member orders from an offer of another co-op (as the catalogue
holds it), sees "waiting for the seller", then the seller's answer; she may cancel.

The order is checked here first with the seller's own rules (:mod:`node.orders.rules`),
so that what the seller would refuse is said at once; the seller's node decides. The
``Offer`` goes to the seller signed as the member's actor, addressed to the seller only;
answers are matched to the order by the id of that ``Offer``, and taken only from the
seller it was sent to.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from federation.inbox import host_of
from node.errors import Conflict, Invalid, NotFound
from node.members import store as members_store
from node.offers import store as offers_store
from node.offers.model import MAX_OPTION_TEXT_LENGTH
from node.offers.validation import amount
from node.orders import listing, outgoing, rules, store, wire
from node.orders.model import HOLDING, REASONS, Refusal, Side, State, Terms
from node.orders.selling import inbox_of, new_key
from node.orders.store import StoredOrder
from node.orders.text import clean_note
from node.runtime import Node
from node.services import identity
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

FIELDS = {"offer", "offer_id", "quantity", "delivery", "payment", "note"}


def _option(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_OPTION_TEXT_LENGTH:
        raise Invalid(
            f"choose one of the offer's options (at most {MAX_OPTION_TEXT_LENGTH} characters)",
            field=field,
        )
    return value


async def place_order(node: Node, actor_pk: int, data: Any) -> StoredOrder:
    """The member whose actor is ``actor_pk`` orders from the catalogue's offer
    ``data["offer_id"]``: ``quantity`` (in the offer's unit), ``delivery`` and
    ``payment`` (among the offer's options), a ``note`` for the seller."""
    if not isinstance(data, dict):
        raise Invalid("send the order as a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
    offer_id, offer_uri = data.get("offer_id"), data.get("offer")
    if offer_uri is not None:
        if not isinstance(offer_uri, str) or not offer_uri.startswith(("https://", "http://")):
            raise Invalid("name the offer by its id (its URI)", field="offer")
    elif isinstance(offer_id, bool) or not isinstance(offer_id, int):
        raise Invalid(
            "name the offer: offer (its URI) or offer_id (the catalogue's number)",
            field="offer_id",
        )
    catalogue_id = offer_id if isinstance(offer_id, int) else 0
    quantity = amount(data.get("quantity"), "quantity")
    if quantity <= 0:
        raise Invalid("order at least some of it", field="quantity")
    delivery = _option(data.get("delivery"), "delivery")
    payment = _option(data.get("payment"), "payment")
    note = clean_note(data.get("note"))
    now = node.clock.now()

    def read(conn: Connection) -> tuple[Any, int | None]:
        shown = (
            offers_store.shown_by_uri(conn, offer_uri)
            if offer_uri is not None
            else offers_store.shown_by_id(conn, catalogue_id)
        )
        return shown, members_store.member_of_actor(conn, actor_pk)

    shown, member_id = await node.db.read(read)
    if shown is None:
        raise NotFound(f"the catalogue has no offer {offer_uri or offer_id}")
    if shown.local:
        raise Invalid("this is one of your co-op's own offers", field="offer_id")
    offer = listing.proposal_of(shown)
    sale = listing.for_sale(shown, available=offer.available)
    total = None if sale.price is None else rules.total_for(sale.price, quantity)
    terms = Terms(
        offer_uri=shown.uri,
        quantity=quantity,
        unit=sale.unit,
        total=total,
        currency=sale.currency,
        delivery=delivery,
        payment=payment,
        note=note,
    )
    refusal = rules.check(sale, terms, now=now)
    if refusal is not None:
        field = {"unknown_delivery": "delivery", "unknown_payment": "payment"}.get(
            refusal.value,
            "quantity"
            if refusal.value in ("out_of_stock", "under_minimum", "not_whole_units")
            else "offer_id",
        )
        raise Invalid(REASONS[refusal], field=field)
    refused = node.peers.policy.refusal(host_of(shown.actor))
    if refused is not None:
        raise Invalid(f"this node does not trade with that co-op: {refused}", field="offer")
    inbox = await inbox_of(node, shown.actor)
    key = new_key()
    username = await node.db.read(lambda conn: identity.username_of(conn, actor_pk))
    actor_uri = node.urls.actor(username)
    activity = wire.order_offer(
        terms, id=node.urls.order(key), actor=actor_uri, seller=shown.actor, published=now
    )

    def unit(conn: Connection) -> StoredOrder:
        order, _ = store.insert_order(
            conn,
            key=key,
            side=Side.BUYER,
            state=State.PENDING,
            terms=terms,
            seller=shown.actor,
            buyer=actor_uri,
            offer_activity=activity["id"],
            member_id=member_id,
            offer_id=shown.id,
            now=now,
        )
        outgoing.send(
            node, conn, activity, actor_pk=actor_pk, inbox=inbox, order_key=activity["id"], now=now
        )
        return order

    order = await node.db.write(unit)
    node.delivery_wakeup.set()
    return order


async def cancel(
    node: Node, key: str, *, member_id: int | None, admin: bool = False
) -> StoredOrder:
    """The buyer cancels her order, before or after the seller accepted it: an ``Undo``
    of the ``Offer`` goes to the seller, whose node gives the stock back."""
    now = node.clock.now()

    def find(conn: Connection) -> StoredOrder:
        order = store.by_key(conn, key)
        if (
            order is None
            or order.side is not Side.BUYER
            or not (admin or order.member_id == member_id)
        ):
            raise NotFound(f"you have no order {key!r}")
        return order

    order = await node.db.read(find)
    inbox = await inbox_of(node, order.seller)
    username = order.buyer.rsplit("/", 1)[-1]
    actor_pk = await node.db.read(lambda conn: identity.find_actor_id(conn, username))
    if actor_pk is None or node.urls.actor(username) != order.buyer:
        raise NotFound(f"the buyer of order {key!r} is no longer on this node")

    def unit(conn: Connection) -> StoredOrder:
        fresh = find(conn)
        if not store.transition(
            conn, fresh.id, from_states=sorted(HOLDING), to=State.CANCELLED, now=now
        ):
            raise Conflict(f"this order is {fresh.state.value}: it cannot be cancelled now")
        activity = wire.undo_offer(
            id=f"{fresh.offer_activity}/undo",
            actor=fresh.buyer,
            seller=fresh.seller,
            offer_activity=fresh.offer_activity,
            published=now,
        )
        outgoing.send(
            node,
            conn,
            activity,
            actor_pk=actor_pk,
            inbox=inbox,
            order_key=fresh.offer_activity,
            now=now,
        )
        updated = store.by_key(conn, key)
        assert updated is not None
        return updated

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


# --- the seller's answers -------------------------------------------------------------


async def receive_answer(node: Node, item: InboxItem) -> None:
    """The seller's ``Accept`` (with the agreement as the seller records it) or
    ``Reject`` (with its reason) of one of our members' orders."""
    answer = wire.parse_answer(item.activity)
    now = node.clock.now()

    def unit(conn: Connection) -> None:
        order = store.by_offer_activity(conn, Side.BUYER, answer.offer_activity)
        if order is None or order.seller != item.actor:
            return  # not one of our orders, or not its seller's to answer
        fields: dict[str, Any] = {"answer": answer.note}
        target = State.REJECTED
        if answer.kind == "accept":
            agreement = answer.agreement
            if (
                agreement is None
                or agreement.quantity != order.quantity
                or agreement.offer_uri != order.offer_uri
            ):
                raise wire.MalformedOrder("the agreement does not say what was ordered")
            target = State.ACCEPTED
            fields["agreement_uri"] = agreement.id
            fields["document"] = json.dumps(item.activity.get("result"), ensure_ascii=False)
        store.transition(conn, order.id, from_states=[State.PENDING], to=target, now=now, **fields)

    await node.db.write(unit)


async def settle_undelivered(node: Node, *, limit: int = 100) -> int:
    """Orders whose ``Offer`` the seller's server refused (a server that blocks ours
    answers 403) or that could not be delivered at all end rejected, with the reason
    the member sees; returns how many."""
    now = node.clock.now()
    found = await node.db.read(lambda conn: store.undelivered(conn, limit=limit))
    for item in found:
        words = REASONS[Refusal.UNDELIVERED]
        if item.status == 403:
            words += " (it refuses this server's requests: it may not trade with this co-op)"
        elif item.error:
            words += f" ({item.error[:200]})"

        def unit(conn: Connection, order: StoredOrder = item.order, words: str = words) -> None:
            store.transition(
                conn,
                order.id,
                from_states=[State.PENDING],
                to=State.REJECTED,
                now=now,
                reason=Refusal.UNDELIVERED,
                answer=words,
            )

        await node.db.write(unit)
    return len(found)


# A coopnode seller answers within its hold (node.orders.selling.HOLD); other servers
# may never answer at all (Mitra, for one, never rejects): past this, the order is over.
UNANSWERED_AFTER = timedelta(days=7)


async def close_unanswered(node: Node, *, limit: int = 100) -> int:
    """Orders the seller never answered, long after any hold would have lapsed, end
    expired, saying so; returns how many."""
    now = node.clock.now()
    found = await node.db.read(
        lambda conn: store.unanswered(conn, placed_before=now - UNANSWERED_AFTER, limit=limit)
    )
    for order in found:

        def unit(conn: Connection, order: StoredOrder = order) -> None:
            store.transition(
                conn,
                order.id,
                from_states=[State.PENDING],
                to=State.EXPIRED,
                now=now,
                reason=Refusal.UNANSWERED,
                answer=REASONS[Refusal.UNANSWERED],
            )

        await node.db.write(unit)
    return len(found)


async def receive_agreement_update(node: Node, item: InboxItem) -> None:
    """The seller says an accepted order was fulfilled, or cancelled it."""
    agreement = wire.parse_agreement_update(item.activity)
    now = node.clock.now()
    status = (agreement.status or "").lower()
    target = {"fulfilled": State.FULFILLED, "cancelled": State.CANCELLED}.get(status)
    if target is None:
        return  # another status (Mitra's "Paid"): nothing changes here

    def unit(conn: Connection) -> None:
        order = store.by_agreement(conn, Side.BUYER, agreement.id)
        if order is None or order.seller != item.actor:
            return
        sources = [State.ACCEPTED] if target is State.FULFILLED else sorted(HOLDING)
        store.transition(conn, order.id, from_states=sources, to=target, now=now)

    await node.db.write(unit)
