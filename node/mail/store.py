"""Email's tables: members' addresses and choices, the outbox, the digests' items, and
the events already told; and the reads that find the events to tell (a proposal that
opened, an order that came in), which look at the tables of the features they tell of.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from node.mail.kinds import DEFAULTS, Frequency
from node.storage.tables import (
    ballots,
    comments,
    domains,
    followers,
    mail_digest_items,
    mail_events,
    mail_outbox,
    mail_preferences,
    mail_recipients,
    members,
    orders,
    proposal_voters,
    proposals,
    remote_actors,
    remote_proposals,
    sent_ballots,
)

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
VOTING_ROLES = ("admin", "member")


# --- addresses and choices ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    member_id: int
    address: str
    language: str
    verified: bool
    secret: str
    verify_expires: datetime | None
    digest_sent_at: datetime | None


def _recipient_of(row: Any) -> Recipient:
    return Recipient(
        member_id=row.member_id,
        address=row.address,
        language=row.language,
        verified=row.verified_at is not None,
        secret=row.secret,
        verify_expires=row.verify_expires,
        digest_sent_at=row.digest_sent_at,
    )


def recipient(conn: Connection, member_id: int) -> Recipient | None:
    row = conn.execute(
        select(mail_recipients).where(mail_recipients.c.member_id == member_id)
    ).first()
    return None if row is None else _recipient_of(row)


def set_address(
    conn: Connection,
    member_id: int,
    *,
    address: str,
    language: str,
    verify_hash: str,
    verify_expires: datetime,
    secret: str,
    now: datetime,
) -> None:
    """A new (unverified) address for the member, with its verification token and a new
    secret for its unsubscribe links."""
    values = {
        "address": address,
        "language": language,
        "verified_at": None,
        "verify_hash": verify_hash,
        "verify_expires": verify_expires,
        "secret": secret,
        "updated_at": now,
    }
    changed = conn.execute(
        update(mail_recipients).where(mail_recipients.c.member_id == member_id).values(values)
    ).rowcount
    if not changed:
        conn.execute(insert(mail_recipients).values(member_id=member_id, created_at=now, **values))


def remove_address(conn: Connection, member_id: int) -> None:
    conn.execute(delete(mail_recipients).where(mail_recipients.c.member_id == member_id))
    conn.execute(
        delete(mail_outbox).where(
            mail_outbox.c.member_id == member_id, mail_outbox.c.state == PENDING
        )
    )
    conn.execute(delete(mail_digest_items).where(mail_digest_items.c.member_id == member_id))


def new_verify_token(
    conn: Connection, member_id: int, *, verify_hash: str, expires: datetime, now: datetime
) -> None:
    conn.execute(
        update(mail_recipients)
        .where(mail_recipients.c.member_id == member_id)
        .values(verify_hash=verify_hash, verify_expires=expires, updated_at=now)
    )


def verify(conn: Connection, verify_hash: str, *, now: datetime) -> int | None:
    """Mark the address whose token hashes to ``verify_hash`` verified; its member, or
    None when no unexpired token matches."""
    row = conn.execute(
        select(mail_recipients.c.member_id, mail_recipients.c.verify_expires).where(
            mail_recipients.c.verify_hash == verify_hash
        )
    ).first()
    if row is None or row.verify_expires is None or row.verify_expires < now:
        return None
    conn.execute(
        update(mail_recipients)
        .where(mail_recipients.c.member_id == row.member_id)
        .values(verified_at=now, verify_hash=None, verify_expires=None, updated_at=now)
    )
    return int(row.member_id)


def set_language(conn: Connection, member_id: int, language: str, *, now: datetime) -> None:
    conn.execute(
        update(mail_recipients)
        .where(mail_recipients.c.member_id == member_id)
        .values(language=language, updated_at=now)
    )


def preferences(conn: Connection, member_id: int) -> dict[str, Frequency]:
    chosen = dict(DEFAULTS)
    for row in conn.execute(
        select(mail_preferences.c.kind, mail_preferences.c.frequency).where(
            mail_preferences.c.member_id == member_id
        )
    ):
        if row.kind in chosen and row.frequency in Frequency.__members__.values():
            chosen[row.kind] = Frequency(row.frequency)
    return chosen


def set_preferences(conn: Connection, member_id: int, chosen: dict[str, Frequency]) -> None:
    if not chosen:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(mail_preferences)
    # An upsert: two one-click unsubscribes at once (the mail provider's and the
    # member's) both succeed.
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["member_id", "kind"],
            set_={"frequency": statement.excluded.frequency},
        ),
        [
            {"member_id": member_id, "kind": kind, "frequency": str(frequency)}
            for kind, frequency in chosen.items()
        ],
    )


def forget_waiting(conn: Connection, member_id: int, kinds: Sequence[str]) -> None:
    """Drop the member's digest items and unsent messages of ``kinds`` (and the unsent
    summaries, which gather them)."""
    conn.execute(
        delete(mail_digest_items).where(
            mail_digest_items.c.member_id == member_id, mail_digest_items.c.kind.in_(kinds)
        )
    )
    conn.execute(
        delete(mail_outbox).where(
            mail_outbox.c.member_id == member_id,
            mail_outbox.c.state == PENDING,
            mail_outbox.c.kind.in_([*kinds, "digest"]),
        )
    )


# --- who hears of an event ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    member_id: int
    address: str
    language: str
    frequency: Frequency


def _current_members() -> ColumnElement[bool]:
    return and_(members.c.local == 1, members.c.state == "confirmed", members.c.left_at.is_(None))


def targets(conn: Connection, kind: str, where: ColumnElement[bool]) -> list[Target]:
    """The current local members matching ``where`` with a verified address, each with
    their choice for ``kind``; those who chose never are left out."""
    default = str(DEFAULTS[kind])
    rows = conn.execute(
        select(
            members.c.id,
            mail_recipients.c.address,
            mail_recipients.c.language,
            func.coalesce(mail_preferences.c.frequency, default).label("frequency"),
        )
        .join(mail_recipients, mail_recipients.c.member_id == members.c.id)
        .outerjoin(
            mail_preferences,
            and_(mail_preferences.c.member_id == members.c.id, mail_preferences.c.kind == kind),
        )
        .where(_current_members(), mail_recipients.c.verified_at.is_not(None), where)
        .order_by(members.c.id)
    )
    return [
        Target(row.id, row.address, row.language, Frequency(row.frequency))
        for row in rows
        if row.frequency in (Frequency.NOW, Frequency.DAILY)
    ]


def everyone() -> ColumnElement[bool]:
    return members.c.id.is_not(None)


def admins() -> ColumnElement[bool]:
    return members.c.role == "admin"


def member(member_id: int) -> ColumnElement[bool]:
    return members.c.id == member_id


def voting_members() -> ColumnElement[bool]:
    return members.c.role.in_(VOTING_ROLES)


def electorate_of(proposal_pk: int) -> ColumnElement[bool]:
    """The members on a proposal's electorate (fixed at its opening)."""
    return exists().where(
        proposal_voters.c.proposal_id == proposal_pk,
        proposal_voters.c.voter == members.c.actor_uri,
    )


