"""Upgrades keep a co-op's data: for every schema revision, a database at that revision
holding the data its code wrote is migrated to the newest, on SQLite and PostgreSQL, and
everything is still there, intact, and readable by the application."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from node.catalogue import search as catalogue
from node.follows import store as follows
from node.governance.store import ballots, proposals
from node.members import store as members
from node.services import identity, tokens
from node.storage import migrate
from node.storage.engine import create_null_pool_engine
from node.storage.tables import metadata
from tests.support import revision_data as data

REVISIONS = sorted(
    path.name.split("_", 1)[0] for path in (migrate.MIGRATIONS_DIR / "versions").glob("0*.py")
)


def test_every_revision_and_every_table_has_data_to_upgrade() -> None:
    assert REVISIONS[-1] == migrate.HEAD_REVISION
    assert {rows.table for rows in data.TABLES} == set(metadata.tables)


@pytest.fixture(params=REVISIONS)
def upgraded(request: pytest.FixtureRequest, database_url: str) -> Any:
    """A database made at the revision, seeded, then migrated to the newest: its engine
    and the revision."""
    revision = str(request.param)
    engine = create_null_pool_engine(database_url)
    migrate.upgrade(engine, revision)
    with engine.begin() as conn:
        seeded = data.seed(conn, revision)
    assert seeded
    migrate.upgrade(engine)
    yield engine, revision
    engine.dispose()


def _same(value: object, wanted: object) -> bool:
    if isinstance(wanted, bytes) and isinstance(value, memoryview):
        return bytes(value) == wanted
    return value == wanted


def test_every_row_is_there_as_written(upgraded: tuple[sa.Engine, str]) -> None:
    engine, revision = upgraded
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    expected = data.expected(revision)
    with engine.connect() as conn:
        for name, rows in expected.items():
            table = metadata.tables[name]
            key = [c.name for c in table.primary_key.columns]
            found = {
                tuple(row[k] for k in key): dict(row)
                for row in conn.execute(sa.select(table)).mappings()
            }
            assert len(found) == len(rows), name
            for row in rows:
                stored = found[tuple(row[k] for k in key)]
                wrong = {k: stored[k] for k, v in row.items() if not _same(stored[k], v)}
                assert wrong == {}, f"{name} {row}"


def test_the_constraints_hold(upgraded: tuple[sa.Engine, str]) -> None:
    engine, revision = upgraded
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            if revision >= "0005":
                conn.exec_driver_sql(
                    "INSERT INTO offers_fts(offers_fts) VALUES ('integrity-check')"
                )
        # A second co-op of the same name, and a key for a missing actor, are refused.
        actors = metadata.tables["actors"]
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(sa.insert(actors).values(**data.TABLES[0].rows[0] | {"id": 99}))
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(
                sa.insert(metadata.tables["api_tokens"]).values(
                    token_hash="x", name="x", role="admin", actor_id=999, created_at=data.T0
                )
            )
        # New rows take ids after the old ones.
        new = conn.execute(
            sa.insert(actors)
            .values(username="newcomer", type="Person", name="N", summary="", created_at=data.T0)
            .values(updated_at=data.T0)
            .returning(actors.c.id)
        ).scalar_one()
        assert new > 2


def test_the_application_reads_the_upgraded_data(upgraded: tuple[sa.Engine, str]) -> None:
    engine, revision = upgraded
    now = data.at(100)
    with engine.connect() as conn:
        coop = identity.get_actor(conn, "coop")
        assert coop.actor.name == "Le Verger"
        assert coop.rsa_private_pem == data.COOP_RSA
        assert coop.ed25519_private_pem == data.COOP_ED25519
        admin = tokens.find_token(conn, data.ADMIN_TOKEN)
        assert admin is not None
        assert admin.role == "admin"
        assert tokens.find_token(conn, "cn_revoked") is None
        if revision >= "0004":
            followers = follows.list_followers(conn, actor_id=1)
            assert [f.follower for f in followers] == [f"{data.PEER}/actors/coop"]
            assert follows.following_state(
                conn, actor_id=1, followed=f"{data.PEER}/actors/coop"
            ) == ("accepted")
        if revision >= "0005":
            # A prefix: asked of the text index as the words it begins, which the
            # upgrade listed from the offers stored before it.
            query = catalogue.parse_query({"q": "confit"})
            hits = catalogue.search(conn, query, now=now).hits
            assert {h.title for h in hits} == {
                f"Confiture du verger n°{i}" for i in range(2, data.OFFERS + 4, 5) if i != 3
            }
            assert Decimal("3.70") in {h.price for h in hits}
            recent = catalogue.search(conn, catalogue.parse_query({"limit": "100"}), now=now)
            assert len(recent.hits) == data.OFFERS + 4 - 1  # the withdrawn one aside
        if revision >= "0007":
            current = members.list_members(conn)
            assert [m.handle for m in current] == [
                "alice@coop.example",
                "bob@peer.example",
                "dan@peer.example",
            ]
            assert current[0].has_password
            assert current[0].college == "producers"
        if revision >= "0008":
            press = proposals.get(conn, "press")
            assert press.state == "closed"
            assert press.outcome == {"adopted": True}
            assert str(press.threshold) == "2/3"
            roof = proposals.get(conn, "roof")
            assert roof.state == "open"
            assert isinstance(roof.closes_at, datetime)
            assert ballots.count(conn, 1) == 3
            assert ballots.latest_choices(conn, 2, data.VOTERS[0]) == ["Yes"]
