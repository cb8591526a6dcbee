"""Who wrote each of the co-op's own offers; on PostgreSQL, each offer's text vector
stored once rather than rebuilt by every ranked search.

The catalogue ranks text matches with ``ts_rank``, which needs each matching row's
``tsvector``. With the GIN index on the expression ``to_tsvector('simple',
search_text)``, PostgreSQL finds the rows from the index but rebuilds every vector from
the text to rank it: for a common word, thousands of rebuilds per search. A stored
generated column holds the vector, the GIN index moves onto it, and ranking reads it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The member who published the offer from the web (null: the admin, the API of a
    # tool, or a federated offer).
    op.add_column("offers", sa.Column("author_id", sa.Integer(), nullable=True))
    op.create_index("ix_offers_author_id", "offers", ["author_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_offers_search")
        op.execute(
            "ALTER TABLE offers ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED"
        )
        op.execute("CREATE INDEX ix_offers_search ON offers USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_offers_search")
        op.execute("ALTER TABLE offers DROP COLUMN search_vector")
        op.execute(
            "CREATE INDEX ix_offers_search ON offers USING gin (to_tsvector('simple', search_text))"
        )
    op.drop_index("ix_offers_author_id", table_name="offers")
    op.drop_column("offers", "author_id")
