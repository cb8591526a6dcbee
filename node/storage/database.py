"""The process's database: an engine, readers on a thread pool, and the one writer."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from node.storage.engine import create_engine, is_sqlite
from node.storage.rows import RowInsert
from node.storage.writer import Writer

T = TypeVar("T")


class Database:
    """Reads and writes, both given as plain functions over a ``Connection``.

    ``await db.read(fn)`` runs ``fn`` on a reader thread inside one transaction (one
    consistent snapshot); ``await db.write(fn)`` hands ``fn`` to the writer and returns
    once it is committed. Services are written as such functions, so the same code
    serves the web app, the workers and the command line.
    """

    def __init__(self, url: str, *, readers: int = 4):
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine: Engine = create_engine(url, pool_size=readers + 1)
        self.writer = Writer(self.engine)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="coopnode-reader"
        )

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn, conn.begin():
            return fn(conn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await self.writer.run(fn)

    async def insert(self, row_insert: RowInsert, values: Mapping[str, Any]) -> None:
        """Insert one row (skipped if its key exists) with every other row of the same
        insert that waits, in one ``executemany``; return once committed."""
        prepared = row_insert.prepare(self.engine.dialect)
        await self.writer.insert(prepared, prepared.params(values))

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        return self.writer.run_sync(fn)

    def close(self) -> None:
        self.writer.close()
        self._readers.shutdown(wait=True)
        self.engine.dispose()
