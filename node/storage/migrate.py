"""Schema migrations (Alembic), and the check that keeps a node off an old schema.

Alembic itself takes about a second to import on a small machine, so the start-up
check does not use it: it reads ``alembic_version`` with one query and compares it to
:data:`HEAD_REVISION`, which a test keeps equal to Alembic's own head.

Its functions import what they use when they run (Alembic, above).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# The newest revision under migrations/versions. Update it with every new revision.
HEAD_REVISION = "0014"


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
    if revision in _known_revisions():
        return SchemaState.OUTDATED
    return SchemaState.UNKNOWN


def _known_revisions() -> set[str]:
    # Revision files are named "<revision>_<slug>.py".
    return {path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("*.py")}


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default)."""
    upgrade_or_downgrade(engine, revision)


def upgrade_or_downgrade(engine: Engine, revision: str) -> None:
    """Move the database to ``revision``, up or down ("base" empties it)."""
    from alembic import command

    config = _config()
    with engine.begin() as conn:
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
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config
