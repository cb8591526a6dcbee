"""Schema migrations (Alembic), and the check that keeps a node off an old schema.

Alembic itself takes about a second to import on a small machine, so the start-up
check does not use it: it reads ``alembic_version`` with one query and compares it to
:data:`HEAD_REVISION`, which a test keeps equal to Alembic's own head.

Its functions import what they use when they run (Alembic, above).
"""

from __future__ import annotations

import enum
import re
import sqlite3
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from alembic.config import Config

# Package data of node.storage, named the way Alembic reads a package's resources.
MIGRATIONS = "node.storage:migrations"
MIGRATIONS_DIR = files("node.storage") / "migrations"

# The newest revision under migrations/versions. Update it with every new revision.
HEAD_REVISION = "0026"

# The revisions that remove or change something an older version of coopnode reads, so
# that a node still serving with the older code would fail once they ran: on PostgreSQL
# `coopnode migrate` runs them only with no other session open on the database. Every
# revision so far only adds (tables, nullable columns, indexes), which older code never
# notices. Add a revision here when it drops, renames or retypes a column or a table.
NEEDS_STOPPED_NODE: frozenset[str] = frozenset()

# The revisions that rewrite every row of a table, and those tables. On PostgreSQL each
# rewritten row leaves its old version behind until the table is vacuumed, and a large
# table and its indexes keep the size of both (deploy/README.md, "Upgrades"):
# `coopnode migrate` says what to run after them.
REWRITES_TABLES: dict[str, tuple[str, ...]] = {
    "0022": ("offers",),
    "0024": ("offers",),
    "0025": ("offers",),
}


def rewritten_tables(steps: list[Step]) -> list[str]:
    """The tables whose every row ``steps`` rewrite, each once, in the order met."""
    return list(dict.fromkeys(t for step in steps for t in REWRITES_TABLES.get(step.revision, ())))


@dataclass(frozen=True, slots=True)
class Step:
    """One revision still to run: its id and what it does, in its own words."""

    revision: str
    title: str


class SchemaState(enum.Enum):
    EMPTY = "empty"  # a new database: migrate it
    CURRENT = "current"
    OUTDATED = "outdated"  # run `coopnode migrate`
    UNKNOWN = "unknown"  # a revision this version of coopnode does not know (newer?)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def schema_state(engine: Engine) -> SchemaState:
    revision = current_revision(engine)
    if revision is None:
        return SchemaState.EMPTY
    if revision == HEAD_REVISION:
        return SchemaState.CURRENT
    if revision in known_revisions():
        return SchemaState.OUTDATED
    return SchemaState.UNKNOWN


def known_revisions() -> set[str]:
    """The revisions this version of coopnode has files for (named "<revision>_<slug>.py")."""
    return {
        entry.name.split("_", 1)[0]
        for entry in (MIGRATIONS_DIR / "versions").iterdir()
        if entry.name.endswith(".py") and entry.name[:1].isascii() and entry.name[:1].isdigit()
    }


def pending_steps(engine: Engine) -> list[Step]:
    """The revisions between the database's and the newest, oldest first (none for an
    up-to-date database; every one for an empty database)."""
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    script = ScriptDirectory.from_config(_config())
    scripts = script.iterate_revisions("heads", current or "base")
    steps = [Step(s.revision, _title(s.doc)) for s in scripts if s.revision != current]
    return steps[::-1]


def _title(doc: str | None) -> str:
    # A revision's docstring starts with a sentence saying what it does.
    paragraph = re.sub(r"\s+", " ", (doc or "").split("\n\n")[0]).strip()
    return re.split(r"(?<=\.) ", paragraph, maxsplit=1)[0]


def sqlite_held_elsewhere(database_url: str) -> bool:
    """Whether another process has this SQLite database open, as a serving node does
    (its connections stay open): asking for the database all to ourselves fails then.

    In WAL mode each open connection keeps a shared lock on the database file, so an
    exclusive lock is refused even while the node is idle."""
    path = make_url(database_url).database
    if not path or not Path(path).exists():
        return False
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("PRAGMA locking_mode=EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()
    return False


def other_sessions(engine: Engine) -> int:
    """PostgreSQL: how many other sessions have this database open (a serving node's,
    its workers', anyone's)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default)."""
    upgrade_or_downgrade(engine, revision)


def upgrade_or_downgrade(engine: Engine, revision: str) -> None:
    """Move the database to ``revision``, up or down ("base" empties it)."""
    from alembic import command

    config = _config()
    # On SQLite the write lock is taken at BEGIN: a migration reads the schema before
    # it changes it, and a read transaction that turns into a write while another
    # process commits fails at once ("database is locked") instead of waiting.
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        config.attributes["connection"] = conn
        if revision == "head" or _is_ahead(conn, revision):
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def _is_ahead(conn: Connection, revision: str) -> bool:
    """Whether ``revision`` is newer than the database's current one."""
    from alembic.script import ScriptDirectory

    if not inspect(conn).has_table("alembic_version"):
        return revision != "base"
    current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if revision == "base" or current is None:
        return current is None and revision != "base"
    script = ScriptDirectory.from_config(_config())
    return any(r.revision == current for r in script.iterate_revisions(revision, "base"))


def alembic_head() -> str:
    """The head revision as Alembic computes it from the revision files."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config
