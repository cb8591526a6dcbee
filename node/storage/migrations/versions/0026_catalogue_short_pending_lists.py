"""PostgreSQL's text indexes of the offers keep their unmerged entries short: each holds
at most 256 kB of them (``gin_pending_list_limit``) instead of the server's 4 MB.

A text (GIN) index takes new entries into a list first, merged into the index when the
list is full or the table vacuumed; every search reads the whole list of each text index
it asks. Autovacuum comes after a fifth of the catalogue was written (200,000 offers
at 1,000,000), so a 4 MB list fills with 7,000 offers and stays half full on average: at
1,000,000 offers with 6,000 of them in the lists, bench/catalogue.py's searches took
p95 30.3 ms against 22.2 with none (450 in them: 23.1). With 256 kB, about 450 offers,
the catalogue stores offers some 8 % slower (the lists merged more often, each in less
time). The recent indexes (node/catalogue/recent_store.py) are made with the same
limit; those made before, and the index of the offers published last, are given it
here. Nothing is rebuilt; SQLite has nothing to do. Going back gives them the server's
limit again.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from alembic import op
from sqlalchemy import text

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# The offers' text indexes: the whole one, the recent ones and that of the offers
# published last (their names are made by coopnode, of letters, digits and "_").
_TEXT_INDEXES = text(
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'offers'::regclass AND c.relname LIKE 'ix\\_offers\\_search%'"
)


def _names() -> list[str]:
    return [str(name) for (name,) in op.get_bind().execute(_TEXT_INDEXES)]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _names():
        op.execute(f'ALTER INDEX "{name}" SET (gin_pending_list_limit = 256)')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _names():
        op.execute(f'ALTER INDEX "{name}" RESET (gin_pending_list_limit)')
