"""Pages behind the login: a member's own page, and the admin's members page.

Every handler here starts with :func:`node.web.ui.sessions.require` and the role it
needs, and every form it takes goes through :func:`~node.web.ui.sessions.read_form`
(same site, size, token). Refusals are pages too: a member without the role gets a
403 page, a form that does not check out a 403 or 413 page, an invalid entry the form
again with the message next to the field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import desc, func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.errors import BadRequest, Forbidden, Invalid, NodeError, TooLarge
from node.members import store as members_service
from node.members.actions import add_member
from node.services.sessions import Session
from node.storage.tables import ballots, proposals, remote_proposals, sent_ballots
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

    def read(
        conn: Any,
    ) -> tuple[members_service.Member, list[dict[str, Any]], list[dict[str, Any]]]:
        member = members_service.get_member(conn, session.member_id)
        rows = conn.execute(
            select(
                proposals.c.key,
                proposals.c.title,
                proposals.c.state.label("proposal_state"),
                ballots.c.choices,
                ballots.c.cast_at,
                ballots.c.state,
            )
            .select_from(ballots.join(proposals, proposals.c.id == ballots.c.proposal_id))
            .where(ballots.c.voter == actor_uri)
            .order_by(desc(ballots.c.cast_at))
            .limit(50)
        ).mappings()
        # Ballots sent to shared proposals hosted by other co-ops: the last per proposal.
        latest = (
            select(func.max(sent_ballots.c.id))
            .where(sent_ballots.c.actor_id == session.actor_id)
            .group_by(sent_ballots.c.proposal_id)
        )
        sent = conn.execute(
            select(
                remote_proposals.c.key,
                remote_proposals.c.document,
                remote_proposals.c.host,
                sent_ballots.c.choices,
                sent_ballots.c.sent_at,
            )
            .select_from(
                sent_ballots.join(
                    remote_proposals, remote_proposals.c.id == sent_ballots.c.proposal_id
                )
            )
            .where(sent_ballots.c.id.in_(latest))
            .order_by(desc(sent_ballots.c.sent_at))
            .limit(50)
        ).mappings()
        return member, [dict(r) for r in rows], [_sent(r) for r in sent]

    member, cast, sent = await node.db.read(read)
    for ballot in cast:
        ballot["choices"] = _choices(ballot["choices"])
    response = render.page(
        request,
        i18n.choose_language(request),
        "me.html",
        _context(session, member=member, ballots=cast, sent=sent),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _sent(row: Any) -> dict[str, Any]:
    try:
        document = json.loads(row["document"])
        title = document.get("name") if isinstance(document, dict) else None
    except ValueError:
        title = None
    return {
        "key": row["key"],
        "title": title if isinstance(title, str) and title else row["host"],
        "host": urlsplit(row["host"]).netloc,
        "choices": _choices(row["choices"]),
        "sent_at": row["sent_at"],
    }


def _choices(raw: Any) -> list[str]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [str(c) for c in value] if isinstance(value, list) else []


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
