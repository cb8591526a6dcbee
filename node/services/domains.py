"""Other servers: the admin's decisions about them, and how our deliveries to them fare.

A decision covers a domain and its subdomains, as on Mastodon: blocking
``spam.example`` blocks ``relay.spam.example`` too. In allow-list mode (a closed network
of co-ops) only allowed domains may talk to the node at all.

Every inbox request asks whether its sender is refused, so the decisions are read into
a :class:`DomainPolicy` snapshot held in memory and reloaded every few seconds (the
command line, in another process, changes them in the database).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, desc, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.inbox import host_of
from federation.origins import ascii_host
from node.storage.tables import (
    deliveries,
    domains,
    followers,
    following,
    inbox_activities,
    offers,
    remote_actors,
)

BLOCKED = "blocked"
ALLOWED = "allowed"

# A domain whose deliveries have all failed for this long is marked unavailable: its
# deliveries are then tried only every UNAVAILABLE_PROBE until one succeeds or the
# domain sends us a signed request.
UNAVAILABLE_AFTER = timedelta(days=1)
UNAVAILABLE_PROBE = timedelta(hours=6)
# Hosts a policy remembers its answer for, at most (cleared when full).
MAX_ANSWERS = 4096


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    blocked: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    allow_list_mode: bool = False
    # Domains marked unavailable by delivery: a signed request from one clears it.
    unavailable: frozenset[str] = frozenset()
    # Each host's answer, as this policy gave it: a request asks for its host's several
    # times (its key's, its actor's, its objects'), and a policy is replaced, not
    # changed, when the admin decides.
    answers: dict[str, str | None] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def allows(self, host: str) -> bool:
        """Whether the admin listed ``host`` (or a domain above it) as allowed."""
        return any(d in self.allowed for d in _suffixes(host.lower().rstrip(".")))

    def refusal(self, host: str) -> str | None:
        """Why ``host`` may not talk to us (nor we to it), or None if it may."""
        try:
            return self.answers[host]
        except KeyError:
            pass
        found = self._refusal(host)
        if len(self.answers) >= MAX_ANSWERS:
            self.answers.clear()
        self.answers[host] = found
        return found

    def _refusal(self, host: str) -> str | None:
        if not self.blocked and not self.allow_list_mode:
            return None
        host = host.lower().rstrip(".")
        for domain in _suffixes(host):
            if domain in self.blocked:
                return f"{host} is blocked by this node" + (
                    f" (as part of {domain})" if domain != host else ""
                )
        if self.allow_list_mode and not self.allows(host):
            return f"this node federates only with the domains its admin lists; {host} is not one"
        return None


def _suffixes(host: str) -> list[str]:
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def normalise(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{host!r} is not a domain")
    return ascii_host(host)


def load_policy(conn: Connection, *, allow_list_mode: bool) -> DomainPolicy:
    rows = conn.execute(
        select(domains.c.host, domains.c.policy, domains.c.unavailable).where(
            or_(domains.c.policy != "", domains.c.unavailable == 1)
        )
    ).all()
    return DomainPolicy(
        blocked=frozenset(r.host for r in rows if r.policy == BLOCKED),
        allowed=frozenset(r.host for r in rows if r.policy == ALLOWED),
        allow_list_mode=allow_list_mode,
        unavailable=frozenset(r.host for r in rows if r.unavailable),
    )


def set_policy(
    conn: Connection, host: str, policy: str, *, reason: str, now: datetime
) -> dict[str, int]:
    """Block, allow, or (policy "") clear the decision for ``host``. Blocking also severs
    the domain (see :func:`sever`), whose counts are returned."""
    if policy not in (BLOCKED, ALLOWED, ""):
        raise ValueError(f"unknown domain policy {policy!r}")
    _upsert(conn, normalise(host), now, {"policy": policy, "reason": reason})
    return sever(conn, host, now=now) if policy == BLOCKED else {}


def sever(conn: Connection, host: str, *, now: datetime) -> dict[str, int]:
    """Cut a newly blocked domain (and its subdomains) off: its followers and the follows
    of it are removed, its queued activities and our deliveries to it dropped, its cached
    actors and its offers forgotten. Nothing is sent to it: it may no longer hear from us at all.
    Returns how many of each were affected, for the admin."""
    blocked = DomainPolicy(blocked=frozenset({normalise(host)}))

    def matching(table: Table, *where: Any, host_column: str = "host") -> list[int]:
        rows = conn.execute(select(table.c.id, table.c[host_column]).where(*where)).all()
        return [r[0] for r in rows if blocked.refusal(host_of(r[1]) or r[1]) is not None]

    def chunks(ids: list[int]) -> list[list[int]]:
        return [ids[i : i + 500] for i in range(0, len(ids), 500)]

    counts: dict[str, int] = {}
    for name, table in (
        ("followers", followers),
        ("following", following),
        ("actors", remote_actors),
    ):
        ids = matching(table)
        for chunk in chunks(ids):
            conn.execute(delete(table).where(table.c.id.in_(chunk)))
        counts[name] = len(ids)
    pending = matching(deliveries, deliveries.c.state == "pending")
    for chunk in chunks(pending):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(chunk))
            .values(state="dropped", finished_at=now, claimed_until=None, last_error="blocked")
        )
    counts["deliveries"] = len(pending)
    queued = matching(inbox_activities, inbox_activities.c.state == "pending", host_column="actor")
    for chunk in chunks(queued):
        conn.execute(
            update(inbox_activities)
            .where(inbox_activities.c.id.in_(chunk))
            .values(
                state="dropped",
                processed_at=now,
                claimed_until=None,
                last_error="the sender's domain was blocked",
            )
        )
    counts["activities"] = len(queued)
    stale_offers = matching(offers, offers.c.local == 0)
    for chunk in chunks(stale_offers):
        conn.execute(delete(offers).where(offers.c.id.in_(chunk)))
    counts["offers"] = len(stale_offers)
    return counts


def list_domains(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(domains).order_by(domains.c.host)).all()
    return [dict(r._mapping) for r in rows]


def record_success(conn: Connection, host: str, *, now: datetime) -> None:
    """A delivery went through, or the domain sent us a signed request: it is back."""
    record_successes(conn, [host], now=now)


def record_successes(conn: Connection, hosts: Iterable[str], *, now: datetime) -> None:
    """:func:`record_success` for each of ``hosts``, in one statement per thousand."""
    wanted = sorted(set(hosts))
    for start in range(0, len(wanted), 1_000):
        conn.execute(
            update(domains)
            .where(domains.c.host.in_(wanted[start : start + 1_000]))
            .values(failing_since=None, unavailable=0, last_error=None, last_success_at=now)
        )


def record_failure(conn: Connection, host: str, error: str, *, now: datetime) -> bool:
    """A delivery to ``host`` failed; True if the domain is (now) unavailable."""
    row = conn.execute(
        select(domains.c.failing_since, domains.c.unavailable).where(domains.c.host == host)
    ).first()
    failing_since = now if row is None or row.failing_since is None else row.failing_since
    unavailable = now - failing_since >= UNAVAILABLE_AFTER
    _upsert(
        conn,
        host,
        now,
        {"failing_since": failing_since, "unavailable": int(unavailable), "last_error": error},
    )
    return unavailable


def unavailable_hosts(conn: Connection) -> set[str]:
    return set(conn.execute(select(domains.c.host).where(domains.c.unavailable == 1)).scalars())


def _upsert(conn: Connection, host: str, now: datetime, values: dict[str, Any]) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    row = {"host": host, "policy": "", "reason": "", "unavailable": 0, "updated_at": now}
    row.update(values)
    statement = insert(domains).values(row)
    conn.execute(
        statement.on_conflict_do_update(index_elements=["host"], set_={**values, "updated_at": now})
    )


# --- what the admin's federation page shows ------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The admin's decision about a domain: ``policy`` is "blocked" or "allowed"."""

    host: str
    policy: str
    reason: str
    updated_at: datetime


