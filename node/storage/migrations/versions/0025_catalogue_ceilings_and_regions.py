"""PostgreSQL's text index knows the ceilings of each offer's price and its region: for
an offer priced in a three-letter currency code, the stored words of the offer
(``search_vector``) hold "at most 2 to the power k" in that currency, ``zzq<k>x<code>``,
for the 8 powers k from its price's (in ten-thousandths, see node/catalogue/store.py);
for an offer with a place, the cell of a two-degree grid it lies in, ``zzr<row>x<col>``.

A search up to a price then narrows in the text index by a few of these words instead
of an OR of the words of every power below its price (0022), whose lists PostgreSQL
reads at length; and it reads the rows of the offers in the range only, not those of
every offer its other words match (a category up to 15 EUR, at 1,000,000 offers:
2,602 rows instead of 20,031). A search near a point names the few regions its circle
touches rather than a dozen half-degree cells, where they hold not many more offers.
See node/catalogue/text.py.

The words are made by the database from ``price_e4`` and ``currency``, ``latitude`` and
``longitude``, as the period's (0024) from ``published``. The column and its index are
made again (28 s at 1,000,000 offers on 2 cores; the catalogue's worker makes its
recent indexes again on its next round); SQLite has nothing to do. Going back makes
them as 0024 did.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


# The words of an offer's price ceilings, as node.catalogue.text.ceiling_words asks for
# them: none without a price, or in a currency other than three capitals A to Z (named
# one by one: a range such as A-Z may follow the collation). The power of a price is its
# count of binary digits (0 for 0), read from its 64 bits; the code is lowered with
# translate(), which, unlike lower(), no locale changes. IMMUTABLE, as a stored
# column's expression must be. In PL/pgSQL, whose plans last the session: as an SQL
# function with a subquery it cost each offer stored 120 microseconds (a third of the
# catalogue's write rate), this about one.
CEILINGS_FUNCTION = """
CREATE FUNCTION coopnode_catalogue_ceilings(price bigint, currency text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    bits integer;
    code text;
    words text[] := ARRAY[]::text[];
BEGIN
    IF price IS NULL OR price < 0 OR currency IS NULL
        OR currency !~ '^[ABCDEFGHIJKLMNOPQRSTUVWXYZ]{3}$' THEN
        RETURN words;
    END IF;
    bits := length(ltrim(price::bit(64)::text, '0'));
    code := translate(currency, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
    FOR k IN bits .. bits + 7 LOOP
        words := words || ('zzq' || k || 'x' || code);
    END LOOP;
    RETURN words;
END
$$
"""

# The region of a place, as node.catalogue.text.region_words names it: none without a
# place, or outside the globe's degrees (NaN fails both comparisons). Two is a power of
# two: the division is exact in both languages. PostgreSQL does not fold this SQL
# function into the column's expression: 2.4 microseconds an offer, against 0.4 for the
# same expression written out, both under 1 % of storing an offer.
REGIONS_FUNCTION = """
CREATE FUNCTION coopnode_catalogue_region(latitude double precision, longitude double precision)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180
THEN ARRAY['zzr' || floor((latitude + 90) / 2)::bigint || 'x'
           || floor((longitude + 180) / 2)::bigint]
ELSE ARRAY[]::text[] END
$$
"""

_PERIOD = "array_to_tsvector(ARRAY[coopnode_catalogue_period(published)])"


def _vector(expression: str) -> None:
    op.execute("DROP INDEX ix_offers_search")
    # Drops the catalogue's recent indexes with it (see node/catalogue/recent_store.py).
    op.execute("ALTER TABLE offers DROP COLUMN search_vector")
    op.execute(
        f"ALTER TABLE offers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
        f"({expression}) STORED"
    )
    op.execute("CREATE INDEX ix_offers_search ON offers USING gin (search_vector)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CEILINGS_FUNCTION)
    op.execute(REGIONS_FUNCTION)
    _vector(
        f"to_tsvector('simple', search_text) || {_PERIOD} || "
        "array_to_tsvector(coopnode_catalogue_ceilings(price_e4, currency)) || "
        "array_to_tsvector(coopnode_catalogue_region(latitude, longitude))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _vector(f"to_tsvector('simple', search_text) || {_PERIOD}")
    op.execute("DROP FUNCTION coopnode_catalogue_ceilings(bigint, text)")
    op.execute("DROP FUNCTION coopnode_catalogue_region(double precision, double precision)")
