"""SQLite's text index keyed by the hour of publication: each offer's words are stored
under ``(hour << 32) | id`` rather than its id, so that the index yields matches newest
first (to the hour) and a search sorted by recency stops at its page instead of reading
every match and sorting them (see node/catalogue/search.py). The index holds no copy of
the text (``content=''``): it is only ever asked for keys.

The table is built again from the offers (about 50 s at 1,000,000 offers on 2 cores);
PostgreSQL has nothing to do. Going back builds the index keyed by id again.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


# An offer's key in the index: the hours from 1970 to its publication (0 before),
# shifted past the 32 bits of its id; SQLite reads the stored moments ("2026-12-07
# 10:00:00.000000", UTC) itself. Written out in each statement below.
BY_HOUR = [
    "CREATE VIRTUAL TABLE offers_fts USING fts5(search_text, content='', "
    "tokenize='unicode61 remove_diacritics 0', prefix='2 3 4')",
    "CREATE TRIGGER offers_fts_insert AFTER INSERT ON offers BEGIN "
    "INSERT INTO offers_fts(rowid, search_text) VALUES ("
    "((max(0, coalesce(CAST(strftime('%s', new.published) AS INTEGER), 0) / 3600) << 32)"
    " | new.id), new.search_text); END",
    "CREATE TRIGGER offers_fts_delete AFTER DELETE ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) VALUES ('delete', "
    "((max(0, coalesce(CAST(strftime('%s', old.published) AS INTEGER), 0) / 3600) << 32)"
    " | old.id), old.search_text); END",
    "CREATE TRIGGER offers_fts_update AFTER UPDATE OF search_text, published ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) VALUES ('delete', "
    "((max(0, coalesce(CAST(strftime('%s', old.published) AS INTEGER), 0) / 3600) << 32)"
    " | old.id), old.search_text); "
    "INSERT INTO offers_fts(rowid, search_text) VALUES ("
    "((max(0, coalesce(CAST(strftime('%s', new.published) AS INTEGER), 0) / 3600) << 32)"
    " | new.id), new.search_text); END",
    "INSERT INTO offers_fts(rowid, search_text) SELECT "
    "((max(0, coalesce(CAST(strftime('%s', published) AS INTEGER), 0) / 3600) << 32)"
    " | id), search_text FROM offers",
    "INSERT INTO offers_fts(offers_fts) VALUES ('optimize')",
]

# As migration 0005 made it.
BY_ID = [
    "CREATE VIRTUAL TABLE offers_fts USING fts5(search_text, content='offers', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0', prefix='2 3 4')",
    "CREATE TRIGGER offers_fts_insert AFTER INSERT ON offers BEGIN "
    "INSERT INTO offers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER offers_fts_delete AFTER DELETE ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER offers_fts_update AFTER UPDATE OF search_text ON offers BEGIN "
    "INSERT INTO offers_fts(offers_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO offers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO offers_fts(offers_fts) VALUES ('rebuild')",
]


def _replace(statements: list[str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS offers_fts_{trigger}")
    op.execute("DROP TABLE IF EXISTS offers_fts")
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _replace(BY_HOUR)


def downgrade() -> None:
    _replace(BY_ID)
