"""Copies of a node's database for backups, engine by engine.

- SQLite: the online backup API (``sqlite3.Connection.backup``) in one step, which
  copies one consistent state of the file while the node keeps reading and writing it
  (in WAL mode the copy does not block the writer).
- PostgreSQL: ``pg_dump`` in its custom format, found on ``PATH``. The dump runs on a
  snapshot exported from a transaction that also reads the schema revision and the
  counts, so the manifest describes exactly what the dump holds. ``pg_restore`` puts
  it back in one transaction.
- From a SQLite backup into PostgreSQL (a co-op that outgrows SQLite): the copy is
  brought to the newest schema, PostgreSQL gets the same schema from the migrations,
  and the rows are copied table by table in the order of their foreign keys; the
  sequences then continue after the highest ids.

The password of a PostgreSQL URL goes to ``pg_dump`` and ``pg_restore`` through their
environment, never on their command line (which other users of the machine can read).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import make_url

from node.errors import NodeError
from node.storage import migrate
from node.storage.engine import create_null_pool_engine, is_sqlite
from node.storage.tables import metadata

# Rows copied per statement from SQLite into PostgreSQL.
COPY_BATCH = 5000


class BackupError(NodeError):
    """A backup cannot be made or restored; the reason says why in plain words."""


def engine_name(url: str) -> str:
    return "sqlite" if is_sqlite(url) else "postgresql"


def sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"cannot back up the SQLite database {database!r}: give a file")
    return Path(database)


def table_counts(conn: Connection) -> dict[str, int]:
    """The number of rows of each of the schema's tables that the database has."""
    present = set(inspect(conn).get_table_names())
    return {
        table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for table in metadata.sorted_tables
        if table.name in present
    }


def revision_of(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def database_facts(url: str) -> tuple[str | None, dict[str, int]]:
    """The schema revision and the table counts of the database at ``url``."""
    engine = create_null_pool_engine(url)
    try:
        with engine.connect() as conn:
            return revision_of(conn), table_counts(conn)
    finally:
        engine.dispose()


def has_tables(url: str) -> bool:
    engine = create_null_pool_engine(url)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def snapshot_sqlite(url: str, copy: Path) -> tuple[str | None, dict[str, int]]:
    """Copy the SQLite database at ``url`` to ``copy``; its revision and counts."""
    source_path = sqlite_file(url)
    if not source_path.exists():
        raise BackupError(f"the database {source_path} does not exist")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    try:
        # pages=-1: one step, so the copy is one state of the database, not a mix.
        source.backup(target, pages=-1)
        # The copy is a plain file on its own: no WAL beside it in the archive.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()
    return database_facts(f"sqlite:///{copy}")


def dump_postgres(url: str, dump: Path) -> tuple[str | None, dict[str, int]]:
    """``pg_dump`` the database at ``url`` into ``dump``; its revision and counts, read
    in the very snapshot the dump is made from."""
    program = _program("pg_dump")
    engine = create_null_pool_engine(url)
    try:
        connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision, counts = revision_of(conn), table_counts(conn)
            command = [program, "--format=custom", "--no-owner", "--no-privileges"]
            command += [f"--snapshot={snapshot}", f"--file={dump}"]
            _run(command, url)
    finally:
        engine.dispose()
    return revision, counts


def restore_postgres(url: str, dump: Path) -> None:
    """``pg_restore`` a dump into the empty database at ``url``, in one transaction."""
    program = _program("pg_restore")
    command = [program, "--no-owner", "--no-privileges", "--exit-on-error"]
    _run([*command, "--single-transaction", str(dump)], url)


def copy_sqlite_into_postgres(sqlite_copy: Path, url: str) -> None:
    """Bring the SQLite file ``sqlite_copy`` (a restored backup, changed in place) to
    the newest schema, give the empty PostgreSQL database at ``url`` that schema, and
    copy every row across."""
    source = create_null_pool_engine(f"sqlite:///{sqlite_copy}")
    target = create_null_pool_engine(url)
    try:
        migrate.upgrade(source)
        migrate.upgrade(target)
        with source.connect() as reading, target.begin() as writing:
            for table in metadata.sorted_tables:
                rows = reading.execution_options(yield_per=COPY_BATCH).execute(select(table))
                for part in rows.mappings().partitions():
                    writing.execute(table.insert(), [dict(row) for row in part])
                if "id" in table.c and table.c.id.primary_key:
                    # The next id a sequence gives must follow the highest copied one.
                    sequence = func.pg_get_serial_sequence(table.name, "id")
                    highest = select(func.max(table.c.id)).scalar_subquery()
                    writing.execute(
                        select(
                            func.setval(sequence, func.coalesce(highest, 1), highest.is_not(None))
                        )
                    )
    finally:
        source.dispose()
        target.dispose()


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} was not found on PATH: install the PostgreSQL client programs "
            "(apt-get install postgresql-client) in the version of the server or newer"
        )
    return found


def _run(command: list[str], url: str) -> None:
    target, environ = _libpq(url)
    # The program is pg_dump or pg_restore from PATH; the arguments are a list (no shell).
    result = subprocess.run(  # noqa: S603
        [*command, f"--dbname={target}"], env=environ, capture_output=True, text=True
    )
    if result.returncode != 0:
        program = Path(command[0]).name
        raise BackupError(f"{program} failed: {result.stderr.strip() or result.returncode}")


def _libpq(url: str, environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that gives it."""
    parsed = make_url(url)
    found = dict(os.environ if environ is None else environ)
    if parsed.password:
        found["PGPASSWORD"] = str(parsed.password)
    # URL.set() cannot remove a part; the named tuple's _replace can.
    bare = parsed._replace(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), found
