"""What the node keeps of each host's signature scheme: read, written, expired, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from federation.schemes import DECLARATION_FRESHNESS, ED25519_CAPABILITY, LEARNED_FOR, Scheme
from node.services import remote_actors, signature_schemes
from node.services.setup import migrate_database
from node.services.signature_schemes import HostScheme
from node.storage.database import Database
from node.storage.tables import signature_schemes as table
from tests.support.network import START

LEARNED = HostScheme(Scheme.CAVAGE_RSA, True, "HTTP 401 to RFC 9421, HTTP 202 to draft-cavage")
DECLARED = HostScheme(Scheme.RFC9421_ED25519, False, "declared")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


def actor(host: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"https://{host}/users/{n}", "inbox": f"https://{host}/inbox", **fields}


def test_declarations_are_read_from_the_hosts_own_actors(db: Database) -> None:
    declaring = {"generator": {"implements": [{"href": ED25519_CAPABILITY}]}}
    documents = [
        *(actor("big.test", n) for n in range(50)),
        actor("big.test", 50, **declaring),
        # The capability quoted in a profile is no declaration.
        actor("quoting.test", 1, summary=f"we like {ED25519_CAPABILITY}"),
        actor("other.test", 1, **declaring),
        # Another server on the same host, on another port, declares for itself only.
        actor("port.test:8443", 1, **declaring),
    ]

    def store(conn: Any) -> None:
        for document in documents:
            remote_actors.store(conn, document, now=START)

    db.write_sync(store)

    def read(server: str) -> HostScheme:
        return db.read_sync(lambda c: signature_schemes.declared(c, server))

    found = {
        host: read(f"https://{host}:443")
        for host in ("big.test", "quoting.test", "nobody.test", "port.test")
    }

    assert found["big.test"].scheme is Scheme.RFC9421_ED25519
    assert "https://big.test/users/50" in found["big.test"].reason
    assert found["quoting.test"].scheme is Scheme.CAVAGE_RSA
    assert found["nobody.test"].scheme is Scheme.CAVAGE_RSA
    assert found["port.test"].scheme is Scheme.CAVAGE_RSA
    assert read("https://port.test:8443").scheme is Scheme.RFC9421_ED25519


def test_many_servers_on_one_host_each_read_their_own_declaration(db: Database) -> None:
    """Nodes on one machine, one port each (a test network, a benchmark): more of them
    than the documents read at once, and each still found by its own actors."""
    declaring = {"generator": {"implements": [{"href": ED25519_CAPABILITY}]}}

    def store(conn: Any) -> None:
        for port in range(8000, 8040):
            remote_actors.store(conn, actor(f"127.0.0.1:{port}", 1, **declaring), now=START)

    db.write_sync(store)
    for port in (8000, 8039):
        found = db.read_sync(
            lambda c, port=port: signature_schemes.declared(c, f"https://127.0.0.1:{port}")
        )
        assert found.scheme is Scheme.RFC9421_ED25519, port


def test_a_plan_reads_declarations_only_for_hosts_without_a_row(db: Database) -> None:
    db.write_sync(lambda c: signature_schemes.record_learned(c, {"a.test": LEARNED}, now=START))

    schemes, read = db.read_sync(
        lambda c: signature_schemes.plan(c, ["a.test", "b.test"], now=START)
    )

    assert schemes["a.test"] == LEARNED
    assert schemes["b.test"].scheme is Scheme.CAVAGE_RSA
    assert set(read) == {"b.test"}


def test_a_declaration_replaces_an_expired_row_but_not_a_fresh_one(db: Database) -> None:
    db.write_sync(lambda c: signature_schemes.record_learned(c, {"a.test": LEARNED}, now=START))

    db.write_sync(lambda c: signature_schemes.record_declared(c, {"a.test": DECLARED}, now=START))
    fresh = db.read_sync(lambda c: signature_schemes.known(c, ["a.test"], now=START))
    later = START + LEARNED_FOR
    db.write_sync(lambda c: signature_schemes.record_declared(c, {"a.test": DECLARED}, now=later))
    replaced = db.read_sync(lambda c: signature_schemes.known(c, ["a.test"], now=later))

    assert fresh == {"a.test": LEARNED}
    assert replaced == {"a.test": DECLARED}
    expired = later + DECLARATION_FRESHNESS
    assert db.read_sync(lambda c: signature_schemes.known(c, ["a.test"], now=expired)) == {}


def test_rows_are_bounded_expired_ones_first(db: Database) -> None:
    learned = {f"{n}.test": LEARNED for n in range(3)}
    db.write_sync(lambda c: signature_schemes.record_learned(c, learned, now=START))
    later = START + timedelta(days=1)
    db.write_sync(lambda c: signature_schemes.record_learned(c, {"new.test": LEARNED}, now=later))
    # One row expired long ago; then at most three rows are kept.
    db.write_sync(
        lambda c: c.execute(table.update().where(table.c.host == "0.test").values(expires_at=START))
    )

    deleted = db.write_sync(lambda c: signature_schemes.prune(c, now=later, keep=2))

    hosts = db.read_sync(lambda c: set(c.execute(select(table.c.host)).scalars()))
    assert deleted == 2
    assert hosts == {"2.test", "new.test"}


def test_a_scheme_this_version_does_not_know_is_read_again(db: Database) -> None:
    row = {
        "host": "future.test",
        "scheme": "rfc9421-ml-dsa",
        "confirmed": 1,
        "reason": "",
        "decided_at": START,
        "expires_at": START + LEARNED_FOR,
    }
    db.write_sync(lambda c: c.execute(insert(table).values(row)))

    assert db.read_sync(lambda c: signature_schemes.known(c, ["future.test"], now=START)) == {}
