"""A closed proposal's recount, in the page: what ``coopnode audit URL`` prints, run by
this node for anyone who asks.

The node audits the proposal from the outside, as any auditor would: it fetches the
published proposal, ballots (or subtotals) and electorate over HTTP with its guarded
client, verifies each proof with its author's key, and recounts. A closed proposal's
published record does not change, so one recount per proposal is kept for a while;
audits run one at a time, so that a crowd of visitors cannot make the node fetch a large
vote's ballots over and over.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from node import proposing, sharing
from node.errors import NotFound
from node.governance.audit import AuditError, AuditReport, audit, render
from node.web.responses import node_of
from node.web.ui import i18n, sessions
from node.web.ui import render as pages
from node.web.ui.shared_pages import remote_view

KEEP_SECONDS = 3600.0
KEPT = 32


@dataclass(frozen=True, slots=True)
class Recount:
    report: AuditReport | None
    error: str | None
    text: str
    at: float


class _Audits:
    """Recounts kept per proposal URL, and the lock that runs one audit at a time."""

    def __init__(self) -> None:
        self.kept: OrderedDict[str, Recount] = OrderedDict()
        self.lock = asyncio.Lock()

    def fresh(self, url: str) -> Recount | None:
        found = self.kept.get(url)
        if found is None or time.monotonic() - found.at > KEEP_SECONDS:
            return None
        return found

    def keep(self, url: str, recount: Recount) -> None:
        self.kept[url] = recount
        self.kept.move_to_end(url)
        while len(self.kept) > KEPT:
            self.kept.popitem(last=False)


def _audits(request: Request) -> _Audits:
    state = request.app.state
    if not hasattr(state, "audits"):
        state.audits = _Audits()
    audits: _Audits = state.audits
    return audits


async def recount(request: Request, url: str) -> Recount:
    audits = _audits(request)
    found = audits.fresh(url)
    if found is not None:
        return found
    async with audits.lock:
        found = audits.fresh(url)  # made while this request waited
        if found is not None:
            return found
        node = node_of(request)
        try:
            report = await audit(url, http=node.http, allow_http=node.settings.local)
        except AuditError as exc:
            made = Recount(None, str(exc), "", time.monotonic())
        else:
            made = Recount(report, None, render(report), time.monotonic())
        audits.keep(url, made)
        return made


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
    found = await recount(request, url)
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


async def proposal_audit(request: Request) -> Response:
    """The recount of one of this co-op's closed proposals (anyone may ask)."""
    node = node_of(request)
    key = request.path_params["key"]
    try:
        row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    except NotFound:
        row = None
    if row is not None and row["state"] != proposing.CLOSED:
        row = None
    return await _page(
        request,
        None if row is None else row["uri"],
        None if row is None else row["title"],
        f"/proposals/{key}",
    )


async def shared_audit(request: Request) -> Response:
    """The recount of a closed shared proposal hosted elsewhere, for this co-op's members."""
    await sessions.require(request)
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: sharing.find_remote(conn, key))
    if row is not None and row["state"] != "closed":
        row = None
    return await _page(
        request,
        None if row is None else row["uri"],
        None if row is None else remote_view(row).title,
        f"/proposals/shared/{key}",
    )
