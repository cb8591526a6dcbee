"""Orders on both sides, and the counted stock and answer policy of the co-op's offers.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("offer_uri", sa.String(length=2048), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("seller", sa.String(length=2048), nullable=False),
        sa.Column("buyer", sa.String(length=2048), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("offer_activity", sa.String(length=2048), nullable=False),
        sa.Column("agreement_uri", sa.String(length=2048), nullable=True),
        sa.Column("quantity_e4", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("total_e4", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=255), nullable=True),
        sa.Column("delivery", sa.String(length=255), nullable=True),
        sa.Column("payment", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("stock_held", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("document", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name="fk_orders_offer_id_offers", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_orders_member_id_members", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("key", name="uq_orders_key"),
        sa.UniqueConstraint("side", "offer_activity", name="uq_orders_side_offer_activity"),
    )
    op.create_index("ix_orders_side_state", "orders", ["side", "state", "id"])
    op.create_index("ix_orders_member_id", "orders", ["member_id"])
    op.create_index(
        "ix_orders_expires_at",
        "orders",
        ["expires_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_orders_agreement_uri", "orders", ["agreement_uri"])
    op.create_table(
        "offer_stock",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("available_e4", sa.BigInteger(), nullable=True),
        sa.Column("policy", sa.String(length=8), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=True),
        sa.Column("announced_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "available_e4 IS NULL OR available_e4 >= 0",
            name=op.f("ck_offer_stock_available_e4_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name="fk_offer_stock_offer_id_offers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("offer_id", name="pk_offer_stock"),
    )


def downgrade() -> None:
    op.drop_table("offer_stock")
    op.drop_index("ix_orders_agreement_uri", table_name="orders")
    op.drop_index("ix_orders_expires_at", table_name="orders")
    op.drop_index("ix_orders_member_id", table_name="orders")
    op.drop_index("ix_orders_side_state", table_name="orders")
    op.drop_table("orders")
