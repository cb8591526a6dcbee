"""Indexes for the retention: finished deliveries by when they finished, remote actors
by when they were last fetched. Finished inbox activities have none: an index there
would cost every activity received, and the retention walks their primary key.

Each index covers only what the retention may delete, so it grows with history kept,
and the pruning reads the oldest rows first without scanning the table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DELIVERIES_FINISHED = sa.text("state IN ('delivered', 'failed', 'dropped')")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_finished",
        "deliveries",
        ["finished_at"],
        sqlite_where=DELIVERIES_FINISHED,
        postgresql_where=DELIVERIES_FINISHED,
    )
    op.create_index("ix_remote_actors_fetched_at", "remote_actors", ["fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_remote_actors_fetched_at", table_name="remote_actors")
    op.drop_index("ix_deliveries_finished", table_name="deliveries")
