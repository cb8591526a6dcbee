"""The schema, in SQLAlchemy Core.

Conventions that later tables follow too: integer surrogate keys; ActivityPub ids
(``uri``) unique; timestamps are :class:`UtcDateTime`; money is never a float (an
integer in the currency's minor unit, or an exact decimal string). Every change to
these definitions comes with an Alembic revision under ``migrations/versions`` (a test
compares the two).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from node.storage.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Actors hosted on this node: the co-op's Group, later its members' Persons.
actors = Table(
    "actors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Private keys of local actors. They are read only by the signing code and never
# serialised into any document; the public halves are derived from them.
actor_keys = Table(
    "actor_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    # "rsa" (draft-cavage signatures, as Mastodon verifies) or "ed25519" (proofs).
    Column("kind", String(16), nullable=False),
    Column("private_pem", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("actor_id", "kind", name="uq_actor_keys_actor_id_kind"),
)

# Bearer tokens for the JSON API. Only a SHA-256 of each token is kept: tokens are
# 256-bit random strings, so a slow password hash would add nothing.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("role", String(32), nullable=False),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

Index("ix_actor_keys_actor_id", actor_keys.c.actor_id)

# Actors of other servers, as last fetched: their keys verify what they send us.
remote_actors = Table(
    "remote_actors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("inbox", String(2048), nullable=False),
    Column("shared_inbox", String(2048), nullable=True),
    Column("key_id", String(2048), nullable=True),
    Column("public_key_pem", Text, nullable=True),
    Column("document", Text, nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
)

Index("ix_remote_actors_host", remote_actors.c.host)
# The retention takes the documents not fetched for longest first (migration 0012).
Index("ix_remote_actors_fetched_at", remote_actors.c.fetched_at)

# Every verified activity, stored before the peer gets its 202. The unique activity id
# makes a replayed or re-delivered activity a no-op; the worker takes rows in order of
# next_attempt_at and records what became of each.
inbox_activities = Table(
    "inbox_activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("activity_id", String(2048), nullable=False, unique=True),
    Column("actor", String(2048), nullable=False),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    # pending, done, ignored (no handler for its type) or failed (gave up; see last_error)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("received_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("processed_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Only the rows the worker still has to take (see migration 0003).
Index(
    "ix_inbox_activities_due",
    inbox_activities.c.next_attempt_at,
    sqlite_where=text("state = 'pending'"),
    postgresql_where=text("state = 'pending'"),
)
# Finished rows, for the retention. The states are named, not "not pending": a state
# added later is kept until it is listed here. No index serves them: the retention walks
# the primary key (rows are numbered as they arrive), as an index here would cost every
# activity received.
INBOX_FINISHED = text("state IN ('done', 'ignored', 'failed', 'dropped')")

# Remote actors that follow a local actor. A Follow held for the admin is "pending";
# only "accepted" followers receive anything. Rejected and undone follows are deleted.
followers = Table(
    "followers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("follower", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    # The Follow's id: Accept, Reject and Undo are matched by it.
    Column("follow_id", String(2048), nullable=False),
    Column("state", String(16), nullable=False),
    Column("inbox", String(2048), nullable=False),
    Column("shared_inbox", String(2048), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("accepted_at", UtcDateTime, nullable=True),
    UniqueConstraint("actor_id", "follower", name="uq_followers_actor_id_follower"),
)

# Remote actors a local actor follows: "pending" until their Accept, then "accepted";
# a Reject marks it "rejected" (kept, so the admin sees it).
following = Table(
    "following",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("followed", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    Column("follow_id", String(2048), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("accepted_at", UtcDateTime, nullable=True),
    UniqueConstraint("actor_id", "followed", name="uq_following_actor_id_followed"),
)

# Activities this node published, kept at their ids and for delivery.
outbox_activities = Table(
    "outbox_activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("activity_id", String(2048), nullable=False, unique=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("public", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
)


class object_id_of(FunctionElement[str]):
    """The id of the object an activity stored as JSON text embeds (``object.id``),
    written alike in the index below and in the queries it serves: PostgreSQL uses an
    index on an expression only for the very same expression, constants included."""

    type = String()
    name = "object_id_of"
    inherit_cache = True


@compiles(object_id_of)
def _object_id_of_sqlite(element: object_id_of, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's JSON functions, and the spelling of any other engine.
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.object.id')"


@compiles(object_id_of, "postgresql")
def _object_id_of_postgresql(element: object_id_of, compiler: SQLCompiler, **kw: Any) -> str:
    # Spelt as PostgreSQL itself writes the index back, so that Alembic finds the
    # declared index and the migrated one alike.
    return f"(({compiler.process(element.clauses, **kw)}::json -> 'object') ->> 'id')"


# The outbox collection (node.published): an actor's public activities of a type,
# walked by row id for its pages, and found by the object they carry for its size.
PUBLIC_ACTIVITY = text("public = 1")
Index(
    "ix_outbox_activities_public",
    outbox_activities.c.actor_id,
    outbox_activities.c.type,
    outbox_activities.c.id,
    sqlite_where=PUBLIC_ACTIVITY,
    postgresql_where=PUBLIC_ACTIVITY,
)
Index(
    "ix_outbox_activities_object",
    outbox_activities.c.actor_id,
    outbox_activities.c.type,
    object_id_of(outbox_activities.c.body),
    sqlite_where=PUBLIC_ACTIVITY,
    postgresql_where=PUBLIC_ACTIVITY,
)


# One row per activity and target inbox, written in the transaction that published the
# activity. States: pending (due at next_attempt_at), delivered, failed (given up, see
# last_error) and dropped (the domain was blocked before it went out).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "activity_pk",
        Integer,
        ForeignKey("outbox_activities.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("inbox", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    # Deliveries sharing a key go out one at a time, oldest first (a Follow and its Undo,
    # the Create, Updates and Delete of one object): peers see them in order.
    Column("ordering_key", String(2048), nullable=True),
    UniqueConstraint("activity_pk", "inbox", name="uq_deliveries_activity_pk_inbox"),
)

Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    sqlite_where=text("state = 'pending'"),
    postgresql_where=text("state = 'pending'"),
)
Index("ix_deliveries_host", deliveries.c.host)
# Ended deliveries by when they ended, for the retention (migration 0012).
DELIVERIES_FINISHED = text("state IN ('delivered', 'failed', 'dropped')")
Index(
    "ix_deliveries_finished",
    deliveries.c.finished_at,
    sqlite_where=DELIVERIES_FINISHED,
    postgresql_where=DELIVERIES_FINISHED,
)
Index(
    "ix_deliveries_ordering_key",
    deliveries.c.ordering_key,
    deliveries.c.id,
    sqlite_where=text("state = 'pending' AND ordering_key IS NOT NULL"),
    postgresql_where=text("state = 'pending' AND ordering_key IS NOT NULL"),
)

# What the node knows and decides about other servers: the admin's policy (blocked, or
# allowed for allow-list mode) and delivery health (a domain that keeps failing is
# marked unavailable until it answers or sends us a signed request).
domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(255), nullable=False, unique=True),
    # "blocked", "allowed" or "" (no decision).
    Column("policy", String(16), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("failing_since", UtcDateTime, nullable=True),
    Column("unavailable", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("last_success_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# How the node signs its deliveries to each server (federation.schemes), keyed by the
# inbox's origin (scheme, host and port: two ports are two servers): RFC 9421 with an
# Ed25519 key, or draft-cavage with an RSA key. A row is either learned from the host's
# answers (``confirmed``), kept for 30 days, or read from what the host's actors declare,
# kept for a day; expired rows are read again and pruned as new ones are written.
signature_schemes = Table(
    "signature_schemes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(255), nullable=False, unique=True),
    # "rfc9421-ed25519" or "cavage-rsa" (federation.schemes.Scheme).
    Column("scheme", String(32), nullable=False),
    Column("confirmed", Integer, nullable=False, default=0),
    # What taught it, for the admin: the answers, or the declaration.
    Column("reason", Text, nullable=False, default=""),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
Index("ix_signature_schemes_expires_at", signature_schemes.c.expires_at)

# The catalogue: the co-op's own offers and those of the co-ops it follows, one row per
# offer (a FEP-0837 Proposal) at its id. Withdrawn offers stay, marked so; an offer
# past its end_time is expired without being touched. Prices are exact: the amount
# times 10,000 as an integer (four decimals), in ``currency`` (an ISO 4217 code, or the
# currency's URI when a peer names one we do not know). ``search_text`` holds the folded
# words the offer is found by (see node/catalogue/text.py); SQLite indexes it with FTS5
# (the offers_fts table) and PostgreSQL with a GIN index on a stored tsvector column
# (search_vector), both made by the migrations and left out of this declaration.
offers = Table(
    "offers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("actor", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    Column("local", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("title", String(512), nullable=False),
    Column("currency", String(255), nullable=True),
    Column("price_e4", BigInteger, nullable=True),
    Column("unit", String(64), nullable=True),
    Column("place", String(512), nullable=True),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("published", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("document", Text, nullable=False),
    # What the co-op's own offers were made from (the member's Markdown and choices).
    Column("source", Text, nullable=True),
    # The member who published one of the co-op's own offers from the web pages.
    Column("author_id", Integer, nullable=True),
)
Index("ix_offers_actor", offers.c.actor)
Index("ix_offers_author_id", offers.c.author_id)
Index("ix_offers_published", offers.c.published, offers.c.id)
Index("ix_offers_price", offers.c.currency, offers.c.price_e4)
Index("ix_offers_latitude", offers.c.latitude)

# Every word of the offers' searchable text (but the reserved "zz" words of filters and
# places), once: a search looks up what a word it is given begins, and asks the text
# index for those words exactly rather than for every word beginning so (which both
# engines answer by merging the lists of every such word, however long). Words are kept
# when their offers go; one that no offer has any more finds nothing. On PostgreSQL the
# words compare by code point, so that the words beginning with a prefix are a range.
catalogue_words = Table(
    "catalogue_words",
    metadata,
    Column(
        "word",
        String(64).with_variant(String(64, collation="C"), "postgresql"),
        primary_key=True,
    ),
)

offer_categories = Table(
    "offer_categories",
    metadata,
    Column("offer_id", Integer, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    Column("slug", String(64), primary_key=True),
)
Index("ix_offer_categories_slug", offer_categories.c.slug)

offer_claims = Table(
    "offer_claims",
    metadata,
    Column("offer_id", Integer, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    Column("claim", String(64), primary_key=True),
)
Index("ix_offer_claims_claim", offer_claims.c.claim)

# Files members upload (offer photos), stored on disk under DATA_DIR/media by ``key``.
media = Table(
    "media",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

# Importing a newly followed co-op's existing offers, page by page: where the walk is,
# so that an interrupted one resumes. States: running, done, failed.
backfills = Table(
    "backfills",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("followed", String(2048), nullable=False),
    Column("collection", String(2048), nullable=False),
    Column("next_page", String(2048), nullable=True),
    Column("pages", Integer, nullable=False, default=0),
    Column("imported", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=True),
    Column("state", String(16), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("actor_id", "followed", name="uq_backfills_actor_id_followed"),
)

# The co-op's stakeholder categories (colleges) and their weights in votes, in basis
# points (10,000 = 100 %): when a co-op has colleges, their weights sum to 10,000.
colleges = Table(
    "colleges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("weight_bp", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The co-op's members. A local member has a Person actor here (actor_id); a remote one
# keeps an account elsewhere and is known by its actor URI, "pending" until the admin
# confirms the resolved actor. A member who leaves keeps the row, with left_at set, so
# that past votes can still be checked against the roster of their time.
members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="SET NULL"), nullable=True),
    Column("actor_uri", String(2048), nullable=False, unique=True),
    Column("handle", String(320), nullable=False),
    Column("local", Integer, nullable=False, default=0),
    # admin, member or observer (sees, does not vote)
    Column("role", String(16), nullable=False),
    Column("college", String(64), nullable=True),
    Column("joined_at", UtcDateTime, nullable=False),
    Column("left_at", UtcDateTime, nullable=True),
    # pending (a remote link awaiting the admin) or confirmed
    Column("state", String(16), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
Index("ix_members_joined_at", members.c.joined_at, members.c.id)

# Governance proposals of this co-op, published as ``Question``s at ``uri``. Fractions
# (threshold, quorum, college weights) are exact, written "p/q". ``options`` is a JSON
# list of {"name", "role"}; ``college_weights`` a JSON object of name → "p/q", fixed at
# the opening where colleges weigh. States: scheduled (before opens_at), open, closed.
# ``counts`` holds the counts last published; ``counts_dirty`` says a ballot arrived
# since, for the at-most-once-a-minute ``Update``. ``outcome`` is the JSON of the result
# published at the close.
proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("author", String(2048), nullable=True),
    Column("title", String(512), nullable=False),
    Column("source", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("multiple_choice", Integer, nullable=False, default=0),
    Column("max_choices", Integer, nullable=False, default=1),
    # majority, qualified, consent, or "" (multiple choice: counts only)
    Column("rule", String(16), nullable=False),
    Column("threshold", String(32), nullable=True),
    Column("block_at", Integer, nullable=True),
    Column("quorum", String(32), nullable=False),
    Column("abstentions_count", Integer, nullable=False, default=0),
    Column("allow_change", Integer, nullable=False, default=0),
    Column("colleges_weigh", Integer, nullable=False, default=0),
    Column("college_weights", Text, nullable=True),
    Column("open_ballot", Integer, nullable=False, default=1),
    Column("counting_mode", String(16), nullable=False, default="open"),
    Column("opens_at", UtcDateTime, nullable=False),
    Column("closes_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("eligible", Integer, nullable=True),
    Column("roster_digest", String(128), nullable=True),
    Column("counts", Text, nullable=True),
    Column("counts_dirty", Integer, nullable=False, default=0),
    Column("counts_published_at", UtcDateTime, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("published", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    # A co-op's own vote on a shared proposal counted by subtotals: JSON {"of": the
    # host's proposal, "host": its actor, "inbox": where the subtotal goes}.
    Column("mirror", Text, nullable=True),
)
Index("ix_proposals_state", proposals.c.state, proposals.c.closes_at)

# The electorate of a proposal as of its opening: each voter's actor and college.
proposal_voters = Table(
    "proposal_voters",
    metadata,
    Column(
        "proposal_id", Integer, ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("voter", String(2048), primary_key=True),
    Column("college", String(64), nullable=True),
    # The co-op whose roster listed the voter (shared proposals); an actor two co-ops
    # list is one voter, kept with the first.
    Column("coop", String(2048), nullable=True),
)

# Ballots the host received for a proposal, one row per ballot (a Mastodon vote on a
# multiple choice arrives as one Note per option: they are gathered into one ballot).
# ``state``: valid (passed every check at receipt; which valid ballot of a voter counts
# is decided by the count, by (cast_at, activity_id)) or refused (``reason`` says why).
# ``cast_at`` is when this node accepted the ballot. ``notes`` is the JSON list of the
# Notes as received, proofs included; ``signature`` the HTTP signature they came with.
ballots = Table(
    "ballots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("proposal_id", Integer, ForeignKey("proposals.id", ondelete="CASCADE"), nullable=False),
    Column("voter", String(2048), nullable=False),
    Column("college", String(64), nullable=True),
    Column("choices", Text, nullable=False),
    Column("activity_id", String(2048), nullable=False),
    Column("cast_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("notes", Text, nullable=False),
    Column("signature", Text, nullable=True),
    UniqueConstraint("proposal_id", "activity_id", name="uq_ballots_proposal_id_activity_id"),
)
Index("ix_ballots_voter", ballots.c.proposal_id, ballots.c.voter, ballots.c.cast_at)

# The co-ops taking part in a shared proposal this node hosts, the host included:
# invited (the proposal was sent), declined (it answered Reject), listed (its roster
# was read at the opening: ``roster_size`` voters), or failed (``reason``).
proposal_coops = Table(
    "proposal_coops",
    metadata,
    Column(
        "proposal_id", Integer, ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("coop", String(2048), primary_key=True),
    Column("inbox", String(2048), nullable=True),
    Column("state", String(16), nullable=False),
    Column("roster_size", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Shared proposals other co-ops host and this co-op takes part in, as their hosts
# published them (the latest ``Question``); ``key`` names them in this node's API.
# States: open, closed, declined (this co-op answered Reject).
remote_proposals = Table(
    "remote_proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("host", String(2048), nullable=False),
    Column("document", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Ballots this node's members sent to other hosts, as sent: so that a member sees what
# they voted, and the co-op who of its members voted.
sent_ballots = Table(
    "sent_ballots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "proposal_id",
        Integer,
        ForeignKey("remote_proposals.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="CASCADE"), nullable=False),
    Column("choices", Text, nullable=False),
    Column("activity_id", String(2048), nullable=False, unique=True),
    Column("sent_at", UtcDateTime, nullable=False),
)
Index("ix_sent_ballots_proposal", sent_ballots.c.proposal_id, sent_ballots.c.actor_id)

# Subtotals the co-ops of a shared proposal (counting mode "subtotal") sent its host:
# one per co-op, a newer one replacing it until the deadline; ``document`` is the signed
# object as received, proof included.
subtotals = Table(
    "subtotals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("proposal_id", Integer, ForeignKey("proposals.id", ondelete="CASCADE"), nullable=False),
    Column("coop", String(2048), nullable=False),
    Column("document", Text, nullable=False),
    Column("voters", Integer, nullable=False),
    Column("published", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("proposal_id", "coop", name="uq_subtotals_proposal_id_coop"),
)

# Members' browser sessions: the cookie holds a random token, only its hash is kept; the
# form token (``csrf``) is per session. The member's role is read at every request, so
# a changed role or an ended membership applies at once.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("user_agent", String(256), nullable=True),
)
Index("ix_web_sessions_member_id", web_sessions.c.member_id)
Index("ix_web_sessions_expires_at", web_sessions.c.expires_at)

# Each background loop's last round, by process: the loops touch their row every minute
# or so (node.workers), and `coopnode doctor` says which have stopped. A process's rows
# are replaced when it starts; rows of processes gone for a week are pruned.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("poller", String(64), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("beat_at", UtcDateTime, nullable=False),
    Column("rounds", BigInteger, nullable=False, default=0),
    UniqueConstraint("poller", "hostname", "pid", name="uq_worker_heartbeats_poller"),
)
Index("ix_worker_heartbeats_beat_at", worker_heartbeats.c.beat_at)

# The nonces `coopnode doctor` sends through the public URL: a node that answers with
# one of them reads this very database. Each lives a few minutes.
doctor_probes = Table(
    "doctor_probes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("nonce", String(64), nullable=False, unique=True),
    Column("expires_at", UtcDateTime, nullable=False),
)

# Orders, one row per order and side: a node that both sells and buys an order (two
# co-ops on one node) keeps two rows. ``key`` names the order in this node's URLs
# (/orders/KEY, /agreements/KEY). ``offer_activity`` is the Offer activity's id (ours on
# the buyer side, the peer's on the seller side): unique per side, so that an Offer
# delivered twice makes one order. Quantities and totals are integers of ten-thousandths
# (as offers' prices are). On the seller side ``stock_held`` says whether the quantity
# is held out of the offer's stock (1) or was given back (0), and ``expires_at`` when a
# pending hold lapses. ``document`` is the last Agreement as sent or received (JSON).
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(32), nullable=False, unique=True),
    Column("side", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("offer_uri", String(2048), nullable=False),
    Column("offer_id", Integer, ForeignKey("offers.id", ondelete="SET NULL"), nullable=True),
    Column("seller", String(2048), nullable=False),
    Column("buyer", String(2048), nullable=False),
    # Buyer side: the member who ordered.
    Column("member_id", Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
    Column("offer_activity", String(2048), nullable=False),
    Column("agreement_uri", String(2048), nullable=True),
    Column("quantity_e4", BigInteger, nullable=False),
    Column("unit", String(64), nullable=False),
    Column("total_e4", BigInteger, nullable=True),
    Column("currency", String(255), nullable=True),
    Column("delivery", String(255), nullable=True),
    Column("payment", String(255), nullable=True),
    Column("note", Text, nullable=False, default=""),
    # The seller's note, or the words of the refusal's reason.
    Column("answer", Text, nullable=False, default=""),
    Column("reason", String(32), nullable=True),
    Column("stock_held", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("document", Text, nullable=True),
    UniqueConstraint("side", "offer_activity", name="uq_orders_side_offer_activity"),
)
Index("ix_orders_side_state", orders.c.side, orders.c.state, orders.c.id)
Index("ix_orders_member_id", orders.c.member_id)
# Only pending holds lapse: the sweep reads these alone.
Index(
    "ix_orders_expires_at",
    orders.c.expires_at,
    sqlite_where=text("state = 'pending'"),
    postgresql_where=text("state = 'pending'"),
)
Index("ix_orders_agreement_uri", orders.c.agreement_uri)

# The co-op's own offers' counted stock and how their orders are answered. No row, or
# ``available_e4`` null, means the stock is not counted. ``changed_at`` is set when the
# stock changes and cleared once the followers were told (``announced_at``), so that a
# run of orders makes one Update, not one each.
offer_stock = Table(
    "offer_stock",
    metadata,
    Column("offer_id", Integer, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    Column("available_e4", BigInteger, nullable=True),
    Column("policy", String(8), nullable=False, default="manual"),
    Column("changed_at", UtcDateTime, nullable=True),
    Column("announced_at", UtcDateTime, nullable=True),
    CheckConstraint("available_e4 IS NULL OR available_e4 >= 0", name="available_e4_not_negative"),
)

# Networks this node hosts: each is a local ``Group`` actor of its own (its keys are in
# ``actor_keys``), distinct from the co-op's. ``admission`` says how an applicant gets
# in: "admin" (the network's admin decides) or "vote" (the members vote on it).
networks = Table(
    "networks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "actor_id",
        Integer,
        ForeignKey("actors.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("charter", Text, nullable=False, default=""),
    Column("admission", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The co-ops that applied to a hosted network, belong to it, or did: "pending" (the
# application waits), "member", "refused", "removed" (with the admin's reason), "left".
# Only members receive and are relayed.
network_members = Table(
    "network_members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("network_id", Integer, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("actor", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("inbox", String(2048), nullable=False),
    Column("shared_inbox", String(2048), nullable=True),
    Column("sector", String(64), nullable=False, default=""),
    Column("region", String(128), nullable=False, default=""),
    Column("state", String(16), nullable=False),
    # The Join's id: the Accept or Reject names it.
    Column("join_id", String(2048), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("since", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # Where the network admits by vote: the proposal the members vote on.
    Column("proposal", String(2048), nullable=True),
    # A newcomer's offers the network still has to introduce to the members: the next
    # page of its offers collection to read (null once read).
    Column("offers_walk", String(2048), nullable=True),
    UniqueConstraint("network_id", "actor", name="uq_network_members_network_id_actor"),
)
Index("ix_network_members_network_id_state", network_members.c.network_id, network_members.c.state)

# The offers a hosted network relayed, one row per offer: the directory's listing of
# each member's offers and their count.
network_offers = Table(
    "network_offers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "member_id",
        Integer,
        ForeignKey("network_members.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("uri", String(2048), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("member_id", "uri", name="uq_network_offers_member_id_uri"),
)

# The co-op's side: the networks it applied to or belongs to, as "pending", "member",
# "refused", "removed" (the network's reason kept) or "left".
network_memberships = Table(
    "network_memberships",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("network", String(2048), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("inbox", String(2048), nullable=False),
    Column("state", String(16), nullable=False),
    Column("join_id", String(2048), nullable=False),
    Column("sector", String(64), nullable=False, default=""),
    Column("region", String(128), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("since", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Each network's members as the co-op knows them (from the network's members collection
# when it was admitted, then its Add and Remove): whose offers the network's Announces
# may bring into the catalogue.
network_roster = Table(
    "network_roster",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "membership_id",
        Integer,
        ForeignKey("network_memberships.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("actor", String(2048), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("sector", String(64), nullable=False, default=""),
    Column("region", String(128), nullable=False, default=""),
    Column("since", UtcDateTime, nullable=True),
    UniqueConstraint("membership_id", "actor", name="uq_network_roster_membership_id_actor"),
)
Index("ix_network_roster_actor", network_roster.c.actor)

# --- email (node/mail) ------------------------------------------------------------------

# A member's email address: verified once a link sent to it was followed, before any
# notification goes there. ``secret`` keys the member's unsubscribe links (HMAC); a new
# address gets a new one, so the old links stop working. ``digest_sent_at``: the last
# daily digest queued.
mail_recipients = Table(
    "mail_recipients",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), nullable=False),
    Column("language", String(8), nullable=False),
    Column("verified_at", UtcDateTime, nullable=True),
    Column("verify_hash", String(64), nullable=True),
    Column("verify_expires", UtcDateTime, nullable=True),
    Column("secret", String(64), nullable=False),
    Column("digest_sent_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# How a member wants each kind of notification: now, daily (in the digest) or never.
# A kind without a row gets its default (node/mail/kinds.py).
mail_preferences = Table(
    "mail_preferences",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("frequency", String(8), nullable=False),
)

# The messages to hand to the SMTP server: pending (due at ``next_attempt_at``),
# sending (taken by a worker until ``next_attempt_at``, its lease), sent or failed
# (``last_error`` says why). ``params`` is the JSON the message is rendered from, in
# ``language``; ``dedupe`` keeps one event from queueing a message twice; the
# Message-ID is fixed when queued, so a retried message is the same message.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=True),
    Column("address", String(320), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("language", String(8), nullable=False),
    Column("params", Text, nullable=False),
    Column("dedupe", String(512), nullable=True, unique=True),
    Column("message_id", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
)
Index("ix_mail_outbox_state", mail_outbox.c.state, mail_outbox.c.next_attempt_at)
# A confirmation link is looked up by its token's hash, by anyone who follows it.
Index("ix_mail_recipients_verify_hash", mail_recipients.c.verify_hash)
Index("ix_mail_outbox_member_id", mail_outbox.c.member_id, mail_outbox.c.created_at)
# The hourly limit counts the last hour's messages, whatever their member.
Index("ix_mail_outbox_created_at", mail_outbox.c.created_at)

# Notifications waiting for a member's daily digest (or kept past the hourly limit).
mail_digest_items = Table(
    "mail_digest_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("params", Text, nullable=False),
    Column("dedupe", String(512), nullable=True, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
)
Index("ix_mail_digest_items_member_id", mail_digest_items.c.member_id, mail_digest_items.c.id)

# The events whose notifications were queued (a proposal opened, an order came in): each
# is told once, whatever the number of workers or rounds that saw it.
mail_events = Table(
    "mail_events",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("subject", String(2048), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- discussion (node/discussion) -------------------------------------------------------

# Comments under a proposal or an offer (``thread``: the object's id), this node's
# members' and those that came from other servers, as their origin published them.
# ``in_reply_to``: the proposal, or the comment answered. States: visible, hidden (by an
# admin: not shown, kept, reversible) or removed (a tombstone: a late copy of the same
# id brings nothing back). ``actor_id``: the local author's actor.
comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(32), nullable=False, unique=True),
    Column("uri", String(2048), nullable=False, unique=True),
    Column("thread", String(2048), nullable=False),
    Column("in_reply_to", String(2048), nullable=False),
    Column("author", String(2048), nullable=False),
    Column("author_name", String(255), nullable=False, default=""),
    Column("author_host", String(255), nullable=False),
    Column("actor_id", Integer, ForeignKey("actors.id", ondelete="SET NULL"), nullable=True),
    Column("content", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("published", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)
Index("ix_comments_thread", comments.c.thread, comments.c.received_at, comments.c.id)
Index("ix_comments_author_host", comments.c.author_host)
# The mail worker's round reads the comments received lately (node/mail/events.py).
Index("ix_comments_received_at", comments.c.received_at)

# Reports of comments, for the admin's queue: from a member here, or a ``Flag`` another
# server sent (``activity_id``: the Flag's id, each taken once). open, then closed once
# the admin acted on the comment or dismissed the report.
comment_reports = Table(
    "comment_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("comment_id", Integer, ForeignKey("comments.id", ondelete="CASCADE"), nullable=False),
    Column("reporter", String(2048), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("activity_id", String(2048), nullable=True, unique=True),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
Index("ix_comment_reports_state", comment_reports.c.state, comment_reports.c.id)

# The mail worker's round reads the orders and follow requests of the last two days
# (node/mail/events.py), every few seconds.
Index("ix_orders_created_at", orders.c.created_at)
Index("ix_orders_updated_at", orders.c.updated_at)
Index("ix_followers_created_at", followers.c.created_at)
