"""Engines for SQLite (the embedded default) and PostgreSQL (for co-ops that scale).

The same SQLAlchemy Core code runs on both. SQLite needs two adjustments:

* Python's ``sqlite3`` opens transactions implicitly and does not understand
  savepoints well; following SQLAlchemy's documented recipe we switch the driver to
  autocommit and emit ``BEGIN`` ourselves, which makes ``SAVEPOINT`` work.
* The writer opens its transactions with ``BEGIN IMMEDIATE`` so that it takes the
  write lock up front: a deferred transaction that later upgrades to a writer can fail
  with "database is locked" when another process (``coopnode tokens create`` while the
  node runs) wrote in between.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

# How long a connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How much of the database file a connection reads through memory mapping rather than
# a read() per page (https://www.sqlite.org/mmap.html): SQLite clamps it to its own
# limit, 2 GiB as Python's SQLite is built. A search at a million offers reads thousands
# of rows here and there in the file; through read() each is a system call, mapped it
# is a memory read: bench/catalogue.py's searches at 1,000,000 offers went from p95
# 33.6-34.7 ms to 26.1-26.6 ms. Only on 64-bit systems, where each connection's mapping
# costs address space and nothing else.
SQLITE_MMAP_BYTES = 2**31 if sys.maxsize > 2**32 else 0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None for PostgreSQL, or SQLite in memory)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def shown_url(url: str) -> str:
    """The database URL as messages show it: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str, *, pool_size: int = 4) -> Engine:
    """Create the process's engine for ``url``; nothing connects until first use."""
    # SQLAlchemy's engine loads when a database is opened: commands start faster.
    from sqlalchemy import create_engine as sa_create_engine

    if is_sqlite(url):
        _create_private_file(url)
        engine = sa_create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    if make_url(url).get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return sa_create_engine(
        _with_psycopg(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def create_null_pool_engine(url: str) -> Engine:
    """An engine that keeps no connection open, for one-shot commands (migrate, init)."""
    # As above: loaded when a database is opened.
    from sqlalchemy import create_engine as sa_create_engine

    if is_sqlite(url):
        _create_private_file(url)
        engine = sa_create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=NullPool,
        )
        _configure_sqlite(engine)
        return engine
    return sa_create_engine(_with_psycopg(url), poolclass=NullPool)


def _create_private_file(url: str) -> None:
    """Create a new SQLite file readable by its owner only: it holds private keys.
    SQLite gives its -wal and -shm files the same permissions."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _with_psycopg(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" event below issues BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run while the writer commits. synchronous=NORMAL in WAL mode
        # keeps the database consistent and every commit survives a crash of the
        # process; only an operating-system crash or power loss can lose the last
        # commits (https://www.sqlite.org/pragma.html#pragma_synchronous).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("sqlite_immediate"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
