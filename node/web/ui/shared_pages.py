"""Shared proposals hosted by another co-op, in a member's browser: the proposal as its
host last sent it, the member's vote (signed here, sent to the host), the counts, and
after the close the outcome with its chart per college.

Everything shown comes from a peer: the text is sanitised again, every figure is read
field by field and left out when it is not what it should be, and the page never shows
a number it could not read as one. A proposal counted by subtotals has a local mirror
that members vote on like any of the co-op's own proposals: its page is that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from federation.errors import MalformedInput
from node.discussion import threads
from node.errors import Conflict, Forbidden, Invalid, NodeError, NotFound
from node.governance import reading, sharing
from node.governance.rules.proposal_input import iso
from node.governance.rules.shared_question import SharedQuestion
from node.governance.store.rows import RemoteProposal
from node.offers.markdown import sanitise_html
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors
from node.web.ui.proposal_pages import bars, college_chart, counts_response, token_of


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


def _outcome(raw: dict[str, Any] | None, names: list[str]) -> dict[str, Any] | None:
    """The host's outcome as the page shows it (its figures were read at receipt)."""
    if raw is None:
        return None
    counts = raw.get("counts", {})
    outcome: dict[str, Any] = {
        "result": raw["result"],
        "reason": raw.get("reason"),
        "counts": {n: counts.get(n, 0) for n in names},
        "turnout": raw.get("turnout", 0),
        "eligible": raw.get("eligible", 0),
    }
    colleges = []
    for college in raw.get("colleges", [])[:20]:
        weight = college.get("weight")
        found = college.get("counts", {})
        colleges.append(
            {
                "name": college["name"],
                "weight": weight if isinstance(weight, str) and len(weight) < 40 else None,
                "counts": {n: found.get(n, 0) for n in names},
            }
        )
    outcome["colleges"] = colleges
    return outcome


def remote_view(row: RemoteProposal) -> RemoteView:
    """The page's view of the host's document, read as the inbox read it at receipt."""
    try:
        shared: SharedQuestion | None = row.question()
    except (ValueError, MalformedInput):
        shared = None  # kept from before documents were read at receipt: shown bare
    host = urlsplit(row.host).netloc or row.host
    if shared is None:
        return RemoteView(
            key=row.key,
            uri=row.uri,
            host=host,
            state=row.state,
            title=row.uri,
            content_html="",
            options=[],
            multiple=False,
            max_choices=0,
            counts={},
            voters=0,
            closes_at=None,
            outcome=None,
            url=None,
        )
    options = [
        (o.name, o.role if o.role in ("for", "against", "abstain") else "other")
        for o in shared.options
    ]
    return RemoteView(
        key=row.key,
        uri=row.uri,
        host=host,
        state=row.state,
        title=shared.title,
        content_html=sanitise_html(shared.content),
        options=options,
        multiple=shared.multiple,
        max_choices=shared.max_choices or len(options),
        counts=shared.counts,
        voters=shared.voters,
        closes_at=iso(shared.ends_at),
        outcome=_outcome(shared.outcome, [n for n, _ in options]),
        url=shared.url,
    )


async def shared_proposal(request: Request) -> Response:
    return await _page(request)


async def refused_comment(request: Request, thread_form: dict[str, Any]) -> Response:
    """The page again, the refused comment as typed beside its form (422)."""
    return await _page(request, thread_form=thread_form, status=422)


async def _page(
    request: Request,
    *,
    error: NodeError | None = None,
    status: int = 200,
    thread_form: dict[str, Any] | None = None,
) -> Response:
    session = await sessions.require(request)
    node = node_of(request)
    key = request.path_params["key"]
    try:
        row, mirror, sent = await reading.shared_with_ballot(node, key, session.actor_id)
    except NotFound:
        return render.page(request, i18n.choose_language(request), "not_found.html", {}, status=404)
    if mirror is not None:
        # Counted by subtotals: this co-op's members vote on its own mirror proposal.
        return RedirectResponse(f"/proposals/{mirror}", status_code=303)
    view = remote_view(row)
    try:
        thread: threads.Thread | None = await threads.thread(
            node, key, admin=session.role == "admin"
        )
    except NotFound:  # declined: no thread here
        thread = None
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
            "mine": sent.choices if sent else None,
            "csrf": session.csrf,
            "error": error,
            "voted": request.query_params.get("voted") == "1",
            "thread": thread,
            "thread_form": thread_form,
            "thread_notice": request.query_params.get("comment"),
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
    row = await reading.shared(node, key)
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
    row = await reading.shared(node, request.path_params["key"])
    if row is None:
        return JSONResponse({"error": "no such shared proposal"}, status_code=404)
    view = remote_view(row)
    return counts_response(view.state, bars(view.options, view.counts), view.voters)
