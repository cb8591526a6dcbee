"""Discussion threads, by the API, and the comments' own addresses:

- ``GET /api/v1/proposals/{key}/comments``: the thread under a proposal (this co-op's,
  or a shared one), oldest first; an admin's token also lists the hidden comments;
- ``POST /api/v1/proposals/{key}/comments`` ``{text, reply_to}``: a member comments (in
  Markdown), or answers the comment ``reply_to`` (its key);
- the same under ``/api/v1/offers/{key}/comments``, where the co-op takes questions on
  its offers (``offer_questions``);
- ``POST /api/v1/comments/{key}/report`` ``{reason}``: a member reports a comment;
- ``POST /api/v1/comments/{key}/{hide|unhide|remove|dismiss}``: the admin's decisions
  (``dismiss`` closes the reports and leaves the comment);
- ``GET /api/v1/comments?reported=1`` (the reports waiting), ``?hidden=1``, or the
  latest comments: for the admin;
- ``GET /proposals/{key}/replies``: the ``replies`` collection its ``Question`` names
  (the ids of the visible comments under it, pages of 100);
- ``GET /comments/{key}``: a member's comment as a ``Note`` (a ``Tombstone`` with 410
  once removed); a browser is sent to the thread.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from federation.mediatypes import wants_html
from node.discussion import reading, threads
from node.discussion.store import Comment
from node.errors import Invalid, NotFound
from node.web.api import authenticate, json_body
from node.web.responses import activity, error, node_of

DECISIONS = ("hide", "unhide", "remove", "dismiss")


def comment_json(comment: Comment, reported: int | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "key": comment.key,
        "id": comment.uri,
        "in_reply_to": comment.in_reply_to,
        "thread": comment.thread,
        "author": comment.author,
        "author_name": comment.author_name,
        "server": comment.author_host,
        "local": comment.actor_id is not None,
        "member": comment.member,
        "partner": comment.partner,
        "content": comment.content,
        "state": comment.state,
        "published": comment.published.isoformat(),
    }
    if reported is not None:
        found["reports"] = reported
    return found


async def _viewer_is_admin(request: Request) -> bool:
    if not request.headers.get("authorization"):
        return False
    info = await authenticate(request, role="observer")
    return info.role == "admin"


async def list_thread(request: Request) -> Response:
    node = node_of(request)
    admin = await _viewer_is_admin(request)
    key = request.path_params["key"]
    if request.url.path.startswith("/api/v1/offers/"):
        found = await threads.offer_thread(node, key, admin=admin)
    else:
        found = await threads.thread(node, key, admin=admin)
        if found.root.kind == "shared" and not request.headers.get("authorization"):
            # As on the pages: a shared proposal hosted elsewhere is shown to members.
            await authenticate(request, role="observer")
    return JSONResponse(
        {
            "root": found.root.uri,
            "proposal": found.root.uri,
            "open": found.root.open,
            "comments": [
                comment_json(c, found.reported.get(c.id, 0) if admin else None)
                for c in found.comments
            ],
        }
    )


async def post_comment(request: Request) -> Response:
    # Observers read the threads; members (and admins) write in them, as on the pages.
    info = await authenticate(request, role="member")
    if info.actor_id is None:
        raise Invalid("this token is not a member's: comments are written by members")
    data = await json_body(request)
    reply_to = data.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        raise Invalid("reply_to is a comment's key", field="reply_to")
    node = node_of(request)
    key = request.path_params["key"]
    on_offer = request.url.path.startswith("/api/v1/offers/")
    comment = await threads.post(
        node,
        info.actor_id,
        key=None if on_offer else key,
        root_uri=node.urls.offer(key) if on_offer else None,
        text=data.get("text"),
        reply_to=reply_to,
    )
    return JSONResponse(comment_json(comment), status_code=201)


async def report(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    reporter = await reading.reporter(node, info.actor_id)
    data = await json_body(request) if await request.body() else {}
    made = await threads.report(node, reporter, request.path_params["key"], data.get("reason"))
    return JSONResponse({"reported": made}, status_code=201 if made else 200)


async def decide(request: Request) -> Response:
    await authenticate(request, role="admin")
    node = node_of(request)
    key, decision = request.path_params["key"], request.path_params["decision"]
    if decision not in DECISIONS:
        raise NotFound(f"no such decision: use one of {', '.join(DECISIONS)}")
    if decision == "dismiss":
        closed = await threads.dismiss(node, key)
        return JSONResponse({"closed": closed})
    act = {"hide": threads.hide, "unhide": threads.unhide, "remove": threads.remove}[decision]
    return JSONResponse(comment_json(await act(node, key)))


async def queue(request: Request) -> Response:
    await authenticate(request, role="admin")
    node = node_of(request)
    if request.query_params.get("reported") in ("1", "true"):
        waiting = await threads.reports(node)
        return JSONResponse(
            {
                "reports": [
                    {
                        "id": r.id,
                        "reporter": r.reporter,
                        "origin": r.origin,
                        "reason": r.reason,
                        "created_at": r.created_at.isoformat(),
                        "comment": comment_json(c),
                    }
                    for r, c in waiting
                ]
            }
        )
    hidden = request.query_params.get("hidden") in ("1", "true")
    found = await threads.recent(node, hidden=hidden)
    return JSONResponse({"comments": [comment_json(c) for c in found]})


async def comment_object(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    found = await reading.published(node, key)
    if found is None:
        return error(404, "not_found", f"no comment {key!r} here")
    if wants_html(request.headers.get("accept")) and found.page is not None:
        return RedirectResponse(found.page, status_code=303)
    if found.gone:
        return activity(found.document, status=410)
    return activity(found.document)


async def replies_collection(request: Request) -> Response:
    raw = request.query_params.get("page")
    page = None
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 6 and int(raw) > 0):
            return error(400, "bad_request", "page is a whole number from 1")
        page = int(raw)
    found = await reading.replies(node_of(request), request.path_params["key"], page)
    if found is None:
        return error(404, "not_found", "no such proposal")
    return activity(found)


routes = [
    Route("/proposals/{key}/replies", replies_collection, methods=["GET"]),
    Route("/api/v1/proposals/{key}/comments", list_thread, methods=["GET"]),
    Route("/api/v1/proposals/{key}/comments", post_comment, methods=["POST"]),
    Route("/api/v1/offers/{key}/comments", list_thread, methods=["GET"]),
    Route("/api/v1/offers/{key}/comments", post_comment, methods=["POST"]),
    Route("/api/v1/comments", queue, methods=["GET"]),
    Route("/api/v1/comments/{key}/report", report, methods=["POST"]),
    Route("/api/v1/comments/{key}/{decision}", decide, methods=["POST"]),
    Route("/comments/{key}", comment_object, methods=["GET"]),
]
