"""Discussion threads: comments under proposals and offers, and their reports; and
indexes for what the mail worker reads each round.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("thread", sa.String(length=2048), nullable=False),
        sa.Column("in_reply_to", sa.String(length=2048), nullable=False),
        sa.Column("author", sa.String(length=2048), nullable=False),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("author_host", sa.String(length=255), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_comments_actor_id_actors", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        sa.UniqueConstraint("key", name="uq_comments_key"),
        sa.UniqueConstraint("uri", name="uq_comments_uri"),
    )
    op.create_index("ix_comments_thread", "comments", ["thread", "received_at", "id"])
    op.create_index("ix_comments_author_host", "comments", ["author_host"])
    op.create_index("ix_comments_received_at", "comments", ["received_at"])
    # What the mail worker's round reads every few seconds.
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"])
    op.create_index("ix_followers_created_at", "followers", ["created_at"])
    op.create_table(
        "comment_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.String(length=2048), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.String(length=2048), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name="fk_comment_reports_comment_id_comments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comment_reports"),
        sa.UniqueConstraint("activity_id", name="uq_comment_reports_activity_id"),
    )
    op.create_index("ix_comment_reports_state", "comment_reports", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_comment_reports_state", table_name="comment_reports")
    op.drop_table("comment_reports")
    op.drop_index("ix_followers_created_at", table_name="followers")
    op.drop_index("ix_orders_updated_at", table_name="orders")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_comments_received_at", table_name="comments")
    op.drop_index("ix_comments_author_host", table_name="comments")
    op.drop_index("ix_comments_thread", table_name="comments")
    op.drop_table("comments")
