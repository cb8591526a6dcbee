"""What the node counts for a monitoring system, in Prometheus' text format.

The counters and histograms belong to the process (one registry per process, as
Prometheus clients keep them): ``coopnode serve`` counts what it receives and, when it
runs the workers, what they do; a ``coopnode worker`` process counts its own rounds and
shows them on its own port (``coopnode worker --metrics-port``). Prometheus adds the
processes up. The queue depths and failing hosts are read from the database when
scraped, so every process shows the same, shared figures.

Every label takes a bounded set of values: an exception's class name, a feature's kind,
a route's template (never the raw path, which a client chooses).

An increment is a lock and an addition; the inbox, which takes thousands of activities
a second, does one or two per activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node.storage.tables import deliveries, domains, inbox_activities

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

INBOX_RECEIVED = Counter(
    "coopnode_inbox_received", "Activities POSTed to an inbox of this node.", registry=REGISTRY
)
INBOX_REFUSED = Counter(
    "coopnode_inbox_refused",
    "Inbox POSTs answered with an error, by the error's name (NotAuthorized, Refused...).",
    ["reason"],
    registry=REGISTRY,
)
INBOX_ACCEPTED = Counter(
    "coopnode_inbox_accepted",
    "Inbox POSTs answered 202, by what became of the activity: pending (for the worker), "
    "ignored (no feature wants it), dropped (not worth storing).",
    ["state"],
    registry=REGISTRY,
)
INBOX_HANDLED = Counter(
    "coopnode_inbox_handled",
    "Activities the inbox worker took, by kind and outcome: done, ignored, dropped, "
    "refused (for good), failed (a handler raised: retried later).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "coopnode_deliveries",
    "Delivery attempts, by outcome: delivered, retry, give_up, dropped (the domain is "
    "blocked), not_sent (the round ran out of time).",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "coopnode_delivery_seconds",
    "Time to sign and POST one delivery and read the answer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
VOTES_CAST = Counter(
    "coopnode_votes_cast",
    "Ballots counted on this node's proposals, by origin: local (a member here, through "
    "the API or the pages) or remote (from a member of another co-op).",
    ["origin"],
    registry=REGISTRY,
)
VOTES_SENT = Counter(
    "coopnode_votes_sent",
    "Ballots this node's members cast on proposals another co-op hosts, signed and queued "
    "for the host (which decides whether each counts).",
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "coopnode_request_seconds",
    "Time to answer an HTTP request, by route template (unmatched: no route).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)


@dataclass(frozen=True, slots=True)
class Depths:
    """The shared figures read at scrape time."""

    inbox_pending: int
    deliveries_due: int
    deliveries_pending: int
    failing_hosts: int
    unavailable_hosts: int


def read_depths(conn: Connection, *, now: datetime) -> Depths:
    """The queues' depths and the failing hosts: counts over the partial indexes of the
    rows still to be taken (``state = 'pending'``), and over the domains table (one row
    per peer server), so that a scrape stays cheap however long the queues' history."""

    def count(table: Any, *conditions: Any) -> int:
        query = select(func.count()).select_from(table).where(table.c.state == "pending")
        return int(conn.execute(query.where(*conditions)).scalar_one())

    failing_hosts, unavailable = conn.execute(
        select(func.count(), func.coalesce(func.sum(domains.c.unavailable), 0)).where(
            domains.c.failing_since.is_not(None)
        )
    ).one()
    return Depths(
        inbox_pending=count(inbox_activities),
        deliveries_due=count(deliveries, deliveries.c.next_attempt_at <= now),
        deliveries_pending=count(deliveries),
        failing_hosts=int(failing_hosts),
        unavailable_hosts=int(unavailable),
    )


class _DepthsCollector(Collector):
    def __init__(self, depths: Depths) -> None:
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        d = self.depths
        for name, text, value in (
            (
                "coopnode_inbox_pending",
                "Received activities waiting for the worker.",
                d.inbox_pending,
            ),
            ("coopnode_deliveries_due", "Deliveries due now, not sent yet.", d.deliveries_due),
            (
                "coopnode_deliveries_pending",
                "Deliveries not finished, due now or later (retries).",
                d.deliveries_pending,
            ),
            (
                "coopnode_failing_hosts",
                "Peer servers whose deliveries are failing.",
                d.failing_hosts,
            ),
            (
                "coopnode_unavailable_hosts",
                "Failing peer servers marked unavailable (probed every few hours).",
                d.unavailable_hosts,
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)


def exposition(depths: Depths | None) -> bytes:
    """The process's metrics, then the shared ones when given, in the text format."""
    text = generate_latest(REGISTRY)
    if depths is None:
        return text
    shared = CollectorRegistry()
    shared.register(_DepthsCollector(depths))
    return text + generate_latest(shared)
