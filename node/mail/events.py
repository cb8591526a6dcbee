"""Finding what to tell: each round reads the events of the last two days not yet told
(a proposal that opened or closed, one closing soon, a follow request, an invitation, an
order, a server failing for a day) and tells each in its own transaction.

The events are read from the features' own tables rather than pushed by them: a
proposal opened by the governance worker, a shared proposal the admin accepted, an
order that came through the inbox are all told the same way, and a node that could not
send for an hour tells them when it can. Events older than :data:`LOOKBACK` are never
told (a node turning email on does not send the year's news).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from federation.errors import MalformedInput
from node.discussion import reading as comments_reading
from node.discussion import store as comments_store
from node.governance.rules.shared_question import SharedQuestion, read_question
from node.governance.store.proposals import mirror_key
from node.mail import notify, store
from node.mail.kinds import Kind
from node.offers.markdown import excerpt
from node.runtime import Node

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=2)
PEER_FAILING_AFTER = timedelta(days=1)
BATCH = 20


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    subject: str
    audience: ColumnElement[bool]
    params: dict[str, Any]
    # For a failing server: when its failure began (told once per failure).
    failing_since: datetime | None = None


def _quantity(e4: int) -> str:
    return format((Decimal(e4) / 10_000).normalize(), "f")


def _host(uri: str) -> str:
    return urlsplit(uri).hostname or uri


def _shared(found: store.SharedProposal) -> SharedQuestion | None:
    try:
        return read_question(found.document)
    except MalformedInput:
        return None


def collect(conn: Connection, node: Node, now: datetime) -> list[Event]:
    """The events to tell this round (at most :data:`BATCH` of each kind)."""
    settings = node.settings
    base = settings.base_url
    since = now - LOOKBACK
    coop = settings.name
    events: list[Event] = []

    def local(kind: Kind, found: list[store.LocalProposal], audience: Callable[[int], Any]) -> None:
        for p in found:
            events.append(
                Event(
                    kind,
                    p.uri,
                    audience(p.pk),
                    _proposal(
                        p.title, p.closes_at, coop, coop, f"{base}/proposals/{p.key}", p.outcome
                    ),
                )
            )

    local(
        Kind.PROPOSAL_OPENED,
        store.opened_proposals(conn, Kind.PROPOSAL_OPENED, since=since, limit=BATCH),
        store.electorate_of,
    )
    reminder = timedelta(hours=settings.mail_reminder_hours)
    local(
        Kind.PROPOSAL_REMINDER,
        store.closing_proposals(
            conn, Kind.PROPOSAL_REMINDER, now=now, before=reminder, limit=BATCH
        ),
        lambda pk: store.electorate_of(pk) & store.not_voted_on(pk),
    )
    local(
        Kind.PROPOSAL_OUTCOME,
        store.closed_proposals(conn, Kind.PROPOSAL_OUTCOME, since=since, limit=BATCH),
        lambda pk: store.everyone(),
    )

    def shared(
        kind: Kind,
        found: list[store.SharedProposal],
        audience: Callable[[int], Any],
        keep: Callable[[SharedQuestion], bool] = lambda q: True,
        past_end_told: bool = False,
    ) -> None:
        for p in found:
            question = _shared(p)
            if question is None or mirror_key(conn, p.uri) is not None:
                # Unreadable, or voted on through this co-op's own mirror: that one is told.
                events.append(Event(kind, p.uri, store.member(-1), {}))
                continue
            if past_end_told and question.ends_at <= now:
                # Past its end (its close may never come): nothing left to remind of.
                events.append(Event(kind, p.uri, store.member(-1), {}))
                continue
            if not keep(question):
                continue
            events.append(
                Event(
                    kind,
                    p.uri,
                    audience(p.pk),
                    _proposal(
                        question.title,
                        question.ends_at,
                        _host(p.host),
                        coop,
                        f"{base}/proposals/shared/{p.key}",
                        question.outcome,
                    ),
                )
            )

    shared(
        Kind.PROPOSAL_OPENED,
        store.shared_proposals(conn, Kind.PROPOSAL_OPENED, state="open", since=since, limit=BATCH),
        lambda pk: store.voting_members(),
    )
    shared(
        Kind.PROPOSAL_REMINDER,
        store.shared_proposals(conn, Kind.PROPOSAL_REMINDER, state="open", since=None, limit=BATCH),
        lambda pk: store.voting_members() & store.not_sent_a_ballot_on(pk),
        keep=lambda q: now < q.ends_at <= now + reminder,
        past_end_told=True,
    )
    shared(
        Kind.PROPOSAL_OUTCOME,
        store.shared_proposals(
            conn, Kind.PROPOSAL_OUTCOME, state="closed", since=since, limit=BATCH
        ),
        lambda pk: store.everyone(),
    )
    for p in store.shared_proposals(
        conn, Kind.SHARED_INVITATION, state="invited", since=since, limit=BATCH
    ):
        question = _shared(p)
        events.append(
            Event(
                Kind.SHARED_INVITATION,
                p.uri,
                store.admins(),
                {
                    "title": question.title if question else p.uri,
                    "host_name": _host(p.host),
                    "coop": coop,
                    "url": f"{base}/admin/proposals",
                },
            )
        )
    for request in store.follow_requests(conn, Kind.FOLLOW_REQUEST, since=since, limit=BATCH):
        events.append(
            Event(
                Kind.FOLLOW_REQUEST,
                request.follow_id,
                store.admins(),
                {"follower": request.handle, "coop": coop, "url": f"{base}/admin/federation"},
            )
        )
    for order in store.orders_received(conn, Kind.ORDER_RECEIVED, since=since, limit=BATCH):
        events.append(
            Event(
                Kind.ORDER_RECEIVED,
                order.subject,
                store.admins(),
                {
                    "buyer": _host(order.buyer),
                    "quantity": _quantity(order.quantity_e4),
                    "unit": order.unit,
                    "note": order.note[:500],
                    "coop": coop,
                    "url": f"{base}/me/orders/received",
                },
            )
        )
    for order in store.orders_answered(conn, Kind.ORDER_ANSWERED, since=since, limit=BATCH):
        events.append(
            Event(
                Kind.ORDER_ANSWERED,
                order.subject,
                store.member(order.member_id or -1),
                {
                    "seller": _host(order.seller),
                    "quantity": _quantity(order.quantity_e4),
                    "unit": order.unit,
                    "state": order.state,
                    "coop": coop,
                    "url": f"{base}/me/orders/{order.key}",
                },
            )
        )
    for reply in store.replies_to_members(conn, Kind.COMMENT_REPLY, since=since, limit=BATCH):
        root = comments_store.root_by_uri(conn, reply.thread)
        if root is None:
            continue
        title = root.title or _shared_title(conn, root)
        events.append(
            Event(
                Kind.COMMENT_REPLY,
                reply.uri,
                store.actor_is(reply.answered_actor_id),
                {
                    "author": reply.author_name,
                    "title": title,
                    "excerpt": excerpt(reply.content, 300),
                    "coop": coop,
                    "url": comments_reading.page_of(node, root, reply.key),
                },
            )
        )
    for peer in store.failing_peers(
        conn, Kind.PEER_FAILING, now=now, after=PEER_FAILING_AFTER, window=LOOKBACK, limit=BATCH
    ):
        events.append(
            Event(
                Kind.PEER_FAILING,
                peer.host,
                store.admins(),
                {
                    "host": peer.host,
                    "since": peer.since.isoformat(),
                    "error": peer.last_error[:300],
                    "coop": coop,
                    "url": f"{base}/admin/federation",
                },
                failing_since=peer.since,
            )
        )
    return events


def _proposal(
    title: str,
    closes_at: datetime,
    host_name: str,
    coop: str,
    url: str,
    outcome: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a proposal's messages say: its title, close, host, link, and outcome."""
    found = outcome or {}
    passed = found.get("passed")
    return {
        "title": title,
        "closes_at": closes_at.isoformat(),
        "host_name": host_name,
        "coop": coop,
        "url": url,
        "passed": passed if isinstance(passed, bool) else None,
        "turnout": _count(found.get("turnout")),
        "eligible": _count(found.get("eligible")),
    }


