"""Index only the inbox rows the worker still has to take.

The worker claims pending rows that are due; every other row (done, ignored, failed)
stays for the record. Indexing them all made each stored activity pay for an index
entry no query reads, and the index grew with history instead of with the backlog.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_inbox_activities_state_next", table_name="inbox_activities")
    op.create_index(
        "ix_inbox_activities_due",
        "inbox_activities",
        ["next_attempt_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_activities_due", table_name="inbox_activities")
    op.create_index(
        "ix_inbox_activities_state_next", "inbox_activities", ["state", "next_attempt_at"]
    )
