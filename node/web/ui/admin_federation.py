"""The admin's federation page and queues page.

``/admin/federation`` shows whom the co-op follows (with the import of their offers),
who follows it (approving or refusing those waiting), the domains the admin blocked or
allowed, and how deliveries to each peer fare. ``/admin/queues`` shows the delivery and
inbox queues. Every form goes through :func:`node.web.ui.sessions.read_form` and needs
the admin role; an invalid entry shows the page again with the message next to the
field (400), and nothing changes.

The queries are bounded: the lists have a limit, and the counts by state are over the
latest rows of each queue (those still waiting are all counted, through the index of
the rows the workers still have to take).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import and_, desc, func, or_, select
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from federation.errors import FederationError
from federation.inbox import host_of
from federation.webfinger import WebFingerError
from node.errors import Invalid, NodeError
from node.follows import federating
from node.follows import store as follows
from node.offers import backfill
from node.runtime import Node
from node.services import domains as domain_service
from node.services import outbox
from node.services.remote_actors import labels as actor_labels
from node.services.sessions import Session
from node.storage.tables import (
    deliveries,
    domains,
    followers,
    following,
    inbox_activities,
)
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors

FOLLOWING_SHOWN = 500
FOLLOWERS_SHOWN = 500
DOMAINS_SHOWN = 500
PEERS_SHOWN = 200
# Counts by state are over this many of the latest rows of a queue.
COUNTED_ROWS = 10_000
LATEST_SHOWN = 20
WAITING_COUNTED = 100_000
MAX_TARGET = 2048
MAX_REASON = 500
DOMAIN_ACTIONS = {
    "block": domain_service.BLOCKED,
    "allow": domain_service.ALLOWED,
    "clear": "",
}
DELIVERY_STATES = ("pending", "delivered", "failed", "dropped")
INBOX_STATES = ("pending", "done", "ignored", "failed", "dropped")
NOTICES = ("followed", "unfollowed", "approved", "refused", "blocked", "allowed", "cleared")


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    host: str
    policy: str
    last_success_at: datetime | None
    failing_since: datetime | None
    last_error: str | None
    unavailable: bool
    waiting: int
    attempts: int

    @property
    def failing(self) -> bool:
        return self.unavailable or self.failing_since is not None


def _following(conn: Connection, coop_id: int) -> list[dict[str, Any]]:
    rows = follows.list_following(conn, actor_id=coop_id, state=None, limit=FOLLOWING_SHOWN)
    return [
        {
            "followed": row.followed,
            "state": row.state,
            "created_at": row.created_at,
            "backfill": backfill.progress(conn, actor_id=coop_id, followed=row.followed),
        }
        for row in rows
    ]


def _policies(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(domains.c.host, domains.c.policy, domains.c.reason, domains.c.updated_at)
        .where(domains.c.policy != "")
        .order_by(domains.c.host)
        .limit(DOMAINS_SHOWN)
    ).all()
    return [dict(r._mapping) for r in rows]


def peer_health(conn: Connection) -> list[Peer]:
    """The peers deliveries go to, failing ones first: the domain's record (last
    success, failing since when, last error, unavailable) and the deliveries waiting.
    A peer's last success is recorded when it answers again after failures."""
    # Through the index of the waiting rows, at most WAITING_COUNTED of them.
    queued = (
        select(deliveries.c.host)
        .where(deliveries.c.state == "pending")
        .limit(WAITING_COUNTED)
        .subquery()
    )
    waiting: dict[str, int] = dict(
        conn.execute(
            select(queued.c.host, func.count())
            .group_by(queued.c.host)
            .order_by(desc(func.count()))
            .limit(PEERS_SHOWN)
        ).all()
    )
    attempts = {
        row["host"]: int(row["attempts"] or 0)
        for row in outbox.failing_hosts(conn, limit=PEERS_SHOWN)
    }
    records = conn.execute(
        select(domains)
        .where(
            or_(
                domains.c.failing_since.is_not(None),
                domains.c.unavailable == 1,
                domains.c.last_success_at.is_not(None),
                domains.c.host.in_(list(waiting)),
            )
        )
        .order_by(desc(domains.c.unavailable), domains.c.failing_since.is_(None), domains.c.host)
        .limit(PEERS_SHOWN)
    ).all()
    peers: dict[str, Peer] = {}
    for r in records:
        peers[r.host] = Peer(
            host=r.host,
            policy=r.policy,
            last_success_at=r.last_success_at,
            failing_since=r.failing_since,
            last_error=r.last_error,
            unavailable=bool(r.unavailable),
            waiting=int(waiting.get(r.host, 0)),
            attempts=attempts.get(r.host, 0),
        )
    for host, count in waiting.items():
        if host not in peers:  # not yet tried, or tried without a record
            peers[host] = Peer(host, "", None, None, None, False, int(count), attempts.get(host, 0))
    # The servers of followers and followed co-ops, whose deliveries go through.
    for table in (followers, following):
        hosts = conn.execute(select(table.c.host).distinct().limit(PEERS_SHOWN)).scalars()
        for host in hosts:
            if host not in peers and len(peers) < PEERS_SHOWN * 2:
                peers[host] = Peer(host, "", None, None, None, False, 0, 0)
    return sorted(
        peers.values(),
        key=lambda p: (not p.unavailable, not p.failing, not p.attempts, p.host),
    )


