"""The co-op's federation as its admin sees it: whom it follows (with the import of
their offers), who follows it, the domains the admin blocked or allowed, and how
deliveries to each peer fare.

The reads are bounded: each list has a limit, and the deliveries waiting are counted
through the index of the rows the workers still have to take, at most
:data:`WAITING_COUNTED` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from node.follows import store as follows
from node.offers import backfill_store
from node.services import domains, outbox
from node.services.remote_actors import labels as actor_labels

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

FOLLOWING_SHOWN = 500
FOLLOWERS_SHOWN = 500
DOMAINS_SHOWN = 500
PEERS_SHOWN = 200
WAITING_COUNTED = 100_000


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


def peer_health(conn: Connection) -> list[Peer]:
    """The peers deliveries go to, failing ones first: the domain's record (last
    success, failing since when, last error, unavailable) and the deliveries waiting.
    A peer's last success is recorded when it answers again after failures."""
    waiting = outbox.waiting_by_host(conn, counted=WAITING_COUNTED, limit=PEERS_SHOWN)
    attempts = {
        row["host"]: int(row["attempts"] or 0)
        for row in outbox.failing_hosts(conn, limit=PEERS_SHOWN)
    }
    peers: dict[str, Peer] = {}
    for r in domains.delivery_records(conn, hosts=waiting, limit=PEERS_SHOWN):
        peers[r.host] = Peer(
            host=r.host,
            policy=r.policy,
            last_success_at=r.last_success_at,
            failing_since=r.failing_since,
            last_error=r.last_error,
            unavailable=r.unavailable,
            waiting=waiting.get(r.host, 0),
            attempts=attempts.get(r.host, 0),
        )
    for host, count in waiting.items():
        if host not in peers:  # not yet tried, or tried without a record
            peers[host] = Peer(host, "", None, None, None, False, count, attempts.get(host, 0))
    # The servers of followers and followed co-ops, whose deliveries go through.
    for side in ("followers", "following"):
        for host in follows.hosts(conn, side, limit=PEERS_SHOWN):
            if host not in peers and len(peers) < PEERS_SHOWN * 2:
                peers[host] = Peer(host, "", None, None, None, False, 0, 0)
    return sorted(
        peers.values(),
        key=lambda p: (not p.unavailable, not p.failing, not p.attempts, p.host),
    )


@dataclass(frozen=True, slots=True)
class FollowedCoop:
    """A co-op this node follows, with the import of its offers (``None``: none began;
    else the walk's row: its ``state``, ``pages``, ``imported``, ``total``,
    ``last_error``)."""

    followed: str
    state: str
    created_at: datetime
    backfill: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class FederationView:
    following: list[FollowedCoop]
    accepted: list[follows.Follower]
    pending: list[follows.Follower]
    policies: list[domains.Decision]
    peers: list[Peer]
    names: dict[str, str] = field(default_factory=dict)
    """What each actor shown calls itself, with its handle: "Marché équitable
    (marche@example.org)"; the actor's address where it is not known."""

    def name(self, actor: str) -> str:
        return self.names.get(actor, actor)

    @property
    def importing(self) -> bool:
        return any(
            f.backfill is not None and f.backfill["state"] == backfill_store.RUNNING
            for f in self.following
        )


def _following(conn: Connection, coop_id: int) -> list[FollowedCoop]:
    rows = follows.list_following(conn, actor_id=coop_id, state=None, limit=FOLLOWING_SHOWN)
    return [
        FollowedCoop(
            followed=row.followed,
            state=row.state,
            created_at=row.created_at,
            backfill=backfill_store.progress(conn, actor_id=coop_id, followed=row.followed),
        )
        for row in rows
    ]


def _names(conn: Connection, actors: set[str]) -> dict[str, str]:
    """Names and handles from the actor documents this node keeps (what a peer says
    its name is: shown escaped, cut short)."""
    return {
        uri: f"{' '.join(label.name.split())[:80]} ({label.handle})"
        if label.name is not None
        else label.handle
        for uri, label in actor_labels(conn, actors).items()
    }


def read_federation(conn: Connection, coop_id: int) -> FederationView:
    """The admin's federation page for the co-op (the actor ``coop_id``), in one unit
    of work."""
    shown = _following(conn, coop_id)
    accepted = follows.list_followers(
        conn, actor_id=coop_id, state=follows.ACCEPTED, limit=FOLLOWERS_SHOWN
    )
    pending = follows.list_followers(
        conn, actor_id=coop_id, state=follows.PENDING, limit=FOLLOWERS_SHOWN
    )
    actors = {f.followed for f in shown} | {f.follower for f in (*accepted, *pending)}
    return FederationView(
        following=shown,
        accepted=accepted,
        pending=pending,
        policies=domains.list_decisions(conn, limit=DOMAINS_SHOWN),
        peers=peer_health(conn),
        names=_names(conn, actors),
    )
