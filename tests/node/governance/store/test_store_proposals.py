"""The proposals table through its store: a proposal is stored with its settings and read
back as typed values equal to what was checked, each move of its life is claimed once,
and the worker's list of what is due follows the states."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy.engine import Connection

from node.governance.rules.proposal_input import ProposalInput, parse_proposal_input
from node.governance.rules.tally import Majority, Option, Qualified, Role
from node.governance.store import proposals as store
from node.governance.store.rows import Mirror, Mode, State
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine
from node.storage.tables import actors

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
EVERY = timedelta(minutes=1)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


def checked(**more: object) -> ProposalInput:
    data: dict[str, object] = {
        "title": "Solar panels",
        "text": "On the *roof*.",
        "options": ["For", "Against", "Abstain"],
        "opens_at": "2027-03-01T09:00:00Z",
        "closes_at": "2027-03-08T09:00:00Z",
        **more,
    }
    return parse_proposal_input(data, now=NOW, colleges=None)


def insert(
    conn: Connection,
    settings: ProposalInput,
    key: str,
    *,
    weights: dict[str, Fraction] | None = None,
    electorate: list[str] | None = None,
    mirror: Mirror | None = None,
) -> int:
    actor_id = conn.execute(
        actors.insert()
        .values(
            username=f"coop-{key}",
            type="Organization",
            name="Co-op",
            summary="",
            created_at=NOW,
            updated_at=NOW,
        )
        .returning(actors.c.id)
    ).scalar_one()
    return store.insert_proposal(
        conn,
        settings,
        key=key,
        uri=f"https://coop.example/proposals/{key}",
        author=None,
        actor_id=actor_id,
        weigh=weights is not None,
        weights=weights,
        electorate=electorate,
        mirror=mirror,
        now=NOW,
    )


def test_a_stored_proposal_reads_back_as_it_was_checked(db: Database) -> None:
    settings = checked(rule="qualified", threshold="2/3", quorum="25%", language="fr")

    def unit(conn: Connection) -> None:
        insert(conn, settings, "a", electorate=["https://coop.example/actors/coop"])

    db.write_sync(unit)
    found = db.read_sync(lambda conn: store.get(conn, "a"))

    assert found.state is State.SCHEDULED
    assert found.counting_mode is Mode.OPEN
    assert found.options == (
        Option("For", Role.FOR),
        Option("Against", Role.AGAINST),
        Option("Abstain", Role.ABSTAIN),
    )
    assert (found.threshold, found.quorum) == (Fraction(2, 3), Fraction(1, 4))
    assert found.text == "On the *roof*."
    assert found.language == "fr"
    assert found.electorate == ["https://coop.example/actors/coop"]
    assert found.shown.counts == {}
    assert found.shown.voters == 0
    assert found.outcome is None
    assert found.mirror is None
    assert found.tally_settings().rule == Qualified(Fraction(2, 3))


def test_weights_and_a_mirror_are_kept_exactly(db: Database) -> None:
    mirror = Mirror(
        of="https://host.example/proposals/x",
        host="https://host.example/actors/coop",
        inbox="https://host.example/inbox",
        mode="coop",
        tie="against",
    )
    weights = {"producers": Fraction(2, 3), "consumers": Fraction(1, 3)}

    def unit(conn: Connection) -> None:
        insert(conn, checked(), "b", weights=weights, mirror=mirror)

    db.write_sync(unit)
    found = db.read_sync(lambda conn: store.get(conn, "b"))

    assert found.college_weights == weights
    assert found.mirror == mirror
    assert db.read_sync(lambda conn: store.mirror_key(conn, mirror.of)) == "b"
    assert db.read_sync(lambda conn: store.mirror_key(conn, mirror.of + "y")) is None
    assert found.tally_settings().rule == Majority()


def test_each_move_is_claimed_once_and_the_due_list_follows_the_states(db: Database) -> None:
    pk = db.write_sync(lambda conn: insert(conn, checked(), "c"))
    later = NOW + timedelta(days=8)

    due = db.read_sync(lambda conn: store.due(conn, NOW, EVERY))
    assert due.opening == [(pk, NOW)]
    assert due.closing == []
    assert due.stale == []

    assert db.write_sync(lambda conn: store.claim_opening(conn, pk, NOW))
    db.write_sync(lambda conn: store.mark_open(conn, pk, eligible=3, digest="d"))
    assert not db.write_sync(lambda conn: store.claim_opening(conn, pk, NOW))

    db.write_sync(lambda conn: store.mark_counts_changed(conn, pk))
    assert db.read_sync(lambda conn: store.due(conn, later, EVERY)).stale == [pk]
    assert db.write_sync(lambda conn: store.claim_counts(conn, pk, later, EVERY))
    assert not db.write_sync(lambda conn: store.claim_counts(conn, pk, later, EVERY))

    due = db.read_sync(lambda conn: store.due(conn, later, EVERY))
    assert due.closing == [(pk, NOW + timedelta(days=7), "open")]

    def close(conn: Connection) -> bool:
        return store.record_close(
            conn,
            pk,
            was=State.OPEN,
            counts={"For": 2},
            voters=2,
            outcome={"result": "passed"},
            now=later,
        )

    assert db.write_sync(close)
    assert not db.write_sync(close)
    found = db.read_sync(lambda conn: store.by_id(conn, pk))
    assert found.state is State.CLOSED
    assert found.shown.counts == {"For": 2}
    assert found.shown.voters == 2
    assert found.outcome == {"result": "passed"}
    assert found.closed_at == later
    assert db.read_sync(lambda conn: store.open_by_id(conn, pk)) is None