@dataclass(frozen=True, slots=True)
class FederationView:
    following: list[dict[str, Any]]
    accepted: list[follows.Follower]
    pending: list[follows.Follower]
    policies: list[dict[str, Any]]
    peers: list[Peer]
    names: dict[str, str] = field(default_factory=dict)
    """What each actor shown calls itself, with its handle: "Marché équitable
    (marche@example.org)"; the actor's address where it is not known."""

    def name(self, actor: str) -> str:
        return self.names.get(actor, actor)

    @property
    def importing(self) -> bool:
        return any(
            f["backfill"] is not None and f["backfill"]["state"] == backfill.RUNNING
            for f in self.following
        )


def read_federation(conn: Connection, coop_id: int) -> FederationView:
    shown = _following(conn, coop_id)
    accepted = follows.list_followers(
        conn, actor_id=coop_id, state=follows.ACCEPTED, limit=FOLLOWERS_SHOWN
    )
    pending = follows.list_followers(
        conn, actor_id=coop_id, state=follows.PENDING, limit=FOLLOWERS_SHOWN
    )
    actors = {f["followed"] for f in shown} | {f.follower for f in (*accepted, *pending)}
    return FederationView(
        following=shown,
        accepted=accepted,
        pending=pending,
        policies=_policies(conn),
        peers=peer_health(conn),
        names=_names(conn, actors),
    )


def _names(conn: Connection, actors: set[str]) -> dict[str, str]:
    """Names and handles from the actor documents this node keeps (what a peer says
    its name is: shown escaped, cut short)."""
    return {
        uri: f"{' '.join(label.name.split())[:80]} ({label.handle})"
        if label.name is not None
        else label.handle
        for uri, label in actor_labels(conn, actors).items()
    }


def _counts(conn: Connection, table: Any, states: tuple[str, ...]) -> dict[str, int]:
    """Rows by state among the latest :data:`COUNTED_ROWS`; the waiting ones all."""
    latest = select(table.c.state).order_by(desc(table.c.id)).limit(COUNTED_ROWS).subquery()
    counted = {
        str(state): int(n)
        for state, n in conn.execute(
            select(latest.c.state, func.count()).group_by(latest.c.state)
        ).all()
    }
    counted["pending"] = int(
        conn.execute(
            select(func.count()).select_from(table).where(table.c.state == "pending")
        ).scalar_one()
    )
    return {
        state: counted.get(state, 0) for state in (*states, *sorted(set(counted) - set(states)))
    }


