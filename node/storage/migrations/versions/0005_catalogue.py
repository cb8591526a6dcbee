"""The catalogue of offers, with its full-text index on each engine.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite: an FTS5 index over offers.search_text (external content, kept in step by
# triggers). The words are already folded (node/catalogue/text.py); prefix indexes make
# "pomme*" cheap.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE offers_fts USING fts5(search_text, content='offers', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0', prefix='2 3 4')",
    "CREATE TRIGGER offers_fts_insert AFTER INSERT ON offers BEGIN "
    "INSERT INTO offers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER offers_fts_delete AFTER DELETE ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER offers_fts_update AFTER UPDATE OF search_text ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO offers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
]
POSTGRES_FTS = [
    "CREATE INDEX ix_offers_search ON offers USING gin (to_tsvector('simple', search_text))",
]


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("local", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("currency", sa.String(length=255), nullable=True),
        sa.Column("price_e4", sa.BigInteger(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("place", sa.String(length=512), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("end_time", UtcDateTime(), nullable=True),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_offers"),
        sa.UniqueConstraint("uri", name="uq_offers_uri"),
    )
    op.create_index("ix_offers_actor", "offers", ["actor"])
    op.create_index("ix_offers_published", "offers", ["published", "id"])
    op.create_index("ix_offers_price", "offers", ["currency", "price_e4"])
    op.create_index("ix_offers_latitude", "offers", ["latitude"])
    op.create_table(
        "offer_categories",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name="fk_offer_categories_offer_id_offers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("offer_id", "slug", name="pk_offer_categories"),
    )
    op.create_index("ix_offer_categories_slug", "offer_categories", ["slug"])
    op.create_table(
        "offer_claims",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name="fk_offer_claims_offer_id_offers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("offer_id", "claim", name="pk_offer_claims"),
    )
    op.create_index("ix_offer_claims_claim", "offer_claims", ["claim"])
    statements = SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE offers_fts")  # its triggers go with the offers table
    op.drop_table("offer_claims")
    op.drop_table("offer_categories")
    op.drop_table("offers")
