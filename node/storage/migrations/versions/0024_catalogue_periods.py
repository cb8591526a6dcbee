"""PostgreSQL's text index knows each offer's period of publication: the stored words
of an offer (``search_vector``) hold one more, ``zzt`` and the number of its period of
256 hours (about ten and a half days) since 1970, so that a search sorted by recency
asks the text index for the matches of the newest periods first, and reads those
rows, instead of every match in the catalogue, unordered (see
node/catalogue/search.py). The word is made by the database from ``published``, as the
rest of the vector is from ``search_text``; like the words of filters, it begins with
``zz``. An offer whose text holds such a word is still read in its own period only:
a search bounds each period by ``published`` too.

The column and its index are made again (23 s at 1,000,000 offers on 2 cores); SQLite
has nothing to do: its text index is keyed by the hour (0023). Going back makes them
as 0011 did.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


# The period's word of a moment. IMMUTABLE, as a stored column's expression must be:
# the seconds since 1970 of a moment do not depend on the session's time zone.
PERIOD_FUNCTION = (
    "CREATE FUNCTION coopnode_catalogue_period(moment timestamptz) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS "
    "$$ SELECT 'zzt' || greatest(0, floor(extract(epoch FROM moment) / 921600))::bigint $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(PERIOD_FUNCTION)
    op.execute("DROP INDEX ix_offers_search")
    op.execute("ALTER TABLE offers DROP COLUMN search_vector")
    op.execute(
        "ALTER TABLE offers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
        "(to_tsvector('simple', search_text) || "
        "array_to_tsvector(ARRAY[coopnode_catalogue_period(published)])) STORED"
    )
    op.execute("CREATE INDEX ix_offers_search ON offers USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_offers_search")
    op.execute("ALTER TABLE offers DROP COLUMN search_vector")
    op.execute(
        "ALTER TABLE offers ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED"
    )
    op.execute("CREATE INDEX ix_offers_search ON offers USING gin (search_vector)")
    op.execute("DROP FUNCTION coopnode_catalogue_period(timestamptz)")
