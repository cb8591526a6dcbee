"""Email: members' addresses and preferences, the mail outbox, digests, and the events
already told.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _member(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["member_id"], ["members.id"], name=f"fk_{name}_member_id_members", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "mail_recipients",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("verified_at", UtcDateTime(), nullable=True),
        sa.Column("verify_hash", sa.String(length=64), nullable=True),
        sa.Column("verify_expires", UtcDateTime(), nullable=True),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("digest_sent_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        _member("mail_recipients"),
        sa.PrimaryKeyConstraint("member_id", name="pk_mail_recipients"),
    )
    op.create_index("ix_mail_recipients_verify_hash", "mail_recipients", ["verify_hash"])
    op.create_table(
        "mail_preferences",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        _member("mail_preferences"),
        sa.PrimaryKeyConstraint("member_id", "kind", name="pk_mail_preferences"),
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("dedupe", sa.String(length=512), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        _member("mail_outbox"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
        sa.UniqueConstraint("dedupe", name="uq_mail_outbox_dedupe"),
    )
    op.create_index("ix_mail_outbox_state", "mail_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_mail_outbox_member_id", "mail_outbox", ["member_id", "created_at"])
    op.create_index("ix_mail_outbox_created_at", "mail_outbox", ["created_at"])
    op.create_table(
        "mail_digest_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("dedupe", sa.String(length=512), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        _member("mail_digest_items"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_digest_items"),
        sa.UniqueConstraint("dedupe", name="uq_mail_digest_items_dedupe"),
    )
    op.create_index("ix_mail_digest_items_member_id", "mail_digest_items", ["member_id", "id"])
    op.create_table(
        "mail_events",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=2048), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", name="pk_mail_events"),
    )


def downgrade() -> None:
    op.drop_table("mail_events")
    op.drop_index("ix_mail_digest_items_member_id", table_name="mail_digest_items")
    op.drop_table("mail_digest_items")
    op.drop_index("ix_mail_outbox_created_at", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_member_id", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_state", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_table("mail_preferences")
    op.drop_index("ix_mail_recipients_verify_hash", table_name="mail_recipients")
    op.drop_table("mail_recipients")
