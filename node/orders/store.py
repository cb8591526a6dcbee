"""Orders and the counted stock of the co-op's offers, in the database.

Plain functions over an open connection, so that a service does all one order needs
(the row, the stock it holds, the activity it sends) in one unit of work. Every change
that two requests could race for is one conditional ``UPDATE``: holding stock
(``available_e4 >= q``) and moving an order on (``state IN (...)``). The database
decides which of two concurrent requests wins, on SQLite (one writer at a time) and on
PostgreSQL (the second ``UPDATE`` waits for the first and reads the row it left).

Quantities and amounts are ``Decimal`` here and integers of ten-thousandths in the
tables, as offers' prices are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from node.orders.model import Policy, Refusal, Side, State, Terms
from node.storage.ids import MAX_ROW_ID
from node.storage.tables import deliveries, offer_stock, offers, orders, outbox_activities

# Quantities and amounts are stored as integers of ten-thousandths.
SCALE = Decimal(10_000)

# The columns :func:`transition` may set along with the state.
TRANSITION_FIELDS = frozenset(
    {"answer", "reason", "agreement_uri", "document", "stock_held", "expires_at"}
)


def to_e4(value: Decimal) -> int:
    """``value`` in ten-thousandths. A value with more than four decimals has no exact
    place in the tables: :class:`ValueError` rather than a silent rounding."""
    scaled = value * SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than four decimals")
    return int(scaled)


def from_e4(value: int) -> Decimal:
    return Decimal(value) / SCALE


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """One order as one side keeps it."""

    id: int
    key: str
    side: Side
    state: State
    offer_uri: str
    offer_id: int | None
    seller: str
    buyer: str
    member_id: int | None
    offer_activity: str
    agreement_uri: str | None
    quantity: Decimal
    unit: str
    total: Decimal | None
    currency: str | None
    delivery: str | None
    payment: str | None
    note: str
    answer: str
    reason: Refusal | None
    stock_held: bool
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    document: str | None

    @property
    def terms(self) -> Terms:
        return Terms(
            offer_uri=self.offer_uri,
            quantity=self.quantity,
            unit=self.unit,
            total=self.total,
            currency=self.currency,
            delivery=self.delivery,
            payment=self.payment,
            note=self.note,
        )


def _order(row: Row[Any]) -> StoredOrder:
    return StoredOrder(
        id=int(row.id),
        key=row.key,
        side=Side(row.side),
        state=State(row.state),
        offer_uri=row.offer_uri,
        offer_id=None if row.offer_id is None else int(row.offer_id),
        seller=row.seller,
        buyer=row.buyer,
        member_id=None if row.member_id is None else int(row.member_id),
        offer_activity=row.offer_activity,
        agreement_uri=row.agreement_uri,
        quantity=from_e4(row.quantity_e4),
        unit=row.unit,
        total=None if row.total_e4 is None else from_e4(row.total_e4),
        currency=row.currency,
        delivery=row.delivery,
        payment=row.payment,
        note=row.note,
        answer=row.answer,
        reason=None if row.reason is None else Refusal(row.reason),
        stock_held=bool(row.stock_held),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        document=row.document,
    )


def _one(conn: Connection, *where: Any) -> StoredOrder | None:
    row = conn.execute(select(orders).where(*where)).first()
    return None if row is None else _order(row)


def _insert(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with the ``ON CONFLICT`` clauses of the connection's engine (both
    spell them alike; SQLAlchemy has one construct per dialect)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- orders -------------------------------------------------------------------------------


def insert_order(
    conn: Connection,
    *,
    key: str,
    side: Side,
    state: State,
    terms: Terms,
    seller: str,
    buyer: str,
    offer_activity: str,
    member_id: int | None = None,
    offer_id: int | None = None,
    agreement_uri: str | None = None,
    now: datetime,
    expires_at: datetime | None = None,
    stock_held: bool = False,
    reason: Refusal | None = None,
    answer: str = "",
) -> tuple[StoredOrder, bool]:
    """Store an order; (the row, True). An order of the same side and Offer activity
    already stored (the Offer delivered again) is left as it is: (that row, False)."""
    values = {
        "key": key,
        "side": side.value,
        "state": state.value,
        "offer_uri": terms.offer_uri,
        "offer_id": offer_id,
        "seller": seller,
        "buyer": buyer,
        "member_id": member_id,
        "offer_activity": offer_activity,
        "agreement_uri": agreement_uri,
        "quantity_e4": to_e4(terms.quantity),
        "unit": terms.unit,
        "total_e4": None if terms.total is None else to_e4(terms.total),
        "currency": terms.currency,
        "delivery": terms.delivery,
        "payment": terms.payment,
        "note": terms.note,
        "answer": answer,
        "reason": None if reason is None else reason.value,
        "stock_held": int(stock_held),
        "created_at": now,
        "updated_at": now,
        "expires_at": expires_at,
        "document": None,
    }
    statement = (
        _insert(conn, orders)
        .values(values)
        .on_conflict_do_nothing(index_elements=["side", "offer_activity"])
        .returning(orders.c.id)
    )
    # A skipped row returns nothing (an INSERT's rowcount is not reported alike by the
    # drivers).
    created = conn.execute(statement).first() is not None
    found = by_offer_activity(conn, side, offer_activity)
    # The row was just written, or was there before the conflict: it cannot be missing.
    assert found is not None
    return found, created


def transition(
    conn: Connection,
    order_id: int,
    *,
    from_states: Iterable[State],
    to: State,
    now: datetime,
    **fields: Any,
) -> bool:
    """Move the order to ``to`` if it is still in one of ``from_states``, setting
    ``fields`` (answer, reason, agreement_uri, document, stock_held, expires_at) with
    it; whether it moved. One conditional ``UPDATE``: of an acceptance and a
    cancellation racing for one pending order, only the first moves it."""
    unknown = set(fields) - TRANSITION_FIELDS
    if unknown:
        raise TypeError(f"transition() cannot set {sorted(unknown)}")
    values: dict[str, Any] = dict(fields)
    if "reason" in values and values["reason"] is not None:
        values["reason"] = Refusal(values["reason"]).value
    if "stock_held" in values:
        values["stock_held"] = int(bool(values["stock_held"]))
    values["state"] = to.value
    values["updated_at"] = now
    states = [State(s).value for s in from_states]
    result = conn.execute(
        update(orders).where(orders.c.id == order_id, orders.c.state.in_(states)).values(values)
    )
    return result.rowcount == 1


def by_key(conn: Connection, key: str) -> StoredOrder | None:
    return _one(conn, orders.c.key == key)


def by_id(conn: Connection, order_id: int) -> StoredOrder | None:
    if not 0 < order_id <= MAX_ROW_ID:
        return None
    return _one(conn, orders.c.id == order_id)


def by_offer_activity(conn: Connection, side: Side, activity_id: str) -> StoredOrder | None:
    return _one(conn, orders.c.side == side.value, orders.c.offer_activity == activity_id)


def by_agreement(conn: Connection, side: Side, uri: str) -> StoredOrder | None:
    return _one(conn, orders.c.side == side.value, orders.c.agreement_uri == uri)


def _page(conn: Connection, *where: Any, limit: int, before_id: int | None) -> list[StoredOrder]:
    query = select(orders).where(*where)
    # An id above every row's is no bound (PostgreSQL refuses to compare int4 with it).
    if before_id is not None and before_id <= MAX_ROW_ID:
        query = query.where(orders.c.id < before_id)
    rows = conn.execute(query.order_by(orders.c.id.desc()).limit(limit))
    return [_order(row) for row in rows]


def for_member(
    conn: Connection, member_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[StoredOrder]:
    """The orders a member placed, newest first, below the row ``before_id``."""
    return _page(
        conn,
        orders.c.side == Side.BUYER.value,
        orders.c.member_id == member_id,
        limit=limit,
        before_id=before_id,
    )


def received(
    conn: Connection,
    *,
    states: Iterable[State] | None = None,
    author_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[StoredOrder]:
    """The orders the co-op's offers received (in ``states``, and for the offers the
    member ``author_id`` published, if given), newest first."""
    where: list[Any] = [orders.c.side == Side.SELLER.value]
    if states is not None:
        where.append(orders.c.state.in_([State(s).value for s in states]))
    if author_id is not None:
        authored = select(offers.c.id).where(offers.c.local == 1, offers.c.author_id == author_id)
        where.append(orders.c.offer_id.in_(authored))
    return _page(conn, *where, limit=limit, before_id=before_id)


def placed(conn: Connection, *, limit: int = 50, before_id: int | None = None) -> list[StoredOrder]:
    """The orders this node's members (and the co-op) placed with other co-ops, newest
    first."""
    return _page(conn, orders.c.side == Side.BUYER.value, limit=limit, before_id=before_id)


def count_waiting(conn: Connection) -> int:
    """How many received orders wait for the seller's answer."""
    query = select(func.count()).where(
        orders.c.side == Side.SELLER.value, orders.c.state == State.PENDING.value
    )
    return int(conn.execute(query).scalar_one())


