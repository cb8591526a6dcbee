"""Uploaded media, backfill progress, and ordered deliveries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ORDERED_PENDING = sa.text("state = 'pending' AND ordering_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(length=2048), nullable=True))
    op.create_index(
        "ix_deliveries_ordering_key",
        "deliveries",
        ["ordering_key", "id"],
        sqlite_where=ORDERED_PENDING,
        postgresql_where=ORDERED_PENDING,
    )
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_media_actor_id_actors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        sa.UniqueConstraint("key", name="uq_media_key"),
    )
    op.create_table(
        "backfills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("followed", sa.String(length=2048), nullable=False),
        sa.Column("collection", sa.String(length=2048), nullable=False),
        sa.Column("next_page", sa.String(length=2048), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_backfills_actor_id_actors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backfills"),
        sa.UniqueConstraint("actor_id", "followed", name="uq_backfills_actor_id_followed"),
    )


def downgrade() -> None:
    op.drop_table("backfills")
    op.drop_table("media")
    op.drop_index("ix_deliveries_ordering_key", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("ordering_key")
