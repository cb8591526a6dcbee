"""The Creates of withdrawn offers leave the outbox collection: their rows are no longer
public, so that the collection's pages read only rows they may list.

Withdrawing an offer now does the same (node.services.outbox.unlist); this does it for
the offers withdrawn before. The object's id is read from the activity's JSON text as
migration 0014's index reads it, each engine in its own words.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

OBJECT_ID = {
    "postgresql": "((body::json -> 'object') ->> 'id')",
    "sqlite": "json_extract(body, '$.object.id')",
}
# An offer's readable Note is at its id followed by /note (node.urls.Urls.offer_note).
WITHDRAWN_OBJECTS = (
    "SELECT uri FROM offers WHERE local = 1 AND status = 'withdrawn' "
    "UNION ALL SELECT uri || '/note' FROM offers WHERE local = 1 AND status = 'withdrawn'"
)


def _set_public(value: int, was: int) -> None:
    object_id = OBJECT_ID[op.get_bind().dialect.name]
    op.execute(
        sa.text(
            f"UPDATE outbox_activities SET public = {value} "  # noqa: S608 (constants only)
            f"WHERE public = {was} AND type = 'Create' AND {object_id} IN ({WITHDRAWN_OBJECTS})"
        )
    )


def upgrade() -> None:
    _set_public(0, was=1)


def downgrade() -> None:
    _set_public(1, was=0)