def lapsed(conn: Connection, *, now: datetime, limit: int) -> list[StoredOrder]:
    """Received orders still pending whose hold ran out by ``now``, oldest first."""
    query = (
        select(orders)
        .where(
            orders.c.side == Side.SELLER.value,
            orders.c.state == State.PENDING.value,
            orders.c.expires_at <= now,
        )
        .order_by(orders.c.expires_at, orders.c.id)
        .limit(limit)
    )
    return [_order(row) for row in conn.execute(query)]


# --- stock --------------------------------------------------------------------------------


def unanswered(conn: Connection, *, placed_before: datetime, limit: int) -> list[StoredOrder]:
    """Orders placed here before ``placed_before`` that the seller never answered,
    oldest first."""
    query = (
        select(orders)
        .where(
            orders.c.side == Side.BUYER.value,
            orders.c.state == State.PENDING.value,
            orders.c.created_at < placed_before,
        )
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [_order(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class Undelivered:
    """An order placed here whose ``Offer`` the seller's server never took: the
    delivery was given up (refused with a 4xx, or gone for good)."""

    order: StoredOrder
    status: int | None
    error: str | None


def undelivered(conn: Connection, *, limit: int) -> list[Undelivered]:
    """Orders placed here, still pending, whose ``Offer`` delivery was given up."""
    query = (
        select(orders, deliveries.c.last_status, deliveries.c.last_error)
        .select_from(
            orders.join(
                outbox_activities, outbox_activities.c.activity_id == orders.c.offer_activity
            ).join(deliveries, deliveries.c.activity_pk == outbox_activities.c.id)
        )
        .where(
            orders.c.side == Side.BUYER.value,
            orders.c.state == State.PENDING.value,
            deliveries.c.state.in_(("failed", "dropped")),
        )
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [
        Undelivered(order=_order(row), status=row.last_status, error=row.last_error)
        for row in conn.execute(query)
    ]


def _counted(conn: Connection, offer_id: int) -> bool:
    available = conn.execute(
        select(offer_stock.c.available_e4).where(offer_stock.c.offer_id == offer_id)
    ).scalar()
    return available is not None


def hold(conn: Connection, offer_id: int, quantity_e4: int, *, now: datetime) -> bool:
    """Take ``quantity_e4`` out of the offer's stock if that much is left; whether the
    order may have it. An offer whose stock is not counted always has enough."""
    result = conn.execute(
        update(offer_stock)
        .where(offer_stock.c.offer_id == offer_id, offer_stock.c.available_e4 >= quantity_e4)
        .values(available_e4=offer_stock.c.available_e4 - quantity_e4, changed_at=now)
    )
    if result.rowcount == 1:
        return True
    return not _counted(conn, offer_id)


def release(conn: Connection, offer_id: int, quantity_e4: int, *, now: datetime) -> None:
    """Give a held quantity back to the offer's stock (when it is counted)."""
    conn.execute(
        update(offer_stock)
        .where(offer_stock.c.offer_id == offer_id, offer_stock.c.available_e4.is_not(None))
        .values(available_e4=offer_stock.c.available_e4 + quantity_e4, changed_at=now)
    )


def stock_of(conn: Connection, offer_id: int) -> tuple[Decimal | None, Policy]:
    """The offer's stock left (``None``: not counted) and how its orders are answered."""
    row = conn.execute(
        select(offer_stock.c.available_e4, offer_stock.c.policy).where(
            offer_stock.c.offer_id == offer_id
        )
    ).first()
    if row is None:
        return None, Policy.MANUAL
    available = None if row.available_e4 is None else from_e4(row.available_e4)
    return available, Policy(row.policy)


def set_stock(
    conn: Connection,
    offer_id: int,
    available: Decimal | None,
    *,
    now: datetime,
    announced: bool = False,
) -> None:
    """Count the offer's stock from now on as ``available`` (``None``: stop counting),
    to be told to the followers; ``announced`` when the caller tells them itself (the
    offer's own ``Update`` carries the stock), so that no second ``Update`` follows."""
    if available is not None and available < 0:
        raise ValueError("a stock cannot be negative")
    available_e4 = None if available is None else to_e4(available)
    told: dict[str, Any] = (
        {"changed_at": None, "announced_at": now} if announced else {"changed_at": now}
    )
    statement = _insert(conn, offer_stock).values(
        offer_id=offer_id, available_e4=available_e4, policy=Policy.MANUAL.value, **told
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["offer_id"], set_={"available_e4": available_e4, **told}
        )
    )


def set_policy(conn: Connection, offer_id: int, policy: Policy) -> None:
    """Answer the offer's orders by ``policy`` from now on."""
    statement = _insert(conn, offer_stock).values(offer_id=offer_id, policy=policy.value)
    conn.execute(
        statement.on_conflict_do_update(index_elements=["offer_id"], set_={"policy": policy.value})
    )


def stock_to_announce(
    conn: Connection, *, now: datetime, every: timedelta, limit: int
) -> list[int]:
    """Offers whose stock changed since the followers were last told, and who were
    told at least ``every`` ago (or never): at most one Update per offer per ``every``,
    however many orders come in. Longest waiting first."""
    query = (
        select(offer_stock.c.offer_id)
        .where(
            offer_stock.c.changed_at.is_not(None),
            (offer_stock.c.announced_at.is_(None)) | (offer_stock.c.announced_at <= now - every),
        )
        .order_by(offer_stock.c.changed_at, offer_stock.c.offer_id)
        .limit(limit)
    )
    return [int(offer_id) for offer_id in conn.execute(query).scalars()]


def mark_announced(conn: Connection, offer_id: int, *, now: datetime) -> None:
    """The followers were told the offer's stock as of ``now``."""
    conn.execute(
        update(offer_stock)
        .where(offer_stock.c.offer_id == offer_id)
        .values(announced_at=now, changed_at=None)
    )