def _shared_title(conn: Connection, root: comments_store.Root) -> str:
    """A shared proposal's title, as its host published it."""
    try:
        return read_question(comments_store.shared_document(conn, root)).title
    except MalformedInput:
        return root.uri


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tell(conn: Connection, node: Node, event: Event, now: datetime) -> int:
    """Tell one event, unless another round already did; the messages queued."""
    if event.failing_since is not None:
        fresh = store.claim_failure(
            conn, event.kind, event.subject, since=event.failing_since, now=now
        )
    else:
        fresh = store.claim_event(conn, event.kind, event.subject, now=now)
    if not fresh:
        return 0
    targets = store.targets(conn, event.kind, event.audience)
    # A server's second failure is another event than its first, under the same name.
    told = event.subject
    if event.failing_since is not None:
        told = f"{event.subject} {event.failing_since.isoformat()}"
    queued, _ = notify.tell(
        conn,
        node.settings,
        kind=event.kind,
        subject=told,
        targets=targets,
        params=event.params,
        now=now,
    )
    return queued


async def run_once(node: Node) -> int:
    now = node.clock.now()
    events = await node.db.read(lambda conn: collect(conn, node, now))
    told = 0
    for event in events:

        def write(conn: Connection, event: Event = event) -> int:
            return tell(conn, node, event, now)

        try:
            await node.db.write(write)
        except Exception:
            # One event that cannot be told does not hold the others: it is tried again.
            log.exception("mail: could not tell %s %s", event.kind, event.subject)
            continue
        told += 1
    return told
