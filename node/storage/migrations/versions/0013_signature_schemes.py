"""How deliveries to each host are signed: RFC 9421 with Ed25519, or draft-cavage with
RSA, learned from the host's answers or read from what its actors declare, with expiry.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from node.storage.types import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature_schemes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signature_schemes"),
        sa.UniqueConstraint("host", name="uq_signature_schemes_host"),
    )
    op.create_index("ix_signature_schemes_expires_at", "signature_schemes", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signature_schemes_expires_at", table_name="signature_schemes")
    op.drop_table("signature_schemes")
