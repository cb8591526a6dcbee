"""Indexes for the outbox collection: an actor's public activities of a type, by row id
(the pages walk it) and by the id of the object each carries (the size looks objects up
in it), so that neither reads every stored body.

The object's id is read from the activity's JSON text by an expression each engine
spells its own way; node.storage.tables.object_id_of writes the same expression in the
queries, as PostgreSQL uses an index on an expression only for that very expression.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PUBLIC = sa.text("public = 1")
OBJECT_ID = {
    "postgresql": "((body::json -> 'object') ->> 'id')",
    "sqlite": "json_extract(body, '$.object.id')",
}


def upgrade() -> None:
    op.create_index(
        "ix_outbox_activities_public",
        "outbox_activities",
        ["actor_id", "type", "id"],
        sqlite_where=PUBLIC,
        postgresql_where=PUBLIC,
    )
    op.create_index(
        "ix_outbox_activities_object",
        "outbox_activities",
        ["actor_id", "type", sa.text(OBJECT_ID[op.get_bind().dialect.name])],
        sqlite_where=PUBLIC,
        postgresql_where=PUBLIC,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_activities_object", table_name="outbox_activities")
    op.drop_index("ix_outbox_activities_public", table_name="outbox_activities")
