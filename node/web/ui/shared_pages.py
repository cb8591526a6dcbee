"""Shared proposals hosted by another co-op, in a member's browser: the proposal as its
host last sent it, the member's vote (signed here, sent to the host), the counts, and
after the close the outcome with its chart per college.

Everything shown comes from a peer: the text is sanitised again, every figure is read
field by field and left out when it is not what it should be, and the page never shows
a number it could not read as one. A proposal counted by subtotals has a local mirror
that members vote on like any of the co-op's own proposals: its page is that one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from node import sharing
from node.errors import Conflict, Forbidden, Invalid, NodeError, NotFound
from node.offers.markdown import sanitise_html
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors
from node.web.ui.proposal_pages import bars, college_chart, counts_response, token_of

MAX_OPTIONS = 50


@dataclass(frozen=True, slots=True)
class RemoteView:
    key: str
    uri: str
    host: str
    state: str  # open, closed, declined
    title: str
    content_html: str
    options: list[tuple[str, str]]
    multiple: bool
    max_choices: int
    counts: dict[str, int]
    voters: int
    closes_at: str | None
    outcome: dict[str, Any] | None
    url: str | None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _outcome(raw: object, names: list[str]) -> dict[str, Any] | None:
    """The host's outcome, kept only where each field is what it should be."""
    if not isinstance(raw, dict) or not isinstance(raw.get("result"), str):
        return None
    counts = raw.get("counts")
    if not isinstance(counts, dict):
        return None
    outcome: dict[str, Any] = {
        "result": raw["result"][:64],
        "reason": raw["reason"][:500] if isinstance(raw.get("reason"), str) else None,
        "counts": {n: _count(counts.get(n)) or 0 for n in names},
        "turnout": _count(raw.get("turnout")) or 0,
        "eligible": _count(raw.get("eligible")) or 0,
    }
    colleges = []
    for college in raw.get("colleges") or []:
        if not isinstance(college, dict) or not isinstance(college.get("name"), str):
            continue
        found = college.get("counts")
        weight = college.get("weight")
        colleges.append(
            {
                "name": college["name"][:100],
                "weight": weight if isinstance(weight, str) and len(weight) < 40 else None,
                "counts": {n: _count(found.get(n)) or 0 for n in names if isinstance(found, dict)},
            }
        )
    outcome["colleges"] = colleges[:20]
    return outcome


def remote_view(row: Any) -> RemoteView:
    try:
        document = json.loads(row["document"])
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    multiple = isinstance(document.get("anyOf"), list)
    raw_options = document.get("anyOf") if multiple else document.get("oneOf")
    options: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for option in (raw_options if isinstance(raw_options, list) else [])[:MAX_OPTIONS]:
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            continue
        name = option["name"][:200]
        role = option.get("optionRole")
        options.append((name, role if role in ("for", "against", "abstain") else "other"))
        replies = option.get("replies")
        counts[name] = (_count(replies.get("totalItems")) if isinstance(replies, dict) else 0) or 0
    content = document.get("content")
    name = document.get("name")
    url = document.get("url")
    return RemoteView(
        key=row["key"],
        uri=row["uri"],
        host=urlsplit(row["host"]).netloc or row["host"],
        state=row["state"],
        title=name[:300] if isinstance(name, str) and name else row["uri"],
        content_html=sanitise_html(content) if isinstance(content, str) else "",
        options=options,
        multiple=multiple,
        max_choices=_count(document.get("maxChoices")) or len(options),
        counts=counts,
        voters=_count(document.get("votersCount")) or 0,
        closes_at=document.get("endTime") if isinstance(document.get("endTime"), str) else None,
        outcome=_outcome(document.get("outcome"), [n for n, _ in options]),
        url=url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
    )


def _read(conn: Connection, key: str, actor_id: int | None) -> tuple[Any, str | None, Any]:
    row = sharing.find_remote(conn, key)
    if row is None:
        raise NotFound("no such shared proposal")
    mirror = sharing.mirror_key(conn, row["uri"])
    return row, mirror, sharing.last_sent(conn, row["id"], actor_id)


async def shared_proposal(request: Request) -> Response:
    return await _page(request)


async def _page(request: Request, *, error: NodeError | None = None, status: int = 200) -> Response:
    session = await sessions.require(request)
    node = node_of(request)
    key = request.path_params["key"]
    try:
        row, mirror, sent = await node.db.read(lambda c: _read(c, key, session.actor_id))
    except NotFound:
        return render.page(request, i18n.choose_language(request), "not_found.html", {}, status=404)
    if mirror is not None:
        # Counted by subtotals: this co-op's members vote on its own mirror proposal.
        return RedirectResponse(f"/proposals/{mirror}", status_code=303)
    view = remote_view(row)
    chart = None
    names = [n for n, _ in view.options]
    if view.outcome and view.outcome["colleges"]:
        chart = college_chart(view.outcome["colleges"], names, f"{view.title}: colleges")
    response = render.page(
        request,
        i18n.choose_language(request),
        "shared_proposal.html",
        {
            "view": view,
            "bars": bars(view.options, view.counts),
            "outcome_bars": None
            if view.outcome is None
            else bars(view.options, view.outcome["counts"]),
            "chart": chart,
            "can_vote": session.role in ("admin", "member") and view.state == "open",
            "mine": sent["choices"] if sent else None,
            "csrf": session.csrf,
            "error": error,
            "voted": request.query_params.get("voted") == "1",
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@html_errors
async def shared_vote(request: Request) -> Response:
    """The ballot signed here as the member and sent to the host, which counts it."""
    session = await sessions.require(request, "member")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    choices = [c for c in form.getlist("choices") if isinstance(c, str)]
    row = await node.db.read(lambda conn: sharing.find_remote(conn, key))
    if row is None:
        return render.page(request, i18n.choose_language(request), "not_found.html", {}, status=404)
    try:
        await sharing.vote_remote(node, token_of(session), row, choices)
    except Invalid as exc:
        return await _page(request, error=exc, status=400)
    except Conflict as exc:
        return await _page(request, error=exc, status=409)
    except Forbidden as exc:
        return await _page(request, error=exc, status=403)
    return RedirectResponse(f"/proposals/shared/{key}?voted=1", status_code=303)


async def shared_counts(request: Request) -> Response:
    """The counts the host last sent, for the page's refresh script."""
    await sessions.require(request)
    node = node_of(request)
    row = await node.db.read(lambda conn: sharing.find_remote(conn, request.path_params["key"]))
    if row is None:
        return JSONResponse({"error": "no such shared proposal"}, status_code=404)
    view = remote_view(row)
    return counts_response(view.state, bars(view.options, view.counts), view.voters)
