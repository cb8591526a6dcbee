"""The doctor's verdicts: each check's findings in plain words, and the rules that turn
what was measured into them. Pure: nothing here reads the disk, the database or the
network, so that each threshold is tested on its own."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median


class Level(enum.Enum):
    OK = "ok"
    WARNING = "warning"  # worth a look; the node works
    PROBLEM = "problem"  # something peers or members will notice: fix it
    SKIPPED = "skipped"  # could not be checked here, and why


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: Level
    summary: str
    # What to do about it, for a warning or a problem.
    advice: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.PROBLEM]

    @property
    def exit_status(self) -> int:
        """0 when nothing is a problem (warnings allowed), 1 otherwise."""
        return 1 if self.problems else 0


def ok(check: str, summary: str) -> Finding:
    return Finding(check, Level.OK, summary)


def warning(check: str, summary: str, advice: str) -> Finding:
    return Finding(check, Level.WARNING, summary, advice)


def problem(check: str, summary: str, advice: str) -> Finding:
    return Finding(check, Level.PROBLEM, summary, advice)


def skipped(check: str, why: str) -> Finding:
    return Finding(check, Level.SKIPPED, why)


def ago(delta: timedelta) -> str:
    """A duration as people say it: "40 s", "12 min", "3 h", "2 days"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


# --- clock ---------------------------------------------------------------------------

# Beyond this the node's signatures start to be refused: Mastodon's code takes a
# Date-only signature up to 5 minutes from its own clock (docs.joinmastodon.org/spec/
# security documents an hour, its code is stricter).
CLOCK_PROBLEM = timedelta(minutes=5)
CLOCK_WARNING = timedelta(seconds=30)


def clock_verdict(skews: Sequence[tuple[str, float]], unanswered: Sequence[str]) -> Finding:
    """``skews``: each peer's clock minus ours, in seconds; the median is the verdict
    (one peer's wrong clock is its own problem)."""
    if not skews:
        if unanswered:
            return skipped(
                "clock",
                f"no peer gave its time ({', '.join(unanswered)} did not answer with a Date)",
            )
        return skipped("clock", "no peer answered in the last week to compare clocks with")
    off = median(s for _, s in skews)
    names = ", ".join(f"{host} {s:+.0f} s" for host, s in skews)
    said = f"{abs(off):.0f} s {'behind' if off > 0 else 'ahead of'} the peers ({names})"
    advice = (
        "set the time right and keep it so (systemd-timesyncd, chrony or ntpd): peers "
        "refuse signatures whose Date is minutes away from their clock"
    )
    if abs(off) > CLOCK_PROBLEM.total_seconds():
        return problem("clock", f"this machine's clock is {said}", advice)
    if abs(off) > CLOCK_WARNING.total_seconds():
        return warning("clock", f"this machine's clock is {said}", advice)
    return ok("clock", f"within {max(1, round(abs(off)))} s of the peers' ({names})")


# --- disk ----------------------------------------------------------------------------

DISK_PROBLEM_BYTES = 1 << 30
DISK_WARNING_BYTES = 5 << 30


def disk_verdict(where: str, free: int, total: int) -> Finding:
    said = f"{size(free)} free of {size(total)} on the disk of {where}"
    advice = (
        "free some space or grow the disk: the database, the photos and the nightly "
        "backups all grow there, and SQLite stops writing when it is full"
    )
    if free < DISK_PROBLEM_BYTES or free < total * 0.02:
        return problem("disk", said, advice)
    if free < DISK_WARNING_BYTES or free < total * 0.10:
        return warning("disk", said, advice)
    return ok("disk", said)


# --- workers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beat:
    poller: str
    hostname: str
    pid: int
    beat_at: datetime


def stale_after(idle_seconds: float, beat_every: timedelta) -> timedelta:
    """How long a loop may go without a heartbeat before it counts as stopped: a round
    writes one at most every ``beat_every``, and an idle loop runs a round every
    ``idle_seconds``."""
    return 3 * beat_every + timedelta(seconds=2 * idle_seconds)


def workers_verdict(
    loops: dict[str, timedelta], beats: Iterable[Beat], *, now: datetime
) -> Finding:
    """``loops``: each loop the node runs and how stale it may get; ``beats``: the
    heartbeats in the database, latest first."""
    latest: dict[str, Beat] = {}
    for beat in beats:
        latest.setdefault(beat.poller, beat)
    never = [name for name in loops if name not in latest]
    stopped = [
        latest[name]
        for name in loops
        if name in latest and now - latest[name].beat_at > loops[name]
    ]
    advice = (
        "start the node (`coopnode serve`, which runs them, or `coopnode worker` "
        "processes with PostgreSQL) and read its log for why they stopped"
    )
    if never and len(never) == len(loops):
        return problem(
            "workers",
            "no background loop has ever run on this database: nothing delivers, "
            "nothing reads the inbox",
            advice,
        )
    if never or stopped:
        parts = [f"{name} never ran" for name in never] + [
            f"{b.poller} last ran {ago(now - b.beat_at)} ago (process {b.pid} on {b.hostname})"
            for b in stopped
        ]
        return problem("workers", "; ".join(parts), advice)
    where = sorted({f"{b.pid} on {b.hostname}" for b in latest.values() if b.poller in loops})
    oldest = max(now - latest[n].beat_at for n in loops)
    return ok(
        "workers",
        f"all {len(loops)} loops ran in the last {ago(oldest)} "
        f"(process{'es' if len(where) > 1 else ''} {', '.join(where)})",
    )


