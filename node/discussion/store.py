"""The comments' and reports' tables, and where a thread's root is: a proposal of this
co-op, a shared proposal another co-op hosts and this one takes part in, or an offer
of this co-op."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from node.storage.tables import (
    actors,
    comment_reports,
    comments,
    members,
    offers,
    proposal_coops,
    proposals,
    remote_proposals,
)

VISIBLE = "visible"
HIDDEN = "hidden"
REMOVED = "removed"
OPEN = "open"
CLOSED = "closed"
# Shared proposals whose threads this co-op holds: not while the admin has not
# answered the invitation, nor once declined.
TAKING_PART = ("open", "closed")


def new_key() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Root:
    """What a thread hangs under."""

    uri: str
    kind: str  # "proposal" (hosted here), "shared" (hosted by ``host``), "offer"
    key: str
    title: str
    pk: int
    host: str | None  # the hosting co-op's actor, for a shared proposal
    open: bool


def root_by_uri(conn: Connection, uri: str, *, offers_too: bool = True) -> Root | None:
    """The thread root at ``uri``; this co-op's offers only with ``offers_too``."""
    row = conn.execute(
        select(proposals.c.id, proposals.c.key, proposals.c.title, proposals.c.state).where(
            proposals.c.uri == uri
        )
    ).first()
    if row is not None:
        return Root(uri, "proposal", row.key, row.title, row.id, None, row.state == "open")
    shared = conn.execute(
        select(
            remote_proposals.c.id,
            remote_proposals.c.key,
            remote_proposals.c.host,
            remote_proposals.c.state,
            remote_proposals.c.document,
        ).where(remote_proposals.c.uri == uri, remote_proposals.c.state.in_(TAKING_PART))
    ).first()
    if shared is not None:
        return Root(
            uri,
            "shared",
            shared.key,
            "",
            shared.id,
            shared.host,
            shared.state == "open",
        )
    if not offers_too:
        return None
    offer = conn.execute(
        select(offers.c.id, offers.c.title, offers.c.status).where(
            offers.c.uri == uri, offers.c.local == 1
        )
    ).first()
    if offer is not None:
        active = offer.status != "withdrawn"
        return Root(uri, "offer", str(offer.id), offer.title, offer.id, None, active)
    return None


def root_by_key(conn: Connection, key: str) -> Root | None:
    """A proposal (this co-op's or a shared one) by the key the pages and the API use."""
    row = conn.execute(select(proposals.c.uri).where(proposals.c.key == key)).first()
    if row is None:
        row = conn.execute(
            select(remote_proposals.c.uri).where(
                remote_proposals.c.key == key, remote_proposals.c.state.in_(TAKING_PART)
            )
        ).first()
    return None if row is None else root_by_uri(conn, row.uri)


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    key: str
    uri: str
    thread: str
    in_reply_to: str
    author: str
    author_name: str
    author_host: str
    actor_id: int | None
    content: str
    source: str | None
    state: str
    published: datetime
    updated: datetime
    # Whether the author is one of this co-op's members (here or linked elsewhere).
    member: bool = False
    # Whether the author's server is a co-op's taking part in the proposal (a shared
    # proposal's host or one of its co-ops): a member of a partner, not a stranger.
    partner: bool = False


def _comment_of(row: Any, member: bool = False) -> Comment:
    return Comment(
        id=row.id,
        key=row.key,
        uri=row.uri,
        thread=row.thread,
        in_reply_to=row.in_reply_to,
        author=row.author,
        author_name=row.author_name,
        author_host=row.author_host,
        actor_id=row.actor_id,
        content=row.content,
        source=row.source,
        state=row.state,
        published=row.published,
        updated=row.updated,
        member=member,
    )


_IS_MEMBER = (
    select(members.c.id)
    .where(
        members.c.actor_uri == comments.c.author,
        members.c.state == "confirmed",
        members.c.left_at.is_(None),
    )
    .exists()
    .label("is_member")
)


def by_uri(conn: Connection, uri: str) -> Comment | None:
    row = conn.execute(select(comments, _IS_MEMBER).where(comments.c.uri == uri)).first()
    return None if row is None else _comment_of(row, bool(row.is_member))


def by_key(conn: Connection, key: str) -> Comment | None:
    row = conn.execute(select(comments, _IS_MEMBER).where(comments.c.key == key)).first()
    return None if row is None else _comment_of(row, bool(row.is_member))


def by_id(conn: Connection, comment_id: int) -> Comment | None:
    row = conn.execute(select(comments, _IS_MEMBER).where(comments.c.id == comment_id)).first()
    return None if row is None else _comment_of(row, bool(row.is_member))


