"""Creating a node's database and its co-op, opening an existing one safely, and
planning an upgrade of its schema."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from sqlalchemy.engine import Connection, make_url

from federation import keys
from federation.clock import Clock
from node.errors import Conflict, SchemaOutdated
from node.services import identity, tokens
from node.settings import Settings
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine, is_sqlite


def check_schema(database_url: str) -> migrate.SchemaState:
    """Refuse a database whose schema is not the one this version of coopnode expects."""
    engine = create_null_pool_engine(database_url)
    try:
        state = migrate.schema_state(engine)
    finally:
        engine.dispose()
    if state is migrate.SchemaState.OUTDATED:
        raise SchemaOutdated(
            "the database schema is older than this version of coopnode: "
            "run `coopnode migrate` (after a backup) and start again"
        )
    if state is migrate.SchemaState.UNKNOWN:
        raise SchemaOutdated(
            "the database was migrated by a newer version of coopnode; upgrade coopnode"
        )
    return state


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What ``coopnode migrate`` would do: from which revision (None: an empty database)
    to which, by which steps; ``refused`` says why it must not run now (None: it may);
    ``others`` counts the other sessions open on a PostgreSQL database; ``to_vacuum``
    names the tables whose every row the steps rewrite in an existing PostgreSQL
    database (see :data:`node.storage.migrate.REWRITES_TABLES`), and ``vacuum`` is the
    command that vacuums them afterwards."""

    current: str | None
    head: str
    steps: list[migrate.Step]
    refused: str | None
    others: int = 0
    to_vacuum: tuple[str, ...] = ()
    vacuum: str | None = None


def plan_migration(database_url: str) -> MigrationPlan:
    """The steps to bring the database up to date, and whether they may run now.

    SQLite allows one writing process: a serving node keeps the database open, and a
    migration would fight it for the database (and change the schema under it), so the
    plan is refused while another process has the database open.

    PostgreSQL runs the whole migration in one transaction: a serving node's queries
    wait for its locks, then see the new schema, never half of it. Steps that only add
    are harmless to the older code still running, so they run while the node serves
    (restart it afterwards to run the new code); a step listed in
    :data:`node.storage.migrate.NEEDS_STOPPED_NODE` is refused while any other session
    is open on the database."""
    engine = create_null_pool_engine(database_url)
    try:
        state = migrate.schema_state(engine)
        current = migrate.current_revision(engine)
        if state is migrate.SchemaState.UNKNOWN:
            return MigrationPlan(
                current,
                migrate.HEAD_REVISION,
                [],
                f"the database is at revision {current}, which this version of coopnode does "
                "not know (a newer one migrated it): upgrade coopnode",
            )
        steps = migrate.pending_steps(engine)
        if not steps:
            return MigrationPlan(current, migrate.HEAD_REVISION, [], None)
        if is_sqlite(database_url):
            held = migrate.sqlite_held_elsewhere(database_url)
            held_by = (
                "another process has the SQLite database open: stop `coopnode serve` (and "
                "anything else using the database), then run `coopnode migrate` again"
            )
            return MigrationPlan(current, migrate.HEAD_REVISION, steps, held_by if held else None)
        others = migrate.other_sessions(engine)
        blocking = [s.revision for s in steps if s.revision in migrate.NEEDS_STOPPED_NODE]
        reason: str | None = None
        if blocking and others:
            reason = (
                f"{others} other session(s) are open on the database, and step(s) "
                f"{', '.join(blocking)} change what the running version reads: stop "
                "`coopnode serve` and `coopnode worker`, then run `coopnode migrate` again"
            )
        # A new database has no old rows to vacuum.
        rewritten = migrate.rewritten_tables(steps) if current is not None else []
        vacuum = _vacuum_command(database_url, rewritten) if rewritten else None
        return MigrationPlan(
            current, migrate.HEAD_REVISION, steps, reason, others, tuple(rewritten), vacuum
        )
    finally:
        engine.dispose()


def _vacuum_command(database_url: str, tables: list[str]) -> str:
    """The psql command that gives back the space of ``tables``' old rows, then lets
    PostgreSQL's planner count them again (deploy/README.md, "Upgrades (PostgreSQL)")."""
    database = shlex.quote(make_url(database_url).database or "")
    statements = " ".join(f"-c 'VACUUM FULL {t}' -c 'VACUUM ANALYZE {t}'" for t in tables)
    return f"psql {database} {statements}"


def migrate_database(database_url: str) -> None:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def create_coop(settings: Settings, db: Database, clock: Clock) -> str:
    """Create the co-op's Group actor with its keys, and a first admin token.

    Returns the token, which is shown once and never stored in clear.
    """
    # Key generation takes tens of milliseconds: done here, not on the writer thread.
    rsa_pem = keys.generate_rsa_private_pem()
    ed_pem = keys.generate_ed25519_private_pem()
    token = tokens.new_token()
    now = clock.now()

    def unit(conn: Connection) -> None:
        if identity.actor_exists(conn, settings.handle):
            raise Conflict(f"this node already has an actor named {settings.handle!r}")
        identity.create_actor(
            conn,
            username=settings.handle,
            type_="Group",
            name=settings.name,
            summary=settings.summary,
            now=now,
            rsa_private_pem=rsa_pem,
            ed25519_private_pem=ed_pem,
        )
        tokens.store_token(conn, token, name="admin (created by init)", role="admin", now=now)

    db.write_sync(unit)
    return token