def read_queues(conn: Connection) -> dict[str, Any]:
    oldest = conn.execute(
        select(
            deliveries.c.host,
            deliveries.c.inbox,
            deliveries.c.attempts,
            deliveries.c.created_at,
            deliveries.c.next_attempt_at,
            deliveries.c.last_error,
        )
        .where(deliveries.c.state == "pending")
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(LATEST_SHOWN)
    ).all()
    failures = conn.execute(
        select(
            deliveries.c.inbox,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.finished_at,
            deliveries.c.last_status,
            deliveries.c.last_error,
        )
        .where(
            or_(
                deliveries.c.state == "failed",
                and_(deliveries.c.state == "pending", deliveries.c.attempts > 0),
            )
        )
        .order_by(desc(deliveries.c.id))
        .limit(LATEST_SHOWN)
    ).all()
    refused = conn.execute(
        select(
            inbox_activities.c.actor,
            inbox_activities.c.type,
            inbox_activities.c.state,
            inbox_activities.c.attempts,
            inbox_activities.c.received_at,
            inbox_activities.c.last_error,
        )
        .where(inbox_activities.c.state.in_(("failed", "dropped")))
        .order_by(desc(inbox_activities.c.id))
        .limit(LATEST_SHOWN)
    ).all()
    return {
        "delivery_counts": _counts(conn, deliveries, DELIVERY_STATES),
        "inbox_counts": _counts(conn, inbox_activities, INBOX_STATES),
        "oldest": [dict(r._mapping) for r in oldest],
        "failures": [dict(r._mapping) for r in failures],
        "refused": [dict(r._mapping) for r in refused],
        "counted_rows": COUNTED_ROWS,
        "shown": LATEST_SHOWN,
    }


# --- pages ------------------------------------------------------------------------------


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _federation_page(
    request: Request,
    session: Session,
    *,
    error: Invalid | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    node = node_of(request)
    coop_id = node.peers.coop_id
    view = await node.db.read(lambda conn: read_federation(conn, coop_id))
    done = request.query_params.get("done") if error is None else None
    subject = request.query_params.get("subject", "")[:MAX_TARGET] if done else ""
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_federation.html",
        {
            "session": session,
            "csrf": session.csrf,
            "view": view,
            "allow_list_mode": node.settings.federation == "allowlist",
            "follow_policy": node.settings.follow_policy,
            "done": done if done in NOTICES else None,
            "subject": subject,
            "error": error,
            "form": form or {},
            # Reloads itself while an import runs, to show its progress.
            "refresh": view.importing and error is None,
        },
        status=400 if error is not None else 200,
    )
    return _no_store(response)


def _done(notice: str, subject: str) -> Response:
    query = urlencode({"done": notice, "subject": subject})
    return RedirectResponse(f"/admin/federation?{query}", status_code=303)


def _fields(form: Any) -> dict[str, str]:
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf"}