def thread(
    conn: Connection, root: str, *, states: Sequence[str] = (VISIBLE,), limit: int = 500
) -> list[Comment]:
    """A thread's latest ``limit`` comments, oldest first."""
    rows = conn.execute(
        select(comments, _IS_MEMBER)
        .where(comments.c.thread == root, comments.c.state.in_(list(states)))
        .order_by(comments.c.received_at.desc(), comments.c.id.desc())
        .limit(limit)
    ).all()
    # The latest ``limit`` to arrive, shown in the order they came: a peer's own date,
    # which it may set as it likes, orders nothing.
    return [_comment_of(row, bool(row.is_member)) for row in reversed(rows)]


def count(conn: Connection, root: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(comments.c.thread == root, comments.c.state == VISIBLE)
        ).scalar_one()
    )


def add(
    conn: Connection,
    *,
    uri: str | None,
    key: str,
    thread: str,
    in_reply_to: str,
    author: str,
    author_name: str,
    author_host: str,
    actor_id: int | None,
    content: str,
    source: str | None,
    published: datetime,
    now: datetime,
) -> int | None:
    """Store a comment; None when its id is already stored (a copy, or a tombstone)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    row_id = conn.execute(
        dialect.insert(comments)
        .values(
            key=key,
            uri=uri or key,
            thread=thread,
            in_reply_to=in_reply_to,
            author=author,
            author_name=author_name[:255],
            author_host=author_host[:255],
            actor_id=actor_id,
            content=content,
            source=source,
            state=VISIBLE,
            published=published,
            updated=now,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["uri"])
        .returning(comments.c.id)
    ).scalar()
    return None if row_id is None else int(row_id)


def set_uri(conn: Connection, comment_id: int, uri: str) -> None:
    conn.execute(update(comments).where(comments.c.id == comment_id).values(uri=uri))


def set_state(
    conn: Connection, comment_id: int, state: str, *, now: datetime, was: Sequence[str]
) -> bool:
    values: dict[str, Any] = {"state": state, "updated": now}
    if state == REMOVED:
        values.update(content="", source=None)
    changed = conn.execute(
        update(comments)
        .where(comments.c.id == comment_id, comments.c.state.in_(list(was)))
        .values(values)
    ).rowcount
    return bool(changed)


def edit(conn: Connection, comment_id: int, *, content: str, now: datetime) -> bool:
    return bool(
        conn.execute(
            update(comments)
            .where(comments.c.id == comment_id, comments.c.state != REMOVED)
            .values(content=content, updated=now)
        ).rowcount
    )


def tombstone(conn: Connection, *, uri: str, author: str, author_host: str, now: datetime) -> None:
    """Remember that ``uri`` was deleted before it arrived: a late Create brings nothing."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(
        dialect.insert(comments)
        .values(
            key=new_key(),
            uri=uri,
            thread="",
            in_reply_to="",
            author=author,
            author_name="",
            author_host=author_host[:255],
            actor_id=None,
            content="",
            source=None,
            state=REMOVED,
            published=now,
            updated=now,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["uri"])
    )


def recent(
    conn: Connection, *, states: Sequence[str], hosts: Sequence[str] = (), limit: int = 100
) -> list[Comment]:
    """The latest comments in ``states``, newest first (of ``hosts`` only, if given)."""
    where = and_(comments.c.state.in_(list(states)), comments.c.thread != "")
    if hosts:
        where = and_(where, comments.c.author_host.in_(list(hosts)))
    rows = conn.execute(
        select(comments, _IS_MEMBER)
        .where(where)
        .order_by(comments.c.received_at.desc(), comments.c.id.desc())
        .limit(limit)
    )
    return [_comment_of(row, bool(row.is_member)) for row in rows]


# --- reports ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    comment_id: int
    reporter: str
    origin: str
    reason: str
    state: str
    created_at: datetime


def report(
    conn: Connection,
    comment_id: int,
    *,
    reporter: str,
    origin: str,
    reason: str,
    activity_id: str | None,
    now: datetime,
) -> bool:
    """Record a report; False when that Flag is already there, or the reporter (a
    member, or another server's actor) already has an open report of the comment."""
    already = conn.execute(
        select(comment_reports.c.id).where(
            comment_reports.c.comment_id == comment_id,
            comment_reports.c.reporter == reporter,
            comment_reports.c.state == OPEN,
        )
    ).first()
    if already is not None:
        return False
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(comment_reports).values(
        comment_id=comment_id,
        reporter=reporter,
        origin=origin,
        reason=reason,
        activity_id=activity_id,
        state=OPEN,
        created_at=now,
    )
    if activity_id is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["activity_id"])
    return bool(conn.execute(statement).rowcount)


def open_reports(conn: Connection, *, limit: int = 200) -> list[tuple[Report, Comment]]:
    rows = conn.execute(
        select(
            comment_reports.c.id.label("report_id"),
            comment_reports.c.reporter,
            comment_reports.c.origin,
            comment_reports.c.reason,
            comment_reports.c.state.label("report_state"),
            comment_reports.c.created_at,
            comments,
            _IS_MEMBER,
        )
        .join(comments, comments.c.id == comment_reports.c.comment_id)
        .where(comment_reports.c.state == OPEN)
        .order_by(comment_reports.c.id)
        .limit(limit)
    )
    return [
        (
            Report(
                row.report_id,
                row.id,
                row.reporter,
                row.origin,
                row.reason,
                row.report_state,
                row.created_at,
            ),
            _comment_of(row, bool(row.is_member)),
        )
        for row in rows
    ]


