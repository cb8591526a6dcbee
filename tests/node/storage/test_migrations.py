"""Migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from node.storage import migrate
from node.storage.engine import create_null_pool_engine
from node.storage.tables import metadata


def _declared_in_metadata(name: str | None, type_: str, _parents: object) -> bool:
    # The full-text indexes are engine-specific and made by the migration alone.
    return not (name or "").startswith(("offers_fts", "ix_offers_search", "search_vector"))


def test_the_head_revision_constant_matches_alembic() -> None:
    assert migrate.alembic_head() == migrate.HEAD_REVISION


def test_migrations_create_the_declared_schema(database_url: str) -> None:
    engine = create_null_pool_engine(database_url)
    try:
        assert migrate.schema_state(engine) is migrate.SchemaState.EMPTY
        migrate.upgrade(engine)
        assert migrate.schema_state(engine) is migrate.SchemaState.CURRENT
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _declared_in_metadata})
            differences = compare_metadata(context, metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_migrations_go_down_and_up_again(database_url: str) -> None:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade_or_downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    finally:
        engine.dispose()


def test_an_older_or_unknown_revision_is_reported(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine)
        # As if this version of coopnode shipped a newer revision than the database has.
        monkeypatch.setattr(migrate, "HEAD_REVISION", "9999")
        assert migrate.schema_state(engine) is migrate.SchemaState.OUTDATED
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'zzzz'")
        assert migrate.schema_state(engine) is migrate.SchemaState.UNKNOWN
    finally:
        engine.dispose()
