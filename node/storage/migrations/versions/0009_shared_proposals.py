"""Shared proposals: the co-ops taking part, proposals hosted elsewhere, ballots sent,
mirrors and subtotals.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proposal_voters") as batch:
        batch.add_column(sa.Column("coop", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("mirror", sa.Text(), nullable=True))
    op.create_table(
        "subtotals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("coop", sa.String(length=2048), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("voters", sa.Integer(), nullable=False),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_subtotals_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subtotals"),
        sa.UniqueConstraint("proposal_id", "coop", name="uq_subtotals_proposal_id_coop"),
    )
    op.create_table(
        "proposal_coops",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("coop", sa.String(length=2048), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("roster_size", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_proposal_coops_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", "coop", name="pk_proposal_coops"),
    )
    op.create_table(
        "remote_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=2048), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_remote_proposals"),
        sa.UniqueConstraint("key", name="uq_remote_proposals_key"),
        sa.UniqueConstraint("uri", name="uq_remote_proposals_uri"),
    )
    op.create_table(
        "sent_ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.String(length=2048), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["remote_proposals.id"],
            name="fk_sent_ballots_proposal_id_remote_proposals",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_sent_ballots_actor_id_actors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sent_ballots"),
        sa.UniqueConstraint("activity_id", name="uq_sent_ballots_activity_id"),
    )
    op.create_index("ix_sent_ballots_proposal", "sent_ballots", ["proposal_id", "actor_id"])


def downgrade() -> None:
    op.drop_index("ix_sent_ballots_proposal", table_name="sent_ballots")
    op.drop_table("sent_ballots")
    op.drop_table("remote_proposals")
    op.drop_table("proposal_coops")
    op.drop_table("subtotals")
    with op.batch_alter_table("proposals") as batch:
        batch.drop_column("mirror")
    with op.batch_alter_table("proposal_voters") as batch:
        batch.drop_column("coop")
