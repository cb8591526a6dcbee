"""Discussion threads in a browser: a member comments, answers a comment or reports
one from a proposal's page (or asks and answers questions on one of the co-op's offers,
where it takes them); the refresh script reads the thread alone; the admin reads the
reports and the latest comments, and hides, shows again or removes a comment.

- ``POST /proposals/{key}/comments`` and ``POST /proposals/shared/{key}/comments``
  ``text``, ``reply_to``: a comment, or an answer to the comment ``reply_to``; back to
  the page at the comment, or the page again with the reason beside the form (422),
  nothing stored;
- ``POST /offers/{key}/comments`` ``text``, ``reply_to``: the same under one of the
  co-op's offers, where it takes questions (``offer_questions``), else refused (403);
- ``POST /comments/{key}/report`` ``reason``: back to the thread with a notice;
- ``GET /proposals/{key}/thread`` and ``GET /proposals/shared/{key}/thread``: the
  thread as the page shows it (``_thread.html``), for the refresh script;
- ``GET /admin/comments``, ``POST /admin/comments/{key}/{hide|unhide|remove|dismiss}``:
  the admin's moderation queue and decisions.

Members and the admin write and report, as they vote; observers read. Everything goes
through the use cases of :mod:`node.discussion.threads`, with the API's checks; every
form through :func:`node.web.ui.sessions.read_form`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from node.discussion import reading, threads
from node.discussion.store import Comment
from node.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, TooLarge
from node.governance import reading as proposals_reading
from node.runtime import Node
from node.web.responses import node_of
from node.web.ui import i18n, pages, proposal_pages, render, sessions, shared_pages
from node.web.ui.member_pages import Handler, html_errors, refusal_page

# The admin's decisions, and the notice each leaves on the queue page.
DECISIONS = {"hide": "hidden", "unhide": "shown", "remove": "removed", "dismiss": "dismissed"}
# Where a report sends the member back: a proposal's or an offer's page on this node,
# nothing else.
BACK = re.compile(r"/(?:proposals/(?:shared/)?|offers/)[A-Za-z0-9_-]{1,200}")
RECENT_SHOWN = 100


def page_of(kind: str, key: str) -> str:
    """A thread's page: the proposal's, or the shared proposal's."""
    prefix = "/proposals/shared/" if kind == "shared" else "/proposals/"
    return prefix + quote(key, safe="")


