"""Networks of co-ops: those this node hosts (their members and relayed offers), and
those the co-op belongs to (with each one's roster).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("charter", sa.Text(), nullable=False),
        sa.Column("admission", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name="fk_networks_actor_id_actors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_networks"),
        sa.UniqueConstraint("actor_id", name="uq_networks_actor_id"),
    )
    op.create_table(
        "network_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=False),
        sa.Column("shared_inbox", sa.String(length=2048), nullable=True),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("join_id", sa.String(length=2048), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("proposal", sa.String(length=2048), nullable=True),
        sa.Column("offers_walk", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name="fk_network_members_network_id_networks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_network_members"),
        sa.UniqueConstraint("network_id", "actor", name="uq_network_members_network_id_actor"),
    )
    op.create_index(
        "ix_network_members_network_id_state", "network_members", ["network_id", "state"]
    )
    op.create_table(
        "network_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["network_members.id"],
            name="fk_network_offers_member_id_network_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_network_offers"),
        sa.UniqueConstraint("member_id", "uri", name="uq_network_offers_member_id_uri"),
    )
    op.create_table(
        "network_memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("join_id", sa.String(length=2048), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_network_memberships"),
        sa.UniqueConstraint("network", name="uq_network_memberships_network"),
    )
    op.create_table(
        "network_roster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["network_memberships.id"],
            name="fk_network_roster_membership_id_network_memberships",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_network_roster"),
        sa.UniqueConstraint("membership_id", "actor", name="uq_network_roster_membership_id_actor"),
    )
    op.create_index("ix_network_roster_actor", "network_roster", ["actor"])


def downgrade() -> None:
    op.drop_index("ix_network_roster_actor", table_name="network_roster")
    op.drop_table("network_roster")
    op.drop_table("network_memberships")
    op.drop_table("network_offers")
    op.drop_index("ix_network_members_network_id_state", table_name="network_members")
    op.drop_table("network_members")
    op.drop_table("networks")
