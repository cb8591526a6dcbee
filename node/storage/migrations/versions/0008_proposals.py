"""Proposals, their electorates and their ballots.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("multiple_choice", sa.Integer(), nullable=False),
        sa.Column("max_choices", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.String(length=32), nullable=True),
        sa.Column("block_at", sa.Integer(), nullable=True),
        sa.Column("quorum", sa.String(length=32), nullable=False),
        sa.Column("abstentions_count", sa.Integer(), nullable=False),
        sa.Column("allow_change", sa.Integer(), nullable=False),
        sa.Column("colleges_weigh", sa.Integer(), nullable=False),
        sa.Column("college_weights", sa.Text(), nullable=True),
        sa.Column("open_ballot", sa.Integer(), nullable=False),
        sa.Column("counting_mode", sa.String(length=16), nullable=False),
        sa.Column("opens_at", UtcDateTime(), nullable=False),
        sa.Column("closes_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("eligible", sa.Integer(), nullable=True),
        sa.Column("roster_digest", sa.String(length=128), nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.Column("counts_dirty", sa.Integer(), nullable=False),
        sa.Column("counts_published_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_proposals_actor_id_actors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_proposals"),
        sa.UniqueConstraint("key", name="uq_proposals_key"),
        sa.UniqueConstraint("uri", name="uq_proposals_uri"),
    )
    op.create_index("ix_proposals_state", "proposals", ["state", "closes_at"])
    op.create_table(
        "proposal_voters",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(length=2048), nullable=False),
        sa.Column("college", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_proposal_voters_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", "voter", name="pk_proposal_voters"),
    )
    op.create_table(
        "ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(length=2048), nullable=False),
        sa.Column("college", sa.String(length=64), nullable=True),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.String(length=2048), nullable=False),
        sa.Column("cast_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_ballots_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ballots"),
        sa.UniqueConstraint(
            "proposal_id", "activity_id", name="uq_ballots_proposal_id_activity_id"
        ),
    )
    op.create_index("ix_ballots_voter", "ballots", ["proposal_id", "voter", "cast_at"])


def downgrade() -> None:
    op.drop_index("ix_ballots_voter", table_name="ballots")
    op.drop_table("ballots")
    op.drop_table("proposal_voters")
    op.drop_index("ix_proposals_state", table_name="proposals")
    op.drop_table("proposals")
