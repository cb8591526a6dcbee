"""The seller's side: an order arrives for one of the co-op's offers, is checked against
the offer and holds its quantity out of the stock (or is refused, with the reason the
buyer's member sees), and the seller (the offer's author or an admin) accepts, rejects,
fulfils or cancels it. An order the seller leaves waiting longer than :data:`HOLD`
expires and gives its stock back (:mod:`node.orders.worker`).

Each decision is one unit of work: the order's state, the stock and the answer to the
buyer (queued in the outbox, delivered at least once) change together or not at all.
The stock goes down in one conditional statement (:func:`node.orders.store.hold`), so
that however many orders arrive at once, it never goes below zero.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from federation.inbox import host_of
from node.errors import Conflict, Forbidden, Invalid, NotFound
from node.offers import store as offers_store
from node.offers.store import Shown
from node.orders import listing, outgoing, rules, store, wire
from node.orders.model import HOLDING, REASONS, Policy, Refusal, Side, State
from node.orders.store import StoredOrder
from node.orders.text import clean_note
from node.runtime import Node
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# How long an order waiting for the seller holds its stock.
HOLD = timedelta(hours=48)

STATUS_ACCEPTED = "Accepted"
STATUS_CANCELLED = "Cancelled"
STATUS_FULFILLED = "Fulfilled"


def new_key() -> str:
    return secrets.token_urlsafe(16)


async def inbox_of(node: Node, actor: str) -> str:
    """Where to send an answer to ``actor``: its inbox (an order is for two parties
    only, never a shared inbox's other readers)."""
    document = await node.peers.actor(actor)
    inbox = document.get("inbox")
    if not isinstance(inbox, str):
        raise NotFound(f"{actor} has no inbox")
    return inbox


def _answer(
    node: Node,
    conn: Connection,
    activity: dict[str, Any],
    *,
    inbox: str,
    order: StoredOrder,
    now: datetime,
) -> None:
    outgoing.send(
        node,
        conn,
        activity,
        actor_pk=node.peers.coop_id,
        inbox=inbox,
        order_key=order.offer_activity,
        now=now,
    )


def _agreement(node: Node, order: StoredOrder, status: str) -> dict[str, Any]:
    return wire.agreement(
        order.terms,
        id=node.urls.agreement(order.key),
        seller=node.urls.actor(node.settings.handle),
        status=status,
    )


def _accept(
    node: Node, conn: Connection, order: StoredOrder, note: str, inbox: str, now: datetime
) -> bool:
    agreement = _agreement(node, order, STATUS_ACCEPTED)
    if not store.transition(
        conn,
        order.id,
        from_states=[State.PENDING],
        to=State.ACCEPTED,
        now=now,
        answer=note,
        agreement_uri=agreement["id"],
        document=json.dumps(agreement, ensure_ascii=False),
    ):
        return False
    activity = wire.accept(
        id=f"{agreement['id']}/accept",
        actor=node.urls.actor(node.settings.handle),
        buyer=order.buyer,
        offer_activity=order.offer_activity,
        agreement=agreement,
        note=note,
        published=now,
    )
    _answer(node, conn, activity, inbox=inbox, order=order, now=now)
    return True


def _reject(
    node: Node,
    conn: Connection,
    order: StoredOrder,
    *,
    reason: Refusal,
    words: str,
    inbox: str | None,
    now: datetime,
    to: State = State.REJECTED,
) -> bool:
    """Refuse or let lapse a pending order: its stock back, a ``Reject`` to the buyer
    (unless its server cannot be reached: ``inbox`` None)."""
    if not store.transition(
        conn,
        order.id,
        from_states=[State.PENDING],
        to=to,
        now=now,
        answer=words,
        reason=reason,
        stock_held=False,
    ):
        return False
    if order.stock_held and order.offer_id is not None:
        store.release(conn, order.offer_id, store.to_e4(order.quantity), now=now)
    if inbox is None:
        return True
    activity = wire.reject(
        id=f"{node.urls.agreement(order.key)}/{to.value}",
        actor=node.urls.actor(node.settings.handle),
        buyer=order.buyer,
        offer_activity=order.offer_activity,
        reason=words,
        published=now,
    )
    _answer(node, conn, activity, inbox=inbox, order=order, now=now)
    return True


def _stock_and_policy(conn: Connection, shown: Shown) -> tuple[Decimal | None, Policy]:
    """The offer's counted stock: the stock table's, started from the offer's own
    ``availableQuantity`` the first time it is ordered from."""
    available, policy = store.stock_of(conn, shown.id)
    if available is None:
        published = listing.proposal_of(shown).available
        if published is not None:
            store.set_stock(conn, shown.id, published, now=shown.published)
            available = published
    return available, policy


async def receive_order(node: Node, item: InboxItem) -> None:
    """A peer's ``Offer`` of an ``Agreement`` for one of the co-op's offers."""
    parsed = wire.parse_order_offer(item.activity)
    if parsed.actor != item.actor:
        raise wire.MalformedOrder("the order's actor is not the one who signed it")
    now = node.clock.now()
    inbox = await inbox_of(node, item.actor)
    shown = await node.db.read(lambda conn: offers_store.shown_by_uri(conn, parsed.offer_uri))
    terms = parsed.terms
    seller = node.urls.actor(node.settings.handle)

    def unit(conn: Connection) -> None:
        if store.by_offer_activity(conn, Side.SELLER, parsed.id) is not None:
            return  # delivered again: the order is recorded, its answer queued
        refusal: Refusal | None = None
        policy = Policy.MANUAL
        offer_id = None
        if node.peers.policy.refusal(host_of(item.actor)) is not None:
            refusal = Refusal.BLOCKED  # blocked since it arrived: recorded, not answered
        elif shown is None or not shown.local or shown.actor != seller:
            refusal = Refusal.NO_SUCH_OFFER
        else:
            offer_id = shown.id
            available, policy = _stock_and_policy(conn, shown)
            sale = listing.for_sale(shown, available=available, policy=policy)
            refusal = rules.check(sale, terms, now=now)
            if refusal is None and not store.hold(
                conn, shown.id, store.to_e4(terms.quantity), now=now
            ):
                refusal = Refusal.OUT_OF_STOCK
        order, created = store.insert_order(
            conn,
            key=new_key(),
            side=Side.SELLER,
            state=State.PENDING,
            terms=terms,
            seller=seller,
            buyer=item.actor,
            offer_activity=parsed.id,
            offer_id=offer_id,
            now=now,
            expires_at=now + HOLD,
            stock_held=refusal is None,
        )
        if not created:
            return
        if refusal is not None:
            _reject(node, conn, order, reason=refusal, words=REASONS[refusal], inbox=inbox, now=now)
        elif policy is Policy.AUTO:
            _accept(node, conn, order, "", inbox, now)

    await node.db.write(unit)
    node.delivery_wakeup.set()


async def receive_cancellation(node: Node, item: InboxItem) -> None:
    """The buyer undoes its ``Offer``: the order is cancelled, its stock given back."""
    offer_activity = wire.parse_undo_offer(item.activity)
    now = node.clock.now()

    def unit(conn: Connection) -> None:
        order = store.by_offer_activity(conn, Side.SELLER, offer_activity)
        if order is None or order.buyer != item.actor:
            return  # not an order of ours, or not the buyer's to cancel
        _cancel(conn, order, now=now)

    await node.db.write(unit)


def _cancel(conn: Connection, order: StoredOrder, *, now: datetime, words: str = "") -> bool:
    if not store.transition(
        conn,
        order.id,
        from_states=sorted(HOLDING),
        to=State.CANCELLED,
        now=now,
        answer=words or order.answer,
        stock_held=False,
    ):
        return False
    if order.stock_held and order.offer_id is not None:
        store.release(conn, order.offer_id, store.to_e4(order.quantity), now=now)
    return True


# --- the seller's decisions -----------------------------------------------------------


def _seller_order(conn: Connection, key: str, *, member_id: int | None, admin: bool) -> StoredOrder:
    """The order received ``key``, if this member may decide on it: an admin, or the
    author of the offer ordered from."""
    order = store.by_key(conn, key)
    if order is None or order.side is not Side.SELLER:
        raise NotFound(f"no order {key!r} received")
    if admin:
        return order
    author = None
    editable = offers_store.find_editable(conn, order.offer_uri)
    if editable is not None:
        author = editable.author_id
    if member_id is None or author != member_id:
        raise Forbidden("only the offer's author or an admin may answer this order")
    return order


async def decide(
    node: Node,
    key: str,
    decision: str,
    *,
    note: str = "",
    member_id: int | None = None,
    admin: bool = True,
) -> StoredOrder:
    """The seller's decision on a received order: ``accept``, ``reject`` (with a note
    saying why), ``fulfil`` (delivered: the stock stays spent) or ``cancel`` (after
    acceptance: the stock comes back). Refused with :class:`Conflict` when the order
    is no longer in a state that allows it."""
    if decision not in ("accept", "reject", "fulfil", "cancel"):
        raise NotFound(f"no such decision {decision!r}")
    note = clean_note(note)
    now = node.clock.now()
    order = await node.db.read(
        lambda conn: _seller_order(conn, key, member_id=member_id, admin=admin)
    )
    inbox = await inbox_of(node, order.buyer)

    def unit(conn: Connection) -> StoredOrder:
        fresh = _seller_order(conn, key, member_id=member_id, admin=admin)
        done = False
        if decision == "accept":
            done = _accept(node, conn, fresh, note, inbox, now)
        elif decision == "reject":
            words = note or REASONS[Refusal.SELLER_REJECTED]
            done = _reject(
                node, conn, fresh, reason=Refusal.SELLER_REJECTED, words=words, inbox=inbox, now=now
            )
        elif decision == "fulfil":
            done = store.transition(
                conn,
                fresh.id,
                from_states=[State.ACCEPTED],
                to=State.FULFILLED,
                now=now,
                stock_held=False,
                answer=note or fresh.answer,
            )
            if done:
                _tell(node, conn, fresh, STATUS_FULFILLED, inbox, now)
        else:
            done = _cancel(conn, fresh, now=now, words=note)
            if done:
                _tell(node, conn, fresh, STATUS_CANCELLED, inbox, now)
        if not done:
            done_word = {"fulfil": "fulfilled", "cancel": "cancelled"}.get(
                decision, f"{decision}ed"
            )
            raise Conflict(f"this order is {fresh.state.value}: it cannot be {done_word} now")
        updated = store.by_key(conn, key)
        assert updated is not None
        return updated

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


def _tell(
    node: Node, conn: Connection, order: StoredOrder, status: str, inbox: str, now: datetime
) -> None:
    """The agreement, with its new status, to the buyer (``Update``)."""
    agreement = _agreement(node, order, status)
    activity = wire.agreement_update(
        id=f"{agreement['id']}/{status.lower()}",
        actor=node.urls.actor(node.settings.handle),
        buyer=order.buyer,
        agreement=agreement,
        published=now,
    )
    _answer(node, conn, activity, inbox=inbox, order=order, now=now)


async def expire_lapsed(node: Node, *, limit: int = 100) -> int:
    """Let the orders that waited longer than their hold expire: stock back, and a
    ``Reject`` saying so to each buyer. Returns how many expired."""
    now = node.clock.now()
    lapsed = await node.db.read(lambda conn: store.lapsed(conn, now=now, limit=limit))
    expired = 0
    for order in lapsed:
        inbox: str | None
        try:
            inbox = await inbox_of(node, order.buyer)
        except Exception:  # the buyer's server is gone: the order expires all the same
            inbox = None

        def unit(conn: Connection, order: StoredOrder = order, inbox: str | None = inbox) -> bool:
            return _reject(
                node,
                conn,
                order,
                reason=Refusal.HOLD_EXPIRED,
                words=REASONS[Refusal.HOLD_EXPIRED],
                inbox=inbox,
                now=now,
                to=State.EXPIRED,
            )

        if await node.db.write(unit):
            expired += 1
    if expired:
        node.delivery_wakeup.set()
    return expired


async def set_policy(
    node: Node, offer_key: str, policy: str, *, member_id: int | None = None, admin: bool = True
) -> None:
    """How the orders for the co-op's offer ``offer_key`` are answered (:class:`Policy`);
    its author or an admin decides."""
    try:
        chosen = Policy(policy)
    except ValueError:
        raise Invalid("the policy is auto or manual", field="policy") from None
    uri = node.urls.offer(offer_key)

    def unit(conn: Connection) -> None:
        shown = offers_store.shown_local(conn, uri)
        editable = offers_store.find_editable(conn, uri)
        if shown is None or editable is None:
            raise NotFound(f"this co-op has no offer {offer_key!r}")
        if not admin and (member_id is None or editable.author_id != member_id):
            raise Forbidden("only the offer's author or an admin may decide how it is ordered")
        store.set_policy(conn, shown.id, chosen)

    await node.db.write(unit)