def close_reports(conn: Connection, comment_id: int) -> int:
    return int(
        conn.execute(
            update(comment_reports)
            .where(comment_reports.c.comment_id == comment_id, comment_reports.c.state == OPEN)
            .values(state=CLOSED)
        ).rowcount
        or 0
    )


def reported_counts(conn: Connection, comment_ids: Sequence[int]) -> dict[int, int]:
    if not comment_ids:
        return {}
    rows = conn.execute(
        select(comment_reports.c.comment_id, func.count())
        .where(
            comment_reports.c.comment_id.in_(list(comment_ids)),
            comment_reports.c.state == OPEN,
        )
        .group_by(comment_reports.c.comment_id)
    )
    return {int(comment_id): int(n) for comment_id, n in rows}


def local_author(conn: Connection, actor_pk: int) -> tuple[str, str] | None:
    """The username and displayed name of a local actor (a member commenting)."""
    row = conn.execute(
        select(actors.c.username, actors.c.name).where(actors.c.id == actor_pk)
    ).first()
    return None if row is None else (str(row.username), str(row.name or row.username))


def hosts_shared(conn: Connection, actor: str) -> bool:
    """Whether ``actor`` hosts a shared proposal this co-op takes part in."""
    found = conn.execute(
        select(remote_proposals.c.id)
        .where(remote_proposals.c.host == actor, remote_proposals.c.state.in_(TAKING_PART))
        .limit(1)
    ).first()
    return found is not None


def partner_hosts(conn: Connection, root: Root) -> set[str]:
    """The servers of the other co-ops taking part in a shared proposal: for one hosted
    here, those it was shared with (and have not declined); for one hosted elsewhere,
    its host and the co-ops its ``electorate`` names."""
    if root.kind == "proposal":
        rows = conn.execute(
            select(proposal_coops.c.coop).where(
                proposal_coops.c.proposal_id == root.pk,
                proposal_coops.c.state.not_in(("declined", "host")),
            )
        ).scalars()
        return {_host_of(coop) for coop in rows}
    if root.kind == "shared":
        found = {_host_of(root.host or "")}
        raw = conn.execute(
            select(remote_proposals.c.document).where(remote_proposals.c.id == root.pk)
        ).scalar()
        try:
            electorate = json.loads(raw or "{}").get("electorate", [])
        except (ValueError, AttributeError):
            electorate = []
        if isinstance(electorate, list):
            found |= {_host_of(e) for e in electorate[:500] if isinstance(e, str)}
        return found - {""}
    return set()


def _host_of(uri: str) -> str:
    return (urlsplit(uri).hostname or "").lower()


def shared_document(conn: Connection, root: Root) -> Any:
    """The ``Question`` a shared proposal's host published, as stored (None if it is
    not JSON, or the root is not a shared proposal)."""
    if root.kind != "shared":
        return None
    raw = conn.execute(
        select(remote_proposals.c.document).where(remote_proposals.c.id == root.pk)
    ).scalar()
    try:
        return json.loads(raw or "null")
    except ValueError:
        return None


def recent_by(conn: Connection, author: str, root: str, *, since: datetime) -> int:
    """How many comments ``author`` made under ``root`` since ``since``."""
    return int(
        conn.execute(
            select(func.count()).where(
                comments.c.author == author,
                comments.c.thread == root,
                comments.c.received_at >= since,
            )
        ).scalar_one()
    )


def recent_from(conn: Connection, host: str, root: str, *, since: datetime) -> int:
    """How many comments the accounts of ``host`` made under ``root`` since ``since``."""
    return int(
        conn.execute(
            select(func.count()).where(
                comments.c.author_host == host,
                comments.c.thread == root,
                comments.c.received_at >= since,
            )
        ).scalar_one()
    )


def reportable(conn: Connection, values: Sequence[str]) -> list[int]:
    """Which of ``values`` name comments another server may report to this co-op:
    not removed, and in a thread it hosts (a proposal or offer of its own) or written
    by one of its members."""
    if not values:
        return []
    rows = conn.execute(
        select(comments.c.id, comments.c.thread, comments.c.actor_id)
        .where(
            comments.c.uri.in_(list(values)),
            comments.c.thread != "",
            comments.c.state != REMOVED,
        )
        .order_by(comments.c.id)
    ).all()
    found = []
    for row in rows:
        root = None if row.actor_id is not None else root_by_uri(conn, row.thread)
        if row.actor_id is not None or (root is not None and root.kind != "shared"):
            found.append(int(row.id))
    return found