def list_decisions(conn: Connection, *, limit: int) -> list[Decision]:
    """The domains the admin blocked or allowed, by name."""
    rows = conn.execute(
        select(domains.c.host, domains.c.policy, domains.c.reason, domains.c.updated_at)
        .where(domains.c.policy != "")
        .order_by(domains.c.host)
        .limit(limit)
    )
    return [
        Decision(host=r.host, policy=r.policy, reason=r.reason, updated_at=r.updated_at)
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """How deliveries to a domain fare, as its record says."""

    host: str
    policy: str
    last_success_at: datetime | None
    failing_since: datetime | None
    last_error: str | None
    unavailable: bool


def delivery_records(conn: Connection, *, hosts: Iterable[str], limit: int) -> list[DeliveryRecord]:
    """The records of the domains that failed, are unavailable or answered again after
    failures, and of ``hosts`` (those with deliveries waiting): the unavailable first,
    then the failing, by name."""
    rows = conn.execute(
        select(domains)
        .where(
            or_(
                domains.c.failing_since.is_not(None),
                domains.c.unavailable == 1,
                domains.c.last_success_at.is_not(None),
                domains.c.host.in_(list(hosts)),
            )
        )
        .order_by(desc(domains.c.unavailable), domains.c.failing_since.is_(None), domains.c.host)
        .limit(limit)
    )
    return [
        DeliveryRecord(
            host=r.host,
            policy=r.policy,
            last_success_at=r.last_success_at,
            failing_since=r.failing_since,
            last_error=r.last_error,
            unavailable=bool(r.unavailable),
        )
        for r in rows
    ]
