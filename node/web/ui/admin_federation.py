"""The admin's federation page and queues page.

``/admin/federation`` shows whom the co-op follows (with the import of their offers),
who follows it (approving or refusing those waiting), the domains the admin blocked or
allowed, and how deliveries to each peer fare. ``/admin/queues`` shows the delivery and
inbox queues. Every form goes through :func:`node.web.ui.sessions.read_form` and needs
the admin role; an invalid entry shows the page again with the message next to the
field (400), and nothing changes.

What the pages show is read by :mod:`node.follows.overview` and
:mod:`node.services.queues`, in one unit of work each.
"""

from __future__ import annotations

from collections.abc import Awaitable
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from federation.errors import FederationError
from federation.inbox import host_of
from federation.webfinger import WebFingerError
from node.delivery.worker import refresh_domains
from node.errors import Invalid, NodeError
from node.follows import actions, overview
from node.runtime import Node
from node.services import domains as domain_service
from node.services import queues
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors

MAX_TARGET = 2048
MAX_REASON = 500
DOMAIN_ACTIONS = {
    "block": domain_service.BLOCKED,
    "allow": domain_service.ALLOWED,
    "clear": "",
}
NOTICES = ("followed", "unfollowed", "approved", "refused", "blocked", "allowed", "cleared")


# --- pages ------------------------------------------------------------------------------


async def _federation_page(
    request: Request,
    session: Session,
    *,
    error: Invalid | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    node = node_of(request)
    coop_id = node.peers.coop_id
    view = await node.db.read(lambda conn: overview.read_federation(conn, coop_id))
    done = request.query_params.get("done") if error is None else None
    subject = request.query_params.get("subject", "")[:MAX_TARGET] if done else ""
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_federation.html",
        {
            "session": session,
            "csrf": session.csrf,
            "view": view,
            "allow_list_mode": node.settings.federation == "allowlist",
            "follow_policy": node.settings.follow_policy,
            "done": done if done in NOTICES else None,
            "subject": subject,
            "error": error,
            "form": form or {},
            # Reloads itself while an import runs, to show its progress.
            "refresh": view.importing and error is None,
        },
        status=400 if error is not None else 200,
    )
    return render.no_store(response)


def _done(notice: str, subject: str) -> Response:
    query = urlencode({"done": notice, "subject": subject})
    return RedirectResponse(f"/admin/federation?{query}", status_code=303)


@html_errors
async def federation_page(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    return await _federation_page(request, session)


@html_errors
async def follow(request: Request) -> Response:
    """Follow a co-op by handle or URL: a Follow is sent, the follow waits for the answer."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    target = sent.get("target", "")
    node = node_of(request)

    def refuse(reason: str) -> Awaitable[Response]:
        error = Invalid(reason, field="target")
        return _federation_page(request, session, error=error, form={"target": target})

    if not target:
        return await refuse("give the co-op's handle (coop@example.org) or its address")
    if len(target) > MAX_TARGET:
        return await refuse("this address is too long")
    try:
        result = await actions.follow(node, target.removeprefix("@"))
    except (NodeError, FederationError) as exc:
        return await refuse(exc.reason)
    except (WebFingerError, ValueError, httpx.HTTPError) as exc:
        return await refuse(str(exc) or type(exc).__name__)
    if not result.sent:
        return await refuse(f"this co-op already follows {result.followed} (or asked to)")
    return _done("followed", result.followed)


@html_errors
async def unfollow(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    followed = sent.get("followed", "")
    if not followed.startswith(("https://", "http://")) or len(followed) > MAX_TARGET:
        error = Invalid("choose a co-op from the list", field="followed")
        return await _federation_page(request, session, error=error)
    try:
        await actions.unfollow(node_of(request), followed)
    except NodeError as exc:
        return await _federation_page(request, session, error=Invalid(exc.reason, field="followed"))
    return _done("unfollowed", followed)


@html_errors
async def answer_follower(request: Request) -> Response:
    """Approve a pending follower (Accept), or refuse or remove one (Reject)."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    follower = sent.get("follower", "")
    decision = sent.get("decision", "")
    if decision not in ("approve", "refuse") or not follower or len(follower) > MAX_TARGET:
        error = Invalid("choose a follower and approve or refuse it", field="follower")
        return await _federation_page(request, session, error=error)
    try:
        await actions.answer_follower(node_of(request), follower, accept=decision == "approve")
    except NodeError as exc:
        return await _federation_page(request, session, error=Invalid(exc.reason, field="follower"))
    return _done("approved" if decision == "approve" else "refused", follower)


@html_errors
async def decide_domain(request: Request) -> Response:
    """Block, allow or clear a domain; a block also cuts the domain off at once."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    action = sent.get("action", "")
    reason = sent.get("reason", "")
    node = node_of(request)

    def refuse(message: str, field: str = "host") -> Awaitable[Response]:
        error = Invalid(message, field=field)
        return _federation_page(request, session, error=error, form=sent)

    if action not in DOMAIN_ACTIONS:
        return await refuse("choose to block, allow or clear the domain", "action")
    if len(reason) > MAX_REASON:
        return await refuse(f"a reason is at most {MAX_REASON} characters", "reason")
    try:
        host = domain_service.normalise(sent.get("host", ""))
    except ValueError:
        return await refuse("give a domain, such as example.org")
    if len(host) > 255 or "@" in host or not all(c.isalnum() or c in ".-:[]" for c in host):
        return await refuse(f"{host} is not a domain")
    if action == "block" and host == host_of(node.settings.base_url).lower():
        return await refuse("this node cannot block its own domain")
    await _set_policy(node, host, DOMAIN_ACTIONS[action], "" if action == "clear" else reason)
    notice = {"block": "blocked", "allow": "allowed", "clear": "cleared"}[action]
    return _done(notice, host)


async def _set_policy(node: Node, host: str, policy: str, reason: str) -> None:
    """The decision stored, then this process's policy reloaded at once (a separate
    worker process reloads its own within a few seconds)."""
    now = node.clock.now()
    await node.db.write(
        lambda conn: domain_service.set_policy(conn, host, policy, reason=reason, now=now)
    )
    await refresh_domains(node)
    node.delivery_wakeup.set()


@html_errors
async def queues_page(request: Request) -> Response:
    await sessions.require(request, "admin")
    node = node_of(request)
    found = await node.db.read(queues.read_queues)
    context = {
        "delivery_counts": found.delivery_counts,
        "inbox_counts": found.inbox_counts,
        "oldest": found.oldest,
        "failures": found.failures,
        "refused": found.refused,
        "counted_rows": queues.COUNTED_ROWS,
        "shown": queues.LATEST_SHOWN,
    }
    response = render.page(request, i18n.choose_language(request), "admin_queues.html", context)
    return render.no_store(response)


routes: list[BaseRoute] = [
    Route("/admin/federation", federation_page, methods=["GET"]),
    Route("/admin/federation/follow", follow, methods=["POST"]),
    Route("/admin/federation/unfollow", unfollow, methods=["POST"]),
    Route("/admin/federation/followers", answer_follower, methods=["POST"]),
    Route("/admin/federation/domains", decide_domain, methods=["POST"]),
    Route("/admin/queues", queues_page, methods=["GET"]),
]
