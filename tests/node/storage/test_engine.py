"""What every SQLite connection of the node is set up with."""

from __future__ import annotations

from pathlib import Path

from node.storage.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_MMAP_BYTES,
    create_engine,
    create_null_pool_engine,
)


def test_sqlite_connections_are_set_up_alike(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.sqlite3'}"
    for engine in (create_engine(url), create_null_pool_engine(url)):
        try:
            with engine.connect() as conn:
                pragma = conn.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
                assert pragma("PRAGMA synchronous").scalar_one() == 1  # NORMAL
                assert pragma("PRAGMA foreign_keys").scalar_one() == 1
                assert pragma("PRAGMA busy_timeout").scalar_one() == SQLITE_BUSY_TIMEOUT_MS
                # Mapped on 64-bit systems, up to SQLite's own limit (a little under 2 GiB
                # as Python's SQLite is built).
                mapped = pragma("PRAGMA mmap_size").scalar_one()
                assert (mapped > 0) is (SQLITE_MMAP_BYTES > 0)
                assert mapped <= SQLITE_MMAP_BYTES
        finally:
            engine.dispose()
