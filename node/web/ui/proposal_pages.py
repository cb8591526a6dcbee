"""Proposals in a browser: the list, a proposal's page with its vote form and counts,
and after the close its outcome, a chart per college and how to audit it.

A proposal's address answers HTML only to a browser that prefers it; everyone else gets
the ``Question`` as before. A member votes with an ordinary form (radio buttons, or
check boxes for a multiple choice): the same checks as the API's
(:func:`node.governance.voting.cast_local`), the same page again with the reason when a ballot is
refused. The chart is SVG drawn here, from the published counts: no script, no
external service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from federation.mediatypes import wants_html
from node.discussion import threads
from node.errors import Conflict, Forbidden, Invalid, NodeError, NotFound
from node.governance import documents, reading, voting
from node.governance.store.rows import State, StoredProposal
from node.services.sessions import Session
from node.services.tokens import TokenInfo
from node.web import proposals as proposal_routes
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors

# The options' colours in charts and bars: distinct, and readable on white.
COLOURS = ("#1f6b45", "#a61b1b", "#6b7280", "#1d4ed8", "#b45309", "#7e22ce")


@dataclass(frozen=True, slots=True)
class Bar:
    name: str
    role: str
    count: int
    percent: float


def bars(options: list[tuple[str, str]], counts: dict[str, int]) -> list[Bar]:
    total = sum(counts.get(name, 0) for name, _ in options)
    return [
        Bar(name, role, counts.get(name, 0), 100 * counts.get(name, 0) / total if total else 0.0)
        for name, role in options
    ]


def college_chart(colleges: list[dict[str, Any]], options: list[str], title: str) -> str:
    """A horizontal bar per college, split by option in proportion to its votes, with
    its weight and voters: an accessible SVG (a title, and a text per bar)."""
    row_height, label_width, bar_width = 34, 150, 300
    height = 30 + row_height * len(colleges) + 24
    width = label_width + bar_width + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for index, college in enumerate(colleges):
        y = 20 + index * row_height
        counts = college.get("counts") or {}
        voters = sum(int(counts.get(o, 0)) for o in options)
        weight = college.get("weight")
        label = str(college.get("name", ""))
        if weight:
            label += f" ({_percent_text(weight)})"
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(label)}</text>')
        x = float(label_width)
        for position, option in enumerate(options):
            n = int(counts.get(option, 0))
            if not voters or not n:
                continue
            w = bar_width * n / voters
            colour = COLOURS[position % len(COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" fill="{colour}">'
                f"<title>{escape(option)}: {n}</title></rect>"
            )
            x += w
        if not voters:
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{bar_width}" height="20" '
                'fill="none" stroke="#d5dccf"/>'
            )
    legend_y = 20 + row_height * len(colleges) + 10
    x = 0.0
    for position, option in enumerate(options):
        colour = COLOURS[position % len(COLOURS)]
        parts.append(f'<rect x="{x:.0f}" y="{legend_y}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 16:.0f}" y="{legend_y + 11}" font-size="12">{escape(option)}</text>'
        )
        x += 24 + 7 * len(option)
    parts.append("</svg>")
    return "".join(parts)


def _percent_text(fraction: str) -> str:
    try:
        top, _, bottom = fraction.partition("/")
        value = int(top) / int(bottom or 1)
    except (ValueError, ZeroDivisionError):
        return fraction
    return f"{100 * value:.0f} %"


def token_of(session: Session) -> TokenInfo:
    """The session as the voting code's caller: the member's actor and role."""
    return TokenInfo(
        id=0,
        name="browser session",
        role=session.role,
        actor_id=session.actor_id,
        created_at=session.last_seen_at,
        revoked_at=None,
    )


async def proposals_list(request: Request) -> Response:
    session = await sessions.current(request)
    node = node_of(request)
    own = [documents.describe(p) for p in await reading.newest(node, limit=100)]
    shared = [] if session is None else await reading.shared_visible(node)
    return render.page(
        request,
        i18n.choose_language(request),
        "proposals.html",
        {"proposals": own, "shared": shared},
    )


async def proposal(request: Request) -> Response:
    """``/proposals/KEY``: the page for a browser, else the ``Question`` as before."""
    if not wants_html(request.headers.get("accept")):
        return await proposal_routes.question(request)
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
    session = await sessions.current(request)
    node = node_of(request)
    key = request.path_params["key"]
    voter = None if session is None else node.urls.actor(session.username)
    try:
        row, mine = await reading.with_latest_choices(node, key, voter)
    except NotFound:
        return render.page(request, i18n.choose_language(request), "not_found.html", {}, status=404)
    options = _options(row)
    outcome = row.outcome
    chart = None
    if outcome and outcome.get("colleges"):
        chart = college_chart(
            outcome["colleges"], [name for name, _ in options], f"{row.title}: colleges"
        )
    can_vote = (
        session is not None and session.role in ("admin", "member") and row.state is State.OPEN
    )
    admin = session is not None and session.role == "admin"
    thread = await threads.thread(node, key, admin=admin)
    response = render.page(
        request,
        i18n.choose_language(request),
        "proposal.html",
        {
            "row": row,
            "options": options,
            "multiple": row.multiple_choice,
            "bars": bars(options, row.shown.counts),
            "voters": row.shown.voters,
            "outcome": outcome,
            "outcome_bars": None if outcome is None else bars(options, outcome["counts"]),
            "chart": chart,
            "can_vote": can_vote,
            "mine": mine,
            "csrf": None if session is None else session.csrf,
            "error": error,
            "voted": request.query_params.get("voted") == "1",
            "audit_command": f"coopnode audit {row.uri}",
            "ballots_url": node.urls.proposal_ballots(key) if row.open_ballot else None,
            "nobody_eligible": bool(documents.warnings(row)),
            "thread": thread,
            "thread_form": thread_form,
            "thread_notice": request.query_params.get("comment"),
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store" if session is not None else "no-cache"
    return response


@html_errors
async def vote(request: Request) -> Response:
    """The vote form sent: the ballot is checked and counted as the API's would be."""
    session = await sessions.require(request, "member")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    choices = [c for c in form.getlist("choices") if isinstance(c, str)]
    try:
        await voting.cast_local(node, token_of(session), key, {"choices": choices})
    except (Invalid, Conflict) as exc:
        return await _page(request, error=exc, status=400 if isinstance(exc, Invalid) else 409)
    except Forbidden as exc:
        return await _page(request, error=exc, status=403)
    return RedirectResponse(f"/proposals/{key}?voted=1", status_code=303)


async def counts(request: Request) -> Response:
    """The counts as last published (once a minute), for the page's refresh script."""
    node = node_of(request)
    try:
        row = await reading.proposal(node, request.path_params["key"])
    except NotFound:
        return JSONResponse({"error": "no such proposal"}, status_code=404)
    return counts_response(row.state, bars(_options(row), row.shown.counts), row.shown.voters)


def _options(row: StoredProposal) -> list[tuple[str, str]]:
    return [(o.name, o.role.value) for o in row.options]


def counts_response(state: str, shown: list[Bar], voters: int) -> JSONResponse:
    return JSONResponse(
        {
            "state": state,
            "voters": voters,
            "options": [
                {"name": b.name, "count": b.count, "percent": round(b.percent)} for b in shown
            ],
        },
        headers={"Cache-Control": "no-store"},
    )