@html_errors
async def federation_page(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    return await _federation_page(request, session)


@html_errors
async def follow(request: Request) -> Response:
    """Follow a co-op by handle or URL: a Follow is sent, the follow waits for the answer."""
    session = await sessions.require(request, "admin")
    sent = _fields(await sessions.read_form(request, session))
    target = sent.get("target", "")
    node = node_of(request)

    def refuse(reason: str) -> Awaitable[Response]:
        error = Invalid(reason, field="target")
        return _federation_page(request, session, error=error, form={"target": target})

    if not target:
        return await refuse("give the co-op's handle (coop@example.org) or its address")
    if len(target) > MAX_TARGET:
        return await refuse("this address is too long")
    try:
        result = await federating.follow(node, target.removeprefix("@"))
    except (NodeError, FederationError) as exc:
        return await refuse(exc.reason)
    except (WebFingerError, ValueError, httpx.HTTPError) as exc:
        return await refuse(str(exc) or type(exc).__name__)
    if not result.sent:
        return await refuse(f"this co-op already follows {result.followed} (or asked to)")
    return _done("followed", result.followed)


@html_errors
async def unfollow(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    sent = _fields(await sessions.read_form(request, session))
    followed = sent.get("followed", "")
    if not followed.startswith(("https://", "http://")) or len(followed) > MAX_TARGET:
        error = Invalid("choose a co-op from the list", field="followed")
        return await _federation_page(request, session, error=error)
    try:
        await federating.unfollow(node_of(request), followed)
    except NodeError as exc:
        return await _federation_page(request, session, error=Invalid(exc.reason, field="followed"))
    return _done("unfollowed", followed)


@html_errors
async def answer_follower(request: Request) -> Response:
    """Approve a pending follower (Accept), or refuse or remove one (Reject)."""
    session = await sessions.require(request, "admin")
    sent = _fields(await sessions.read_form(request, session))
    follower = sent.get("follower", "")
    decision = sent.get("decision", "")
    if decision not in ("approve", "refuse") or not follower or len(follower) > MAX_TARGET:
        error = Invalid("choose a follower and approve or refuse it", field="follower")
        return await _federation_page(request, session, error=error)
    try:
        await federating.answer_follower(node_of(request), follower, accept=decision == "approve")
    except NodeError as exc:
        return await _federation_page(request, session, error=Invalid(exc.reason, field="follower"))
    return _done("approved" if decision == "approve" else "refused", follower)


@html_errors
async def decide_domain(request: Request) -> Response:
    """Block, allow or clear a domain; a block also cuts the domain off at once."""
    session = await sessions.require(request, "admin")
    sent = _fields(await sessions.read_form(request, session))
    action = sent.get("action", "")
    reason = sent.get("reason", "")
    node = node_of(request)

    def refuse(message: str, field: str = "host") -> Awaitable[Response]:
        error = Invalid(message, field=field)
        return _federation_page(request, session, error=error, form=sent)

    if action not in DOMAIN_ACTIONS:
        return await refuse("choose to block, allow or clear the domain", "action")
    if len(reason) > MAX_REASON:
        return await refuse(f"a reason is at most {MAX_REASON} characters", "reason")
    try:
        host = domain_service.normalise(sent.get("host", ""))
    except ValueError:
        return await refuse("give a domain, such as example.org")
    if len(host) > 255 or "@" in host or not all(c.isalnum() or c in ".-:[]" for c in host):
        return await refuse(f"{host} is not a domain")
    if action == "block" and host == host_of(node.settings.base_url).lower():
        return await refuse("this node cannot block its own domain")
    await _set_policy(node, host, DOMAIN_ACTIONS[action], "" if action == "clear" else reason)
    notice = {"block": "blocked", "allow": "allowed", "clear": "cleared"}[action]
    return _done(notice, host)


async def _set_policy(node: Node, host: str, policy: str, reason: str) -> None:
    """The decision stored, then this process's policy reloaded at once (a separate
    worker process reloads its own within a few seconds)."""
    from node.delivery.worker import refresh_domains

    now = node.clock.now()
    await node.db.write(
        lambda conn: domain_service.set_policy(conn, host, policy, reason=reason, now=now)
    )
    await refresh_domains(node)
    node.delivery_wakeup.set()


@html_errors
async def queues_page(request: Request) -> Response:
    await sessions.require(request, "admin")
    node = node_of(request)
    found = await node.db.read(read_queues)
    response = render.page(request, i18n.choose_language(request), "admin_queues.html", found)
    return _no_store(response)


routes: list[BaseRoute] = [
    Route("/admin/federation", federation_page, methods=["GET"]),
    Route("/admin/federation/follow", follow, methods=["POST"]),
    Route("/admin/federation/unfollow", unfollow, methods=["POST"]),
    Route("/admin/federation/followers", answer_follower, methods=["POST"]),
    Route("/admin/federation/domains", decide_domain, methods=["POST"]),
    Route("/admin/queues", queues_page, methods=["GET"]),
]
