"""A closed proposal's recount, in the page: what ``coopnode audit URL`` prints, run by
this node for anyone who asks.

The node audits the proposal from the outside, as any auditor would: it fetches the
published proposal, ballots (or subtotals) and electorate over HTTP with its guarded
client, verifies each proof with its author's key, and recounts. A closed proposal's
published record does not change, so one recount per proposal is kept for a while. One
recount runs at a time, within a time limit; asked for another proposal meanwhile, the
page answers 503 with ``Retry-After`` rather than queue, so that a crowd of visitors
cannot make the node fetch large votes' ballots over and over. (Checking the proofs is
CPU work on the event loop: a vote of tens of thousands of ballots holds the node for
seconds, once per hour at most.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from node.errors import NodeError, NotFound, problem
from node.governance import reading
from node.governance.audit.fields import AuditError
from node.governance.audit.render import render
from node.governance.audit.report import AuditReport
from node.governance.audit.run import audit
from node.governance.store.rows import State
from node.web.responses import node_of
from node.web.ui import i18n, sessions
from node.web.ui import render as pages
from node.web.ui.shared_pages import remote_view

KEEP_SECONDS = 3600.0  # a recount that verified or not: the record is closed
KEEP_ERROR_SECONDS = 60.0  # a host that could not be read may answer in a minute
KEPT = 32
AUDIT_SECONDS = 300.0  # the longest one audit may take, fetching included
WAIT_SECONDS = 20.0  # how long a page waits for a recount before saying it is on its way

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recount:
    report: AuditReport | None
    error: str | None
    text: str
    at: float

    @property
    def expired(self) -> bool:
        keep = KEEP_SECONDS if self.error is None else KEEP_ERROR_SECONDS
        return time.monotonic() - self.at > keep


class Busy(NodeError):
    """Another proposal's recount is running: one at a time, and nobody queues (the
    page answers 503 with ``Retry-After``)."""

    status = 503
    code = "busy"


class _Audits:
    """Recounts kept per proposal URL (the most recently used kept longest), and the
    one recount running: asked again while it runs, a page waits for the same one."""

    def __init__(self) -> None:
        self.kept: OrderedDict[str, Recount] = OrderedDict()
        self.running: dict[str, asyncio.Task[Recount]] = {}

    def fresh(self, url: str) -> Recount | None:
        found = self.kept.get(url)
        if found is None or found.expired:
            return None
        self.kept.move_to_end(url)
        return found

    def keep(self, url: str, recount: Recount) -> None:
        self.kept[url] = recount
        self.kept.move_to_end(url)
        while len(self.kept) > KEPT:
            self.kept.popitem(last=False)

    def task(
        self, url: str, make: Callable[[], Coroutine[Any, Any, Recount]]
    ) -> asyncio.Task[Recount]:
        found = self.running.get(url)
        if found is not None:
            return found
        if self.running:
            raise Busy("another proposal's recount is running: try again shortly")
        task = asyncio.create_task(make(), name=f"audit {url}")
        self.running[url] = task

        def done(finished: asyncio.Task[Recount]) -> None:
            self.running.pop(url, None)
            if not finished.cancelled() and finished.exception() is None:
                self.keep(url, finished.result())

        task.add_done_callback(done)
        return task


def _audits(request: Request) -> _Audits:
    state = request.app.state
    if not hasattr(state, "audits"):
        state.audits = _Audits()
    audits: _Audits = state.audits
    return audits


async def _make(request: Request, url: str) -> Recount:
    node = node_of(request)
    try:
        async with asyncio.timeout(AUDIT_SECONDS):
            report = await audit(url, http=node.http, allow_http=node.settings.local)
    except AuditError as exc:
        return Recount(None, problem(exc).message, "", time.monotonic())
    except TimeoutError:
        return Recount(None, f"it took longer than {AUDIT_SECONDS:.0f} s", "", time.monotonic())
    except Exception:  # a fault of ours: logged, said, tried again in a minute
        log.exception("recount of %s", url)
        return Recount(None, "the recount failed on this node", "", time.monotonic())
    return Recount(report, None, render(report), time.monotonic())


async def recount(request: Request, url: str) -> Recount | None:
    """The recount of ``url``: kept, or made now; None while it is still being made
    after a page's wait. Raises :class:`Busy` when another recount is running."""
    audits = _audits(request)
    found = audits.fresh(url)
    if found is not None:
        return found
    task = audits.task(url, lambda: _make(request, url))
    try:
        return await asyncio.wait_for(asyncio.shield(task), WAIT_SECONDS)
    except TimeoutError:
        return None


def _rows(report: AuditReport) -> list[dict[str, Any]]:
    return [
        {
            "name": option.name,
            "published": report.published.counts.get(option.name),
            "recounted": report.recount.counts.get(option.name, 0),
        }
        for option in report.proposal.options
    ]


async def _page(request: Request, url: str | None, title: str | None, back: str) -> Response:
    choice = i18n.choose_language(request)
    if url is None or title is None:
        return pages.page(request, choice, "not_found.html", {}, status=404)
    try:
        found = await recount(request, url)
    except Busy:
        found = None
        busy = True
    else:
        busy = False
    if found is None:
        # Another recount is running, or this one is still on its way: come back soon.
        response = pages.page(
            request,
            choice,
            "audit.html",
            {"title": title, "url": url, "back": back, "pending": True, "busy": busy},
            status=Busy.status if busy else 202,
        )
        response.headers["Retry-After"] = "10"
        response.headers["Cache-Control"] = "no-store"
        return response
    report = found.report
    response = pages.page(
        request,
        choice,
        "audit.html",
        {
            "title": title,
            "url": url,
            "back": back,
            "error": found.error,
            "report": report,
            "rows": [] if report is None else _rows(report),
            "text": found.text,
        },
        status=200 if report is not None else 502,
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


def _not_yet(request: Request, title: str, closes_at: datetime | None, back: str) -> Response:
    """A proposal still open (or not yet open) has no recount: its ballots and result
    are published at the close. Said in words, with the close's date, rather than a
    bare "not found"; the status stays 404, as there is nothing to recount yet."""
    return pages.page(
        request,
        i18n.choose_language(request),
        "audit.html",
        {"title": title, "back": back, "not_yet": True, "closes_at": closes_at},
        status=404,
    )


async def proposal_audit(request: Request) -> Response:
    """The recount of one of this co-op's closed proposals (anyone may ask)."""
    node = node_of(request)
    key = request.path_params["key"]
    try:
        row = await reading.proposal(node, key)
    except NotFound:
        row = None
    if row is not None and row.state is not State.CLOSED:
        return _not_yet(request, row.title, row.closes_at, f"/proposals/{key}")
    return await _page(
        request,
        None if row is None else row.uri,
        None if row is None else row.title,
        f"/proposals/{key}",
    )


async def shared_audit(request: Request) -> Response:
    """The recount of a closed shared proposal hosted elsewhere, for this co-op's members."""
    await sessions.require(request)
    node = node_of(request)
    key = request.path_params["key"]
    row = await reading.shared_any(node, key)
    if row is not None and row.state != "closed":
        shown = remote_view(row)
        closes_at = None if shown.closes_at is None else datetime.fromisoformat(shown.closes_at)
        return _not_yet(request, shown.title, closes_at, f"/proposals/shared/{key}")
    return await _page(
        request,
        None if row is None else row.uri,
        None if row is None else remote_view(row).title,
        f"/proposals/shared/{key}",
    )
