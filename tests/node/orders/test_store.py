"""Orders and offers' stock in the database, on SQLite and PostgreSQL: one row per
Offer delivered, state changes only from the states allowed, stock held and given back
without ever going below zero, even under many writers at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from node.orders import store
from node.orders.model import Policy, Refusal, Side, State, Terms
from node.services.setup import migrate_database
from node.storage.database import Database
from node.storage.tables import members, offer_stock, offers

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SELLER = "https://coop.example/actors/coop"
BUYER = "https://peer.example/actors/coop"
TERMS = Terms(
    offer_uri="https://coop.example/offers/o1",
    quantity=Decimal("2.5"),
    unit="kilogram",
    total=Decimal("8.75"),
    currency="EUR",
    delivery="pickup",
    payment="cash",
    note="Pour samedi.",
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


def add_offer(conn: Connection, n: int) -> int:
    return int(
        conn.execute(
            insert(offers)
            .values(
                uri=f"https://coop.example/offers/o{n}",
                actor=SELLER,
                host="coop.example",
                local=1,
                status="active",
                title=f"Offer {n}",
                published=NOW,
                updated=NOW,
                received_at=NOW,
                search_text="",
                document="{}",
            )
            .returning(offers.c.id)
        ).scalar_one()
    )


def add_member(conn: Connection) -> int:
    return int(
        conn.execute(
            insert(members)
            .values(
                actor_uri="https://coop.example/actors/alice",
                handle="alice@coop.example",
                local=1,
                role="member",
                joined_at=NOW,
                state="confirmed",
                created_at=NOW,
            )
            .returning(members.c.id)
        ).scalar_one()
    )


def seller_order(conn: Connection, n: int, **fields: Any) -> tuple[store.StoredOrder, bool]:
    values: dict[str, Any] = {
        "key": f"key{n}",
        "side": Side.SELLER,
        "state": State.PENDING,
        "terms": TERMS,
        "seller": SELLER,
        "buyer": BUYER,
        "offer_activity": f"https://peer.example/activities/{n}",
        "now": NOW,
    }
    values.update(fields)
    return store.insert_order(conn, **values)


def test_an_order_is_stored_once_per_side_and_offer_activity(db: Database) -> None:
    def run(conn: Connection) -> None:
        offer_id = add_offer(conn, 1)
        member_id = add_member(conn)
        first, created = seller_order(
            conn,
            1,
            offer_id=offer_id,
            expires_at=NOW + timedelta(hours=48),
            stock_held=True,
        )
        assert created
        again, created_again = seller_order(conn, 1, key="another", terms=replace(TERMS, note=""))
        assert not created_again
        assert again == first
        # The same Offer on the buyer's side (two co-ops of one node) is another row.
        bought, created_bought = store.insert_order(
            conn,
            key="bought",
            side=Side.BUYER,
            state=State.PENDING,
            terms=TERMS,
            seller=SELLER,
            buyer=BUYER,
            offer_activity="https://peer.example/activities/1",
            member_id=member_id,
            now=NOW,
        )
        assert created_bought
        assert bought.id != first.id

        assert first.side is Side.SELLER
        assert first.state is State.PENDING
        assert first.terms == TERMS
        assert first.quantity == Decimal("2.5")
        assert first.total == Decimal("8.75")
        assert first.offer_id == offer_id
        assert first.stock_held
        assert first.expires_at == NOW + timedelta(hours=48)
        assert first.created_at == first.updated_at == NOW
        assert (first.reason, first.answer, first.agreement_uri, first.document) == (
            None,
            "",
            None,
            None,
        )
        assert store.by_key(conn, "key1") == first
        assert store.by_key(conn, "another") is None
        assert store.by_offer_activity(conn, Side.BUYER, bought.offer_activity) == bought
        assert store.for_member(conn, member_id) == [bought]
        assert store.received(conn) == [first]
        assert store.count_waiting(conn) == 1

    db.write_sync(run)


def test_an_order_without_price_or_options_reads_back_as_stored(db: Database) -> None:
    free = replace(TERMS, total=None, currency=None, delivery=None, payment=None, note="")

    def run(conn: Connection) -> store.StoredOrder:
        order, _ = seller_order(conn, 1, terms=free)
        return order

    order = db.write_sync(run)
    assert order.terms == free
    assert order.offer_id is None
    assert order.member_id is None


def test_transitions_move_only_from_the_states_given(db: Database) -> None:
    def run(conn: Connection) -> None:
        order, _ = seller_order(conn, 1, stock_held=True)
        later = NOW + timedelta(minutes=5)
        # A late acceptance of an order cancelled in between does nothing.
        assert store.transition(
            conn,
            order.id,
            from_states=[State.PENDING],
            to=State.CANCELLED,
            now=later,
            stock_held=False,
        )
        assert not store.transition(
            conn, order.id, from_states=[State.PENDING], to=State.ACCEPTED, now=later
        )
        assert not store.transition(
            conn,
            order.id,
            from_states=[State.ACCEPTED],
            to=State.FULFILLED,
            now=later,
        )
        cancelled = store.by_key(conn, order.key)
        assert cancelled is not None
        assert cancelled.state is State.CANCELLED
        assert not cancelled.stock_held
        assert cancelled.updated_at == later

        other, _ = seller_order(conn, 2)
        assert store.transition(
            conn,
            other.id,
            from_states=[State.PENDING],
            to=State.REJECTED,
            now=later,
            reason=Refusal.SELLER_REJECTED,
            answer="Plus de pommes cette semaine.",
            agreement_uri="https://coop.example/agreements/key2",
            document='{"type": "Agreement"}',
            expires_at=None,
        )
        rejected = store.by_agreement(conn, Side.SELLER, "https://coop.example/agreements/key2")
        assert rejected is not None
        assert rejected.id == other.id
        assert rejected.reason is Refusal.SELLER_REJECTED
        assert rejected.answer == "Plus de pommes cette semaine."
        assert rejected.document == '{"type": "Agreement"}'
        assert store.count_waiting(conn) == 0
        with pytest.raises(TypeError):
            store.transition(
                conn, other.id, from_states=[State.REJECTED], to=State.PENDING, now=later, key="x"
            )

    db.write_sync(run)


def test_holds_and_releases_never_go_below_zero(db: Database) -> None:
    def run(conn: Connection) -> None:
        counted = add_offer(conn, 1)
        uncounted = add_offer(conn, 2)
        assert store.stock_of(conn, counted) == (None, Policy.MANUAL)
        # An offer whose stock is not counted always has enough.
        assert store.hold(conn, uncounted, 10**12, now=NOW)
        store.set_policy(conn, uncounted, Policy.AUTO)
        assert store.stock_of(conn, uncounted) == (None, Policy.AUTO)
        assert store.hold(conn, uncounted, 10**12, now=NOW)
        store.release(conn, uncounted, 10_000, now=NOW)
        assert store.stock_of(conn, uncounted) == (None, Policy.AUTO)

        store.set_stock(conn, counted, Decimal("2.5"), now=NOW)
        assert store.stock_of(conn, counted) == (Decimal("2.5"), Policy.MANUAL)
        assert store.hold(conn, counted, 20_000, now=NOW)
        assert not store.hold(conn, counted, 10_000, now=NOW)
        assert store.stock_of(conn, counted)[0] == Decimal("0.5")
        assert store.hold(conn, counted, 5_000, now=NOW)
        assert not store.hold(conn, counted, 1, now=NOW)
        assert store.stock_of(conn, counted)[0] == Decimal(0)
        store.release(conn, counted, 20_000, now=NOW)
        assert store.stock_of(conn, counted)[0] == Decimal(2)
        store.set_policy(conn, counted, Policy.AUTO)
        assert store.stock_of(conn, counted) == (Decimal(2), Policy.AUTO)
        store.set_stock(conn, counted, None, now=NOW)
        assert store.stock_of(conn, counted) == (None, Policy.AUTO)

        with pytest.raises(ValueError, match="negative"):
            store.set_stock(conn, counted, Decimal(-1), now=NOW)
        with pytest.raises(ValueError, match="four decimals"):
            store.set_stock(conn, counted, Decimal("0.00001"), now=NOW)
        # The table itself refuses a negative stock, whatever writes it.
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(
                update(offer_stock).where(offer_stock.c.offer_id == counted).values(available_e4=-1)
            )

    db.write_sync(run)


def test_of_forty_holds_racing_for_twenty_five_units_exactly_twenty_five_win(
    database_url: str,
) -> None:
    """Eight writers, each with its own database connection, hold one unit at a time.
    Each keeps its transaction open a moment after its update, so that on PostgreSQL
    the others' updates wait on the row and must read the stock it left."""
    migrate_database(database_url)
    setup = Database(database_url, readers=1)
    try:

        def prepare(conn: Connection) -> int:
            offer_id = add_offer(conn, 1)
            store.set_stock(conn, offer_id, Decimal(25), now=NOW)
            return offer_id

        offer_id = setup.write_sync(prepare)
        writers = 8
        barrier = threading.Barrier(writers)
        won: list[bool] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def hold(conn: Connection) -> bool:
            held = store.hold(conn, offer_id, 10_000, now=NOW)
            time.sleep(0.002)
            return held

        def writer() -> None:
            database = Database(database_url, readers=1)
            try:
                barrier.wait()
                for _ in range(40 // writers):
                    result = database.write_sync(hold)
                    with lock:
                        won.append(result)
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)
            finally:
                database.close()

        threads = [threading.Thread(target=writer) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(won) == 40
        assert won.count(True) == 25
        assert setup.read_sync(lambda c: store.stock_of(c, offer_id)) == (
            Decimal(0),
            Policy.MANUAL,
        )
    finally:
        setup.close()


def test_lapsed_holds_are_found_oldest_first(db: Database) -> None:
    def run(conn: Connection) -> list[str]:
        seller_order(conn, 1, expires_at=NOW + timedelta(hours=2))
        seller_order(conn, 2, expires_at=NOW - timedelta(hours=1))
        seller_order(conn, 3, expires_at=NOW)
        seller_order(conn, 4, expires_at=None)
        accepted, _ = seller_order(conn, 5, expires_at=NOW - timedelta(hours=3))
        store.transition(conn, accepted.id, from_states=[State.PENDING], to=State.ACCEPTED, now=NOW)
        seller_order(conn, 6, side=Side.BUYER, key="buyer6", expires_at=NOW - timedelta(hours=3))
        seller_order(conn, 7, expires_at=NOW - timedelta(minutes=1))
        assert [o.key for o in store.lapsed(conn, now=NOW, limit=2)] == ["key2", "key7"]
        return [o.key for o in store.lapsed(conn, now=NOW, limit=10)]

    assert db.write_sync(run) == ["key2", "key7", "key3"]


def test_received_orders_and_a_members_orders_are_paged_newest_first(db: Database) -> None:
    def run(conn: Connection) -> None:
        member_id = add_member(conn)
        keys = []
        for n in range(5):
            order, _ = seller_order(conn, n)
            keys.append(order.key)
            seller_order(conn, n, side=Side.BUYER, key=f"bought{n}", member_id=member_id)
        store.transition(
            conn,
            store.by_key(conn, "key1").id,  # type: ignore[union-attr]
            from_states=[State.PENDING],
            to=State.ACCEPTED,
            now=NOW,
        )
        first = store.received(conn, limit=2)
        assert [o.key for o in first] == ["key4", "key3"]
        rest = store.received(conn, limit=10, before_id=first[-1].id)
        assert [o.key for o in rest] == ["key2", "key1", "key0"]
        assert [o.key for o in store.received(conn, states=[State.ACCEPTED])] == ["key1"]
        assert store.received(conn, before_id=2**40) == store.received(conn)
        assert store.count_waiting(conn) == 4
        mine = store.for_member(conn, member_id, limit=3)
        assert [o.key for o in mine] == ["bought4", "bought3", "bought2"]
        older = store.for_member(conn, member_id, before_id=mine[-1].id)
        assert [o.key for o in older] == ["bought1", "bought0"]
        assert store.for_member(conn, member_id + 1) == []

    db.write_sync(run)


def test_stock_changes_are_announced_at_most_once_per_period(db: Database) -> None:
    every = timedelta(minutes=10)

    def run(conn: Connection) -> None:
        quiet = add_offer(conn, 1)
        changed = add_offer(conn, 2)
        told = add_offer(conn, 3)
        stale = add_offer(conn, 4)
        store.set_policy(conn, quiet, Policy.AUTO)
        assert store.stock_to_announce(conn, now=NOW, every=every, limit=10) == []

        store.set_stock(conn, stale, Decimal(5), now=NOW - timedelta(minutes=30))
        store.set_stock(conn, changed, Decimal(5), now=NOW - timedelta(minutes=20))
        store.set_stock(conn, told, Decimal(5), now=NOW - timedelta(minutes=25))
        store.mark_announced(conn, told, now=NOW - timedelta(minutes=5))
        store.mark_announced(conn, stale, now=NOW - timedelta(minutes=30))
        assert store.stock_to_announce(conn, now=NOW, every=every, limit=10) == [changed]
        # Held since: told 5 minutes ago, it waits; told 30 minutes ago, it goes.
        assert store.hold(conn, told, 10_000, now=NOW - timedelta(minutes=1))
        store.release(conn, stale, 10_000, now=NOW - timedelta(minutes=2))
        assert store.stock_to_announce(conn, now=NOW, every=every, limit=10) == [
            changed,
            stale,
        ]
        assert store.stock_to_announce(conn, now=NOW, every=every, limit=1) == [changed]
        later = NOW + timedelta(minutes=5)
        assert store.stock_to_announce(conn, now=later, every=every, limit=10) == [
            changed,
            stale,
            told,
        ]
        store.mark_announced(conn, changed, now=later)
        assert store.stock_to_announce(conn, now=later, every=every, limit=10) == [stale, told]
        # A stock the offer's own Update carries leaves nothing to announce.
        store.set_stock(conn, stale, Decimal(7), now=later, announced=True)
        assert store.stock_to_announce(conn, now=later, every=every, limit=10) == [told]
        assert store.stock_of(conn, stale)[0] == Decimal(7)

    db.write_sync(run)
