"""The orders' background round: orders left waiting past their hold expire (their
stock comes back, the buyer is told), offers whose stock orders changed are announced
to followers (an ``Update`` with the new ``availableQuantity``), at most once every
:data:`ANNOUNCE_EVERY` per offer, however many orders came in between, and orders the
seller's server would not take end rejected, and those it never answered expire, saying
so."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from node.offers import publish
from node.offers import store as offers_store
from node.orders import buying, selling, store
from node.runtime import Node, Poller

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ANNOUNCE_EVERY = timedelta(minutes=1)
BATCH = 100


async def run_once(node: Node) -> int:
    expired = await selling.expire_lapsed(node, limit=BATCH)
    announced = await announce_stock(node)
    undelivered = await buying.settle_undelivered(node, limit=BATCH)
    unanswered = await buying.close_unanswered(node, limit=BATCH)
    return expired + announced + undelivered + unanswered


async def announce_stock(node: Node) -> int:
    now = node.clock.now()
    due = await node.db.read(
        lambda conn: store.stock_to_announce(conn, now=now, every=ANNOUNCE_EVERY, limit=BATCH)
    )
    sent = 0
    for offer_id in due:

        def take(conn: Connection, offer_id: int = offer_id) -> tuple[str | None, Decimal | None]:
            # Marked before the stock is read: a hold that lands after it marks the
            # offer again, and is announced at the next turn.
            store.mark_announced(conn, offer_id, now=now)
            shown = offers_store.shown_by_id(conn, offer_id)
            available, _ = store.stock_of(conn, offer_id)
            return (None if shown is None else shown.uri), available

        uri, available = await node.db.write(take)
        if uri is not None and await publish.announce_stock(node, uri, available):
            sent += 1
    return sent


ORDERS_POLLER = Poller(name="orders", run_once=run_once, idle_seconds=10.0)