# --- queues and peers ----------------------------------------------------------------

INBOX_LATE = timedelta(minutes=5)
DELIVERY_LATE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Backlog:
    inbox_waiting: int
    oldest_inbox: datetime | None
    deliveries_waiting: int
    # The earliest due time of a delivery still waiting (retries wait on purpose).
    oldest_due: datetime | None


def queues_verdict(backlog: Backlog, *, now: datetime) -> Finding:
    said = (
        f"{backlog.inbox_waiting} received activities and "
        f"{backlog.deliveries_waiting} deliveries waiting"
    )
    late = []
    if backlog.oldest_inbox is not None and now - backlog.oldest_inbox > INBOX_LATE:
        late.append(f"the oldest received activity has waited {ago(now - backlog.oldest_inbox)}")
    if backlog.oldest_due is not None and now - backlog.oldest_due > DELIVERY_LATE:
        late.append(f"a delivery has been due for {ago(now - backlog.oldest_due)}")
    if late:
        return problem(
            "queues",
            f"{said}; {'; '.join(late)}",
            "the workers are stopped or cannot keep up: see the workers line above, the "
            "node's log, and /admin/queues",
        )
    return ok("queues", said)


@dataclass(frozen=True, slots=True)
class FailingPeer:
    host: str
    failing_since: datetime
    unavailable: bool
    last_error: str | None


PEER_FAILING_LONG = timedelta(days=1)
PEERS_NAMED = 5


def peers_verdict(failing: Sequence[FailingPeer], *, now: datetime) -> Finding:
    long = [p for p in failing if now - p.failing_since >= PEER_FAILING_LONG]
    if not long:
        if failing:
            return ok(
                "peers",
                f"{len(failing)} peer(s) failed lately, for less than a day "
                f"({', '.join(p.host for p in failing[:PEERS_NAMED])})",
            )
        return ok("peers", "no peer is failing")
    named = "; ".join(
        f"{p.host} since {ago(now - p.failing_since)} ago"
        + (" (marked unavailable)" if p.unavailable else "")
        + (f": {p.last_error[:120]}" if p.last_error else "")
        for p in long[:PEERS_NAMED]
    )
    more = f" and {len(long) - PEERS_NAMED} more" if len(long) > PEERS_NAMED else ""
    return warning(
        "peers",
        f"{len(long)} peer(s) have failed for more than a day: {named}{more}",
        "their servers may be gone or down; deliveries to them are kept and retried. "
        "`coopnode domains` lists them; `coopnode deliveries` shows what waits",
    )


@dataclass(frozen=True, slots=True)
class MailHealth:
    waiting: int
    # When the oldest message still waiting was queued, and why its last try failed.
    oldest_waiting: datetime | None
    last_error: str | None
    sent_last_day: int
    failed_last_day: int


MAIL_LATE = timedelta(hours=1)


def mail_verdict(mail_on: bool, health: MailHealth, *, now: datetime) -> Finding:
    if not mail_on:
        said = "email is off (no smtp_host): members get no notifications"
        if not health.waiting:
            return ok("email", said)
        # Someone gave an address: its confirmation, at least, waits for a server.
        return warning(
            "email",
            f"{said}, and {health.waiting} message(s) wait for a mail server",
            "set smtp_host (with smtp_port, smtp_security, smtp_username, smtp_password) "
            "in coopnode.toml or COOPNODE_SMTP_* variables, then run "
            "`coopnode mail test ADDRESS`",
        )
    said = f"{health.sent_last_day} sent in the last day, {health.waiting} waiting"
    error = f" (last error: {health.last_error[:160]})" if health.last_error else ""
    if health.oldest_waiting is not None and now - health.oldest_waiting > MAIL_LATE:
        return problem(
            "email",
            f"{said}; the oldest has waited {ago(now - health.oldest_waiting)}{error}",
            "the SMTP server refuses or cannot be reached: `coopnode mail test ADDRESS` "
            "says why; `coopnode mail status` lists what waits",
        )
    if health.failed_last_day:
        return warning(
            "email",
            f"{said}; {health.failed_last_day} refused for good in the last day{error}",
            "addresses the server refused (a mailbox that does not exist, say): "
            "`coopnode mail status` lists them",
        )
    return ok("email", said)