def not_voted_on(proposal_pk: int) -> ColumnElement[bool]:
    return ~exists().where(
        ballots.c.proposal_id == proposal_pk,
        ballots.c.voter == members.c.actor_uri,
        ballots.c.state == "valid",
    )


def not_sent_a_ballot_on(remote_pk: int) -> ColumnElement[bool]:
    return ~exists().where(
        sent_ballots.c.proposal_id == remote_pk, sent_ballots.c.actor_id == members.c.actor_id
    )


# --- the outbox ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMail:
    member_id: int | None
    address: str
    kind: str
    language: str
    params: dict[str, Any]
    dedupe: str | None
    message_id: str


def _insert_ignoring(conn: Connection, table: Any) -> Any:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(table).on_conflict_do_nothing(index_elements=["dedupe"])


def _params_text(params: dict[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"), default=str)


def queue(conn: Connection, mails: Sequence[NewMail], *, now: datetime) -> None:
    """Queue messages; one whose ``dedupe`` is already queued is skipped."""
    if not mails:
        return
    conn.execute(
        _insert_ignoring(conn, mail_outbox),
        [
            {
                "member_id": m.member_id,
                "address": m.address,
                "kind": m.kind,
                "language": m.language,
                "params": _params_text(m.params),
                "dedupe": m.dedupe,
                "message_id": m.message_id,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
            for m in mails
        ],
    )


def keep_for_digest(
    conn: Connection,
    items: Sequence[tuple[int, str, dict[str, Any], str | None]],
    *,
    now: datetime,
) -> None:
    """Items (member, kind, params, dedupe) for the members' next digests."""
    if not items:
        return
    conn.execute(
        _insert_ignoring(conn, mail_digest_items),
        [
            {
                "member_id": member_id,
                "kind": kind,
                "params": _params_text(params),
                "dedupe": dedupe,
                "created_at": now,
            }
            for member_id, kind, params, dedupe in items
        ],
    )


def sent_recently(
    conn: Connection, member_ids: Iterable[int], *, since: datetime, kinds: Iterable[str]
) -> dict[int, int]:
    """How many notifications each member was queued since ``since``."""
    wanted = set(member_ids)
    if not wanted:
        return {}
    # Grouped over the last hour's messages: one query, whatever the audience's size.
    rows = conn.execute(
        select(mail_outbox.c.member_id, func.count())
        .where(mail_outbox.c.created_at >= since, mail_outbox.c.kind.in_(list(kinds)))
        .group_by(mail_outbox.c.member_id)
    )
    return {int(member): int(count) for member, count in rows if member in wanted}


def queued_for(conn: Connection, member_id: int, kind: str, *, since: datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                mail_outbox.c.member_id == member_id,
                mail_outbox.c.kind == kind,
                mail_outbox.c.created_at >= since,
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    member_id: int | None
    address: str
    kind: str
    language: str
    params: dict[str, Any]
    message_id: str
    attempts: int
    created_at: datetime
    # The member's current address and its secret (unsubscribe links): None when the
    # member has none now, or it is no longer verified (then nothing is sent).
    current_address: str | None
    secret: str | None
    verified: bool
    # The end of this claim's lease: what says the row is still this claim's.
    claimed_until: datetime | None = None


def claim(conn: Connection, *, now: datetime, lease: timedelta, limit: int) -> list[Outgoing]:
    """Take up to ``limit`` due messages: each is the caller's until ``now + lease``
    (a worker that stops without saying how it went leaves them to be tried again)."""
    due = (
        select(mail_outbox.c.id)
        .where(mail_outbox.c.state.in_((PENDING, SENDING)), mail_outbox.c.next_attempt_at <= now)
        .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(due)]
    if not ids:
        return []
    conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id.in_(ids))
        .values(
            state=SENDING,
            next_attempt_at=now + lease,
            attempts=mail_outbox.c.attempts + 1,
        )
    )
    rows = conn.execute(
        select(
            mail_outbox,
            mail_recipients.c.address.label("current_address"),
            mail_recipients.c.secret,
            mail_recipients.c.verified_at,
        )
        .outerjoin(mail_recipients, mail_recipients.c.member_id == mail_outbox.c.member_id)
        .where(mail_outbox.c.id.in_(ids))
        .order_by(mail_outbox.c.id)
    )
    return [
        Outgoing(
            id=row.id,
            member_id=row.member_id,
            address=row.address,
            kind=row.kind,
            language=row.language,
            params=_params(row.params),
            message_id=row.message_id,
            attempts=row.attempts,
            created_at=row.created_at,
            current_address=row.current_address,
            secret=row.secret,
            verified=row.verified_at is not None,
            claimed_until=now + lease,
        )
        for row in rows
    ]


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _still_claimed(ids: Sequence[int], claimed_until: datetime | None) -> ColumnElement[bool]:
    """The rows of ``ids`` that are still the claim's whose lease ends at
    ``claimed_until``: a claim whose lease ran out, and whose rows another worker took,
    records nothing over that worker's."""
    where = and_(mail_outbox.c.id.in_(list(ids)), mail_outbox.c.state == SENDING)
    if claimed_until is not None:
        where = and_(where, mail_outbox.c.next_attempt_at == claimed_until)
    return where


def mark_sent(
    conn: Connection, ids: Sequence[int], *, now: datetime, claimed_until: datetime | None = None
) -> None:
    if ids:
        conn.execute(
            update(mail_outbox)
            .where(_still_claimed(ids, claimed_until))
            .values(state=SENT, sent_at=now, last_error=None)
        )


def mark_retry(
    conn: Connection,
    mail_id: int,
    *,
    error: str,
    at: datetime,
    claimed_until: datetime | None = None,
) -> None:
    conn.execute(
        update(mail_outbox)
        .where(_still_claimed([mail_id], claimed_until))
        .values(state=PENDING, next_attempt_at=at, last_error=error[:2000])
    )


def mark_failed(
    conn: Connection, mail_id: int, *, error: str, claimed_until: datetime | None = None
) -> None:
    conn.execute(
        update(mail_outbox)
        .where(_still_claimed([mail_id], claimed_until))
        .values(state=FAILED, last_error=error[:2000])
    )


@dataclass(frozen=True, slots=True)
class Queued:
    id: int
    address: str
    kind: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def outbox_page(conn: Connection, *, limit: int = 100) -> list[Queued]:
    rows = conn.execute(select(mail_outbox).order_by(mail_outbox.c.id.desc()).limit(limit))
    return [
        Queued(r.id, r.address, r.kind, r.state, r.attempts, r.last_error, r.created_at, r.sent_at)
        for r in rows
    ]


def outbox_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(mail_outbox.c.state, func.count()).group_by(mail_outbox.c.state)
    ).all()
    return {str(state): int(count) for state, count in rows}


def prune(conn: Connection, *, before: datetime) -> int:
    """Forget sent and failed messages, and told events, older than ``before``."""
    gone = conn.execute(
        delete(mail_outbox).where(
            mail_outbox.c.state.in_((SENT, FAILED)), mail_outbox.c.created_at < before
        )
    ).rowcount
    conn.execute(delete(mail_events).where(mail_events.c.created_at < before))
    return int(gone or 0)


# --- digests ------------------------------------------------------------------------


def digests_due(conn: Connection, *, due_at: datetime, limit: int) -> list[int]:
    """Members with items waiting whose last digest (or address) is from before
    ``due_at``."""
    rows = conn.execute(
        select(mail_digest_items.c.member_id)
        .join(mail_recipients, mail_recipients.c.member_id == mail_digest_items.c.member_id)
        .join(members, members.c.id == mail_digest_items.c.member_id)
        .where(
            _current_members(),
            # A member's first digest comes at the first digest hour after the address
            # was given, not at once.
            func.coalesce(mail_recipients.c.digest_sent_at, mail_recipients.c.created_at) < due_at,
            mail_recipients.c.verified_at.is_not(None),
        )
        .group_by(mail_digest_items.c.member_id)
        .order_by(mail_digest_items.c.member_id)
        .limit(limit)
    )
    return [int(row.member_id) for row in rows]


def take_digest(
    conn: Connection, member_id: int, *, now: datetime
) -> list[tuple[str, dict[str, Any], datetime]]:
    """The member's waiting items, oldest first, removed; their digest is marked sent."""
    rows = conn.execute(
        select(mail_digest_items)
        .where(mail_digest_items.c.member_id == member_id)
        .order_by(mail_digest_items.c.id)
    ).all()
    if rows:
        conn.execute(
            delete(mail_digest_items).where(mail_digest_items.c.id.in_([row.id for row in rows]))
        )
    conn.execute(
        update(mail_recipients)
        .where(mail_recipients.c.member_id == member_id)
        .values(digest_sent_at=now)
    )
    return [(row.kind, _params(row.params), row.created_at) for row in rows]


# --- events already told ------------------------------------------------------------


def claim_event(conn: Connection, kind: str, subject: str, *, now: datetime) -> bool:
    """Record that the event is being told; False if it already was."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    done = conn.execute(
        dialect.insert(mail_events)
        .values(kind=kind, subject=subject[:2048], created_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "subject"])
    ).rowcount
    return bool(done)


def claim_failure(
    conn: Connection, kind: str, host: str, *, since: datetime, now: datetime
) -> bool:
    """Record that a server's failure that began at ``since`` is being told (a failure
    told before it, now over, makes way); False if this one already was."""
    conn.execute(
        delete(mail_events).where(
            mail_events.c.kind == kind,
            mail_events.c.subject == host,
            mail_events.c.created_at < since,
        )
    )
    return claim_event(conn, kind, host, now=now)


def _untold(kind: str, subject: Any) -> ColumnElement[bool]:
    return ~exists().where(mail_events.c.kind == kind, mail_events.c.subject == subject)


# --- events to tell -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalProposal:
    pk: int
    key: str
    uri: str
    title: str
    closes_at: datetime
    outcome: dict[str, Any] | None


def opened_proposals(
    conn: Connection, kind: str, *, since: datetime, limit: int
) -> list[LocalProposal]:
    """Proposals of this co-op open since ``since`` and not yet told as ``kind``."""
    return _local(
        conn,
        and_(
            proposals.c.state == "open",
            proposals.c.opens_at >= since,
            _untold(kind, proposals.c.uri),
        ),
        limit,
    )


def closing_proposals(
    conn: Connection, kind: str, *, now: datetime, before: timedelta, limit: int
) -> list[LocalProposal]:
    """Open proposals closing within ``before``, that were open before that window
    began (a proposal opened an hour before its end needs no reminder), not yet told."""
    return _local(
        conn,
        and_(
            proposals.c.state == "open",
            proposals.c.closes_at > now,
            proposals.c.closes_at <= now + before,
            proposals.c.opens_at < now - timedelta(hours=1),
            _untold(kind, proposals.c.uri),
        ),
        limit,
    )


def closed_proposals(
    conn: Connection, kind: str, *, since: datetime, limit: int
) -> list[LocalProposal]:
    return _local(
        conn,
        and_(
            proposals.c.state == "closed",
            proposals.c.closed_at >= since,
            _untold(kind, proposals.c.uri),
        ),
        limit,
    )


def _local(conn: Connection, where: ColumnElement[bool], limit: int) -> list[LocalProposal]:
    rows = conn.execute(
        select(
            proposals.c.id,
            proposals.c.key,
            proposals.c.uri,
            proposals.c.title,
            proposals.c.closes_at,
            proposals.c.outcome,
        )
        .where(where)
        .order_by(proposals.c.id)
        .limit(limit)
    )
    return [
        LocalProposal(
            r.id,
            r.key,
            r.uri,
            r.title,
            r.closes_at,
            None if r.outcome is None else _params(r.outcome),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class SharedProposal:
    pk: int
    key: str
    uri: str
    host: str
    document: dict[str, Any]


def shared_proposals(
    conn: Connection, kind: str, *, state: str, since: datetime | None, limit: int
) -> list[SharedProposal]:
    """Shared proposals hosted elsewhere in ``state`` (changed since ``since``, when
    given), not yet told as ``kind``."""
    where = and_(remote_proposals.c.state == state, _untold(kind, remote_proposals.c.uri))
    if since is not None:
        where = and_(where, remote_proposals.c.updated_at >= since)
    rows = conn.execute(
        select(
            remote_proposals.c.id,
            remote_proposals.c.key,
            remote_proposals.c.uri,
            remote_proposals.c.host,
            remote_proposals.c.document,
        )
        .where(where)
        .order_by(remote_proposals.c.id)
        .limit(limit)
    )
    return [SharedProposal(r.id, r.key, r.uri, r.host, _params(r.document)) for r in rows]


@dataclass(frozen=True, slots=True)
class FollowRequest:
    follower: str
    follow_id: str
    # user@host, from the follower's actor document where it names itself
    handle: str


def follow_requests(
    conn: Connection, kind: str, *, since: datetime, limit: int
) -> list[FollowRequest]:
    rows = conn.execute(
        select(
            followers.c.follower,
            followers.c.follow_id,
            followers.c.host,
            remote_actors.c.document,
        )
        .outerjoin(remote_actors, remote_actors.c.uri == followers.c.follower)
        .where(
            followers.c.state == "pending",
            followers.c.created_at >= since,
            _untold(kind, followers.c.follow_id),
        )
        .order_by(followers.c.id)
        .limit(limit)
    )
    return [FollowRequest(r.follower, r.follow_id, _handle(r)) for r in rows]


def _handle(row: Any) -> str:
    name = _params(row.document or "").get("preferredUsername")
    if isinstance(name, str) and 0 < len(name) <= 64 and name.isprintable() and "@" not in name:
        return f"{name}@{row.host}"
    return str(row.follower)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    key: str
    subject: str
    state: str
    offer_uri: str
    seller: str
    buyer: str
    member_id: int | None
    quantity_e4: int
    unit: str
    note: str


def orders_received(
    conn: Connection, kind: str, *, since: datetime, limit: int
) -> list[OrderEvent]:
    return _orders(
        conn,
        kind,
        orders.c.key,
        and_(orders.c.side == "seller", orders.c.created_at >= since),
        limit,
    )


def orders_answered(
    conn: Connection, kind: str, *, since: datetime, limit: int
) -> list[OrderEvent]:
    """Orders members placed that the seller accepted or refused (the answer told once
    per state: an accepted order later fulfilled is another event)."""
    subject = orders.c.key + " " + orders.c.state
    return _orders(
        conn,
        kind,
        subject,
        and_(
            orders.c.side == "buyer",
            orders.c.state.in_(("accepted", "rejected")),
            orders.c.updated_at >= since,
            orders.c.member_id.is_not(None),
        ),
        limit,
    )


def _orders(
    conn: Connection, kind: str, subject: Any, where: ColumnElement[bool], limit: int
) -> list[OrderEvent]:
    rows = conn.execute(
        select(
            orders.c.key,
            subject.label("subject"),
            orders.c.state,
            orders.c.offer_uri,
            orders.c.seller,
            orders.c.buyer,
            orders.c.member_id,
            orders.c.quantity_e4,
            orders.c.unit,
            orders.c.note,
        )
        .where(where, _untold(kind, subject))
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [
        OrderEvent(
            r.key,
            r.subject,
            r.state,
            r.offer_uri,
            r.seller,
            r.buyer,
            r.member_id,
            r.quantity_e4,
            r.unit,
            r.note,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class FailingPeer:
    host: str
    since: datetime
    last_error: str


def failing_peers(
    conn: Connection, kind: str, *, now: datetime, after: timedelta, window: timedelta, limit: int
) -> list[FailingPeer]:
    """Servers failing for ``after`` and more (but not more than ``after + window``:
    older failures were told, or the node was not telling then), once per failure."""
    told = exists().where(
        mail_events.c.kind == kind,
        mail_events.c.subject == domains.c.host,
        mail_events.c.created_at >= domains.c.failing_since,
    )
    rows = conn.execute(
        select(domains.c.host, domains.c.failing_since, domains.c.last_error)
        .where(
            domains.c.failing_since.is_not(None),
            domains.c.failing_since <= now - after,
            domains.c.failing_since >= now - after - window,
            ~told,
        )
        .order_by(domains.c.id)
        .limit(limit)
    )
    return [FailingPeer(r.host, r.failing_since, r.last_error or "") for r in rows]


@dataclass(frozen=True, slots=True)
class Health:
    waiting: int
    oldest_waiting: datetime | None
    last_error: str | None
    sent_since: int
    failed_since: int


def health(conn: Connection, *, since: datetime) -> Health:
    """What waits, and what went or failed since ``since``: for ``coopnode doctor``."""
    waiting = conn.execute(
        select(func.count(), func.min(mail_outbox.c.created_at)).where(
            mail_outbox.c.state.in_((PENDING, SENDING))
        )
    ).one()
    error = conn.execute(
        select(mail_outbox.c.last_error)
        .where(mail_outbox.c.last_error.is_not(None))
        .order_by(mail_outbox.c.id.desc())
        .limit(1)
    ).scalar()
    done: dict[str, int] = dict(
        conn.execute(
            select(mail_outbox.c.state, func.count())
            .where(mail_outbox.c.created_at >= since, mail_outbox.c.state.in_((SENT, FAILED)))
            .group_by(mail_outbox.c.state)
        ).all()
    )
    return Health(
        waiting=int(waiting[0]),
        oldest_waiting=waiting[1],
        last_error=error,
        sent_since=int(done.get(SENT, 0)),
        failed_since=int(done.get(FAILED, 0)),
    )


@dataclass(frozen=True, slots=True)
class Reply:
    uri: str
    key: str
    thread: str
    author_name: str
    content: str
    # The member answered: their actor.
    answered_actor_id: int


def replies_to_members(conn: Connection, kind: str, *, since: datetime, limit: int) -> list[Reply]:
    """Visible comments answering a comment of one of this node's members (not their
    own answer to themselves), received since ``since`` and not yet told."""
    parent = comments.alias("answered")
    rows = conn.execute(
        select(
            comments.c.uri,
            comments.c.key,
            comments.c.thread,
            comments.c.author_name,
            comments.c.content,
            parent.c.actor_id,
        )
        .join(parent, parent.c.uri == comments.c.in_reply_to)
        .where(
            parent.c.actor_id.is_not(None),
            comments.c.author != parent.c.author,
            comments.c.state == "visible",
            comments.c.received_at >= since,
            _untold(kind, comments.c.uri),
        )
        .order_by(comments.c.id)
        .limit(limit)
    )
    return [Reply(r.uri, r.key, r.thread, r.author_name, r.content, int(r.actor_id)) for r in rows]


def actor_is(actor_id: int) -> ColumnElement[bool]:
    return members.c.actor_id == actor_id


def role_of(conn: Connection, member_id: int) -> str | None:
    """The member's role while a current member; None once gone."""
    found = conn.execute(
        select(members.c.role).where(members.c.id == member_id, _current_members())
    ).scalar()
    return None if found is None else str(found)