def refusals(handler: Handler) -> Handler:
    """A form's refusals as pages with their reason: the role or the form's token
    (403), no such comment (404), a comment removed meanwhile (409), a reason too long
    (422)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (Forbidden, TooLarge, Invalid, BadRequest, NotFound, Conflict) as exc:
            return refusal_page(request, exc)

    return wrapped


async def _root_kind(node: Node, key: str) -> str:
    return (await threads.thread(node, key)).root.kind


# --- commenting, answering, reporting ---------------------------------------------------


async def _comment(request: Request, kind: str) -> Response:
    session = await sessions.require(request, "member")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    if await _root_kind(node, key) != kind:
        raise NotFound("no such proposal")
    if session.actor_id is None:
        raise Forbidden("comments are written by members")
    text = form.get("text")
    raw_reply = form.get("reply_to")
    reply_to = raw_reply if isinstance(raw_reply, str) and raw_reply else None
    try:
        comment = await threads.post(node, session.actor_id, key=key, text=text, reply_to=reply_to)
    except Invalid as exc:
        draft = {"error": exc, "text": text if isinstance(text, str) else "", "reply_to": reply_to}
        if kind == "shared":
            return await shared_pages.refused_comment(request, draft)
        return await proposal_pages.refused_comment(request, draft)
    return RedirectResponse(f"{page_of(kind, key)}#comment-{comment.key}", status_code=303)


@refusals
async def comment(request: Request) -> Response:
    return await _comment(request, "proposal")


@refusals
async def shared_comment(request: Request) -> Response:
    return await _comment(request, "shared")


@refusals
async def offer_comment(request: Request) -> Response:
    """A member's question under one of the co-op's offers, or an answer to one."""
    session = await sessions.require(request, "member")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    if not node.settings.offer_questions:
        raise Forbidden("this co-op takes no questions on its offers")
    if session.actor_id is None:
        raise Forbidden("comments are written by members")
    text = form.get("text")
    raw_reply = form.get("reply_to")
    reply_to = raw_reply if isinstance(raw_reply, str) and raw_reply else None
    try:
        comment = await threads.post(
            node, session.actor_id, root_uri=node.urls.offer(key), text=text, reply_to=reply_to
        )
    except NotFound:
        raise NotFound("no such offer") from None
    except Invalid as exc:
        draft = {"error": exc, "text": text if isinstance(text, str) else "", "reply_to": reply_to}
        return await pages.refused_question(request, draft)
    page = "/offers/" + quote(key, safe="")
    return RedirectResponse(f"{page}#comment-{comment.key}", status_code=303)


@refusals
async def report(request: Request) -> Response:
    """Any member reports a comment to the admin, with a reason if they give one."""
    session = await sessions.require(request, "member")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    reporter = await reading.reporter(node, session.actor_id)
    made = await threads.report(node, reporter, key, form.get("reason"))
    back = form.get("back")
    page = back if isinstance(back, str) and BACK.fullmatch(back) else "/proposals"
    notice = "reported" if made else "already-reported"
    anchor = quote(key, safe="")
    return RedirectResponse(f"{page}?comment={notice}#comment-{anchor}", status_code=303)


# --- the thread alone, for the refresh script -------------------------------------------


async def _fragment(request: Request, kind: str) -> Response:
    session = await sessions.current(request)
    if kind == "shared" and session is None:
        return render.not_found(request)  # a shared proposal's page is for members
    node = node_of(request)
    admin = session is not None and session.role == "admin"
    try:
        found = await threads.thread(node, request.path_params["key"], admin=admin)
    except NotFound:
        return render.not_found(request)
    if found.root.kind != kind:
        return render.not_found(request)
    context = {
        "thread": found,
        "csrf": None if session is None else session.csrf,
        "fragment": True,
    }
    response = render.page(request, i18n.choose_language(request), "_thread.html", context)
    return render.no_store(response)


async def fragment(request: Request) -> Response:
    return await _fragment(request, "proposal")


async def shared_fragment(request: Request) -> Response:
    return await _fragment(request, "shared")


# --- the admin's moderation queue -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportSeen:
    reason: str
    server: str | None  # the server that sent it (a Flag); None: from a member
    at: datetime


@dataclass(frozen=True, slots=True)
class Reported:
    comment: Comment
    link: str
    reports: list[ReportSeen]


async def _links(node: Node) -> dict[str, str]:
    """The pages of the shared proposals' threads, by the proposal's id."""
    shared = await proposals_reading.shared_visible(node)
    return {row["uri"]: page_of("shared", row["id"]) for row in shared}


def _link(node: Node, links: dict[str, str], comment: Comment) -> str:
    """Where a comment's thread is read: its page here (a proposal or an offer of this
    co-op answers a browser with its page), else where it comes from."""
    if comment.thread in links:
        return links[comment.thread]
    base = node.settings.base_url.rstrip("/")
    if comment.thread.startswith(base + "/"):
        return comment.thread[len(base) :]
    return comment.thread


@html_errors
async def queue(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    node = node_of(request)
    waiting = await threads.reports(node)
    latest = await threads.recent(node, limit=RECENT_SHOWN)
    links = await _links(node)
    reported: dict[str, Reported] = {}
    for found, comment in waiting:
        seen = ReportSeen(
            reason=found.reason,
            server=None if found.origin == "member" else urlsplit(found.reporter).hostname,
            at=found.created_at,
        )
        if comment.key not in reported:
            reported[comment.key] = Reported(comment, _link(node, links, comment), [])
        reported[comment.key].reports.append(seen)
    done = request.query_params.get("done")
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_comments.html",
        {
            "csrf": session.csrf,
            "reported": list(reported.values()),
            "latest": [(c, _link(node, links, c)) for c in latest],
            "done": done if done in DECISIONS.values() else None,
        },
    )
    return render.no_store(response)


@refusals
async def decide(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    await sessions.read_form(request, session)
    node = node_of(request)
    key, decision = request.path_params["key"], request.path_params["decision"]
    if decision not in DECISIONS:
        return render.not_found(request)
    if decision == "dismiss":
        await threads.dismiss(node, key)
    else:
        act = {"hide": threads.hide, "unhide": threads.unhide, "remove": threads.remove}
        await act[decision](node, key)
    return RedirectResponse(f"/admin/comments?done={DECISIONS[decision]}", status_code=303)


routes: list[BaseRoute] = [
    Route("/proposals/{key}/comments", comment, methods=["POST"]),
    Route("/proposals/shared/{key}/comments", shared_comment, methods=["POST"]),
    Route("/offers/{key}/comments", offer_comment, methods=["POST"]),
    Route("/proposals/{key}/thread", fragment, methods=["GET"]),
    Route("/proposals/shared/{key}/thread", shared_fragment, methods=["GET"]),
    Route("/comments/{key}/report", report, methods=["POST"]),
    Route("/admin/comments", queue, methods=["GET"]),
    Route("/admin/comments/{key}/{decision}", decide, methods=["POST"]),
]
