"""Alembic's entry point: always given a connection by node.storage.migrate."""

from alembic import context

from node.storage.tables import metadata

connection = context.config.attributes["connection"]
# Batch mode lets the same migrations alter tables on SQLite, which cannot ALTER most
# columns in place (https://alembic.sqlalchemy.org/en/latest/batch.html).
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
