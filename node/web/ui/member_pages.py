"""Pages behind the login: a member's own page, and the admin's members page.

Every handler here starts with :func:`node.web.ui.sessions.require` and the role it
needs, and every form it takes goes through :func:`~node.web.ui.sessions.read_form`
(same site, size, token). Refusals are pages too: a member without the role gets a
403 page, a form that does not check out a 403 or 413 page, an invalid entry the form
again with the message next to the field.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.errors import BadRequest, Forbidden, Invalid, NodeError, TooLarge
from node.governance import reading
from node.governance.store.rows import SentElsewhere
from node.members import store as members_service
from node.members.actions import add_member
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions

Handler = Callable[[Request], Awaitable[Response]]
MEMBERS_SHOWN = 500
ADD_FIELDS = ("username", "name", "password", "role", "college", "joined_at")


def html_errors(handler: Handler) -> Handler:
    """The handler's refusals as pages: 403 (role, form token), 413, and a form that is
    not one (422); a handler shows its own form's invalid entries beside their fields."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (Forbidden, TooLarge, Invalid, BadRequest) as exc:
            return refusal_page(request, exc)

    return wrapped


def refusal_page(request: Request, exc: NodeError) -> Response:
    return render.page(
        request,
        i18n.choose_language(request),
        "refused.html",
        {"status": exc.status, "reason": exc.reason},
        status=exc.status,
    )


def _context(session: Session, **more: Any) -> dict[str, Any]:
    return {"session": session, "csrf": session.csrf, **more}


@html_errors
async def me(request: Request) -> Response:
    """A member's own page: who they are here, and the ballots they cast."""
    session = await sessions.require(request)
    node = node_of(request)
    actor_uri = node.urls.actor(session.username)
    member = await node.db.read(lambda conn: members_service.get_member(conn, session.member_id))
    cast, sent_elsewhere = await reading.ballots_of(node, actor_uri, session.actor_id)
    sent = [_sent(s) for s in sent_elsewhere]
    response = render.page(
        request,
        i18n.choose_language(request),
        "me.html",
        _context(session, member=member, ballots=cast, sent=sent),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _sent(sent: SentElsewhere) -> dict[str, Any]:
    return {
        "key": sent.key,
        "title": sent.title or sent.host,
        "host": urlsplit(sent.host).netloc,
        "choices": sent.choices,
        "sent_at": sent.sent_at,
    }


async def _members_page(
    request: Request,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    error: Invalid | None = None,
    added: str | None = None,
) -> Response:
    node = node_of(request)

    def read(conn: Any) -> tuple[list[members_service.Member], list[members_service.College]]:
        return (
            members_service.list_members(conn, limit=MEMBERS_SHOWN),
            members_service.list_colleges(conn),
        )

    found, colleges = await node.db.read(read)
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_members.html",
        _context(
            session,
            members=found,
            colleges=colleges,
            roles=("member", "observer", "admin"),
            form=form or {},
            error=error,
            added=added,
        ),
        status=400 if error is not None else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@html_errors
async def admin_members(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    added = request.query_params.get("added")
    return await _members_page(request, session, added=added[:320] if added else None)


@html_errors
async def admin_add_member(request: Request) -> Response:
    """The add-a-member form: a local member (name, password) or a remote one (handle)."""
    session = await sessions.require(request, "admin")
    form = await sessions.read_form(request, session)
    sent = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    data: dict[str, Any] = {}
    if sent.get("remote"):
        data["remote"] = sent["remote"]
        for key in ("role", "college", "joined_at"):
            if sent.get(key):
                data[key] = sent[key]
    else:
        for key in ADD_FIELDS:
            if sent.get(key):
                data[key] = form.get(key) if key == "password" else sent[key]
        if "username" not in data:
            error = Invalid("a member needs a name here, or a remote handle", field="username")
            return await _members_page(request, session, form=sent, error=error)
    try:
        member, _ = await add_member(node_of(request), data)
    except Invalid as exc:
        sent.pop("password", None)
        return await _members_page(request, session, form=sent, error=exc)
    except NodeError as exc:  # a handle that does not resolve, a name taken
        sent.pop("password", None)
        return await _members_page(
            request, session, form=sent, error=Invalid(exc.reason, field="remote")
        )
    return RedirectResponse(f"/admin/members?added={member.handle}", status_code=303)
