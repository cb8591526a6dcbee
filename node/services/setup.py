"""Creating a node's database and its co-op, and opening an existing one safely."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from federation import keys
from federation.clock import Clock
from node.errors import Conflict, SchemaOutdated
from node.services import identity, tokens
from node.settings import Settings
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine


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
