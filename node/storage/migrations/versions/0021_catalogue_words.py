"""The catalogue's words: every word of the offers' searchable text, once, so that a
search asks the text index for the words a prefix begins rather than for the prefix.

The words of the offers already stored are read here, 5,000 offers at a time.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BATCH = 5_000
# The words of filters and places (node/catalogue/text.py) are not kept.
RESERVED = "zz"


def upgrade() -> None:
    bind = op.get_bind()
    collation = "C" if bind.dialect.name == "postgresql" else None
    words = op.create_table(
        "catalogue_words",
        sa.Column("word", sa.String(length=64, collation=collation), nullable=False),
        sa.PrimaryKeyConstraint("word", name="pk_catalogue_words"),
    )
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    offers = sa.table("offers", sa.column("id", sa.Integer), sa.column("search_text", sa.Text))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(offers.c.id, offers.c.search_text)
            .where(offers.c.id > last)
            .order_by(offers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        found = {w for row in rows for w in row.search_text.split() if not w.startswith(RESERVED)}
        if found:
            bind.execute(
                dialect.insert(words).on_conflict_do_nothing(index_elements=["word"]),
                [{"word": w[:64]} for w in sorted(found)],
            )


def downgrade() -> None:
    op.drop_table("catalogue_words")
