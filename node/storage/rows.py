"""Inserts that many callers make at once, sent to the database in a few statements.

The inbox stores one row per activity a peer sends, thousands a second under load. Run
as units of work, each row costs a SQLAlchemy execution (about 120 us of Python) and a
trip into the driver. Given as rows of a :class:`RowInsert`, the writer sends a whole
batch as multi-row ``INSERT ... VALUES (...), (...)`` statements. That matters twice:
the writer does less work, and it takes the interpreter lock far fewer times. Every
call into the SQLite driver releases the lock and must take it back, and each time the
event loop (which also releases it, during every RSA verification) may be kept
waiting: with one call per row that contention, not the work, capped the inbox.

A :class:`RowInsert` is ``INSERT ... ON CONFLICT (unique columns) DO NOTHING``: a row
whose key is already stored is skipped, which is what a replayed activity needs. The
syntax is the same on SQLite (3.24 and later) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Dialect, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

# Rows per statement, at most: a power of two (so that a few statement texts, cached by
# the driver, serve every batch size) that keeps the bound values under SQLite's limit.
MAX_ROWS_PER_STATEMENT = 256
_MAX_VARIABLES = 32_766  # SQLite since 3.32; PostgreSQL allows 65,535


@dataclass(frozen=True, slots=True, eq=False)
class PreparedRow:
    """A :class:`RowInsert` for one dialect: how to bind a row and write the SQL."""

    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # For each column, the first column of the same type: one value bound to several
    # columns of a type (the same timestamp, often) is converted once.
    kinds: tuple[int, ...]
    head: str
    placeholder: str
    tail: str
    max_rows: int
    _sql: dict[int, str] = field(default_factory=dict)

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's parameters for one row, converted as the column types say (a
        timestamp becomes SQLite's text form, for instance). Runs in the caller, so
        that the writer thread only hands rows to the driver."""
        bound: list[Any] = []
        converted: dict[tuple[int, int], Any] = {}
        for name, process, kind in zip(self.names, self.processors, self.kinds, strict=True):
            value = values[name]
            if process is not None and value is not None:
                key = (id(value), kind)
                if key in converted:
                    value = converted[key]
                else:
                    value = converted[key] = process(value)
            bound.append(value)
        return tuple(bound)

    def sql(self, rows: int) -> str:
        """The statement text for ``rows`` rows."""
        text = self._sql.get(rows)
        if text is None:
            text = f"{self.head} {', '.join([self.placeholder] * rows)} {self.tail}"
            self._sql[rows] = text
        return text

    def statements(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, list[Any]]]:
        """``rows`` as (SQL, flat parameters) statements, in chunks of powers of two."""
        start = 0
        size = self.max_rows
        while start < len(rows):
            while size > len(rows) - start:
                size //= 2
            chunk = rows[start : start + size]
            yield self.sql(size), [value for row in chunk for value in row]
            start += size


class RowInsert:
    """``INSERT ... ON CONFLICT DO NOTHING`` of rows of ``table`` with ``columns``."""

    def __init__(self, table: Table, columns: Sequence[str], *, unique: Sequence[str]):
        self.table = table
        self.columns = tuple(columns)
        self.unique = tuple(unique)
        self._prepared: dict[str, PreparedRow] = {}
        self._statements: dict[str, Insert] = {}

    def statement(self, dialect: Dialect) -> Insert:
        """The same insert as a SQLAlchemy statement, for use inside a unit of work
        (with ``RETURNING``, say)."""
        cached = self._statements.get(dialect.name)
        if cached is None:
            insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
            values = {name: bindparam(name, type_=self.table.c[name].type) for name in self.columns}
            cached = (
                insert(self.table).values(values).on_conflict_do_nothing(index_elements=self.unique)
            )
            self._statements[dialect.name] = cached
        return cached

    def prepare(self, dialect: Dialect) -> PreparedRow:
        cached = self._prepared.get(dialect.name)
        if cached is None:
            # Two threads may both build it once; the results are equal.
            cached = self._prepare(dialect)
            self._prepared[dialect.name] = cached
        return cached

    def _prepare(self, dialect: Dialect) -> PreparedRow:
        if dialect.paramstyle == "qmark":
            marker = "?"
        elif dialect.paramstyle in ("format", "pyformat"):
            marker = "%s"
        else:
            raise ValueError(f"no row inserts for the {dialect.paramstyle} parameter style")
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in self.columns)
        unique = ", ".join(quote(name) for name in self.unique)
        max_rows = MAX_ROWS_PER_STATEMENT
        while max_rows * len(self.columns) > _MAX_VARIABLES:
            max_rows //= 2
        types = [repr(self.table.c[name].type) for name in self.columns]
        return PreparedRow(
            names=self.columns,
            processors=tuple(
                self.table.c[name].type.bind_processor(dialect) for name in self.columns
            ),
            kinds=tuple(types.index(type_) for type_ in types),
            head=f"INSERT INTO {quote(self.table.name)} ({columns}) VALUES",
            placeholder="(" + ", ".join([marker] * len(self.columns)) + ")",
            tail=f"ON CONFLICT ({unique}) DO NOTHING",
            max_rows=max_rows,
        )
