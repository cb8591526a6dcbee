"""The networks of co-ops in the browser: the public directory of each network hosted
here, and the admin's page for the networks the node hosts and those the co-op belongs
to.

- ``GET /networks/NAME``: the directory of a hosted network: its members by sector,
  narrowed by sector, region and words (``q``), page by page, with the network's
  charter and how to apply. The same URL answers JSON to programs: ``?format=json``,
  or any client that does not ask for a page (as the actors' URLs decide).
- ``GET /networks/NAME/member?coop=ACTOR``: one member in the directory, with the
  offers the network relayed for it, linked at their origin.
- ``GET /admin/networks``: the networks hosted here (create one; approve, refuse or
  remove co-ops) and the co-op's own memberships (join one, leave one, each one's
  roster).
- ``POST /admin/networks``, ``/admin/networks/NAME/members``, ``/admin/networks/join``
  and ``/admin/networks/leave``: its forms, each with the session's token, for admins.

The pages load nothing from another server: no map tiles, fonts or scripts. The only
links away from the node are to the members' own actors and offers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from federation.errors import FederationError
from federation.mediatypes import wants_html
from federation.webfinger import WebFingerError
from node.errors import Invalid, NodeError, NotFound
from node.networks import documents, hosting, joining, reading
from node.networks.model import (
    REASON_MAX,
    REGION_MAX,
    SECTOR_MAX,
    Member,
    Membership,
    RosterEntry,
    State,
)
from node.networks.reading import DIRECTORY_PAGE
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors

SEARCH_MAX = 200
MAX_TARGET = 2048
# Far beyond any network's pages: an offset no database needs to compare.
PAGE_MAX = 10_000
DECISIONS = ("approve", "refuse", "remove")
NOTICES = ("created", "approved", "refused", "removed", "joined", "left")
CREATE_FIELDS = ("name", "title", "summary", "charter", "admission")
JOIN_FIELDS = ("target", "sector", "region")
LINK_REL = "nofollow noopener noreferrer"


def _wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    return not wants_html(request.headers.get("accept"))


def _json(document: dict[str, Any], *, status: int = 200) -> Response:
    # The same URL answers pages to browsers: caches must not mix them.
    return JSONResponse(document, status_code=status, headers={"Vary": "Accept"})


def web_url(url: str | None) -> str | None:
    """``url`` where a page may link it: an http(s) address, else nothing."""
    if url is None or urlsplit(url).scheme not in ("http", "https"):
        return None
    return url


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _text(request: Request, name: str, limit: int) -> str:
    value = request.query_params.get(name) or ""
    return " ".join(value.split())[:limit]


def _page_number(request: Request) -> int:
    value = request.query_params.get("page") or "1"
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        return 1
    return min(max(int(value), 1), PAGE_MAX)


# --- the directory ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as the directory's page shows it."""

    actor: str
    href: str | None
    name: str
    host: str
    sector: str
    region: str
    since: Any
    offers: int
    profile: str


def _member_view(network: str, member: Member) -> MemberView:
    return MemberView(
        actor=member.actor,
        href=web_url(member.actor),
        name=member.name or _host(member.actor),
        host=_host(member.actor),
        sector=member.sector,
        region=member.region,
        since=member.since,
        offers=member.offers,
        profile=f"/networks/{network}/member?" + urlencode({"coop": member.actor}),
    )


def _network_document(request: Request, directory: reading.Directory) -> dict[str, Any]:
    node = node_of(request)
    network = directory.network
    return {
        "name": network.name,
        "title": network.title,
        "summary": network.summary,
        "actor": node.urls.actor(network.name),
        "handle": f"@{network.name}@{node.settings.domain}",
        "directory": f"{node.urls.base}/networks/{network.name}",
        "charter": network.charter,
        "admission": str(network.admission),
        "members": directory.members_in_all,
        "offers": directory.offers_in_all,
    }


async def directory_page(request: Request) -> Response:
    """A hosted network's directory, as a page or as JSON."""
    node = node_of(request)
    name = request.path_params["name"]
    sector = _text(request, "sector", SECTOR_MAX)
    region = _text(request, "region", REGION_MAX)
    words = _text(request, "q", SEARCH_MAX)
    number = _page_number(request)
    try:
        found = await reading.directory(
            node,
            name,
            sector=sector or None,
            region=region or None,
            text=words or None,
            page=number,
        )
    except NotFound as exc:
        if _wants_json(request):
            return _json({"error": "not_found", "reason": exc.reason}, status=404)
        await sessions.current(request)
        return render.not_found(request)
    chosen = [("sector", sector), ("region", region), ("q", words)]
    kept = [(k, v) for k, v in chosen if v]
    base = f"/networks/{name}"

    def page_href(page: int, *, json: bool = False) -> str:
        query = [*kept, *([("page", str(page))] if page > 1 else [])]
        query += [("format", "json")] if json else []
        return f"{base}?{urlencode(query)}" if query else base

    has_next = number * DIRECTORY_PAGE < found.total
    if _wants_json(request):
        return _json(
            {
                "network": _network_document(request, found),
                "filters": {"sector": sector, "region": region, "q": words},
                "total": found.total,
                "page": number,
                "pageSize": DIRECTORY_PAGE,
                "next": f"{node.urls.base}{page_href(number + 1, json=True)}" if has_next else None,
                "sectors": [{"name": n, "members": c} for n, c in found.sectors],
                "regions": [{"name": n, "members": c} for n, c in found.regions],
                "members": [documents.directory_entry(m) for m in found.members],
            }
        )
    await sessions.current(request)
    choice = i18n.choose_language(request)
    return render.page(
        request,
        choice,
        "network.html",
        {
            "network": found.network,
            "handle": f"@{name}@{node.settings.domain}",
            "members": [_member_view(name, m) for m in found.members],
            "total": found.total,
            "members_in_all": found.members_in_all,
            "offers_in_all": found.offers_in_all,
            "sectors": found.sectors,
            "regions": found.regions,
            "form": {"sector": sector, "region": region, "q": words},
            "narrowed": bool(kept),
            "page": number,
            "next_href": page_href(number + 1) if has_next else None,
            "previous_href": page_href(number - 1) if number > 1 else None,
            "json_href": page_href(number, json=True),
            "link_rel": LINK_REL,
        },
    )


async def member_page(request: Request) -> Response:
    """One member of a hosted network, with the offers the network relayed for it."""
    node = node_of(request)
    name = request.path_params["name"]
    coop = (request.query_params.get("coop") or "").strip()
    network = await reading.find_network(node, name) if coop else None
    try:
        if network is None or len(coop) > MAX_TARGET:
            raise NotFound(f"no member {coop!r} of {name!r} here")
        member, offers = await reading.member_profile(node, name, coop)
    except NotFound as exc:
        if _wants_json(request):
            return _json({"error": "not_found", "reason": exc.reason}, status=404)
        await sessions.current(request)
        return render.not_found(request)
    if _wants_json(request):
        return _json(documents.directory_entry(member, offers))
    await sessions.current(request)
    return render.page(
        request,
        i18n.choose_language(request),
        "network_member.html",
        {
            "network": network,
            "member": _member_view(name, member),
            "offers": [(web_url(uri), title or _host(uri)) for uri, title in offers],
            "link_rel": LINK_REL,
        },
    )


# --- the admin's page ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostedView:
    """A network hosted here as the admin's page shows it."""

    name: str
    title: str
    admission: str
    handle: str
    waiting: list[Member]
    members: list[Member]
    ended: list[Member]


@dataclass(frozen=True, slots=True)
class MembershipView:
    """A network the co-op applied to or belongs to, with its roster if it belongs."""

    membership: Membership
    roster: list[RosterEntry]


async def _hosted_views(request: Request) -> list[HostedView]:
    node = node_of(request)
    views = []
    for network in await reading.hosted(node):
        found = await reading.applications(
            node,
            network.name,
            states=(State.PENDING, State.MEMBER, State.REFUSED, State.REMOVED),
        )
        views.append(
            HostedView(
                name=network.name,
                title=network.title,
                admission=str(network.admission),
                handle=f"@{network.name}@{node.settings.domain}",
                waiting=[m for m in found if m.state is State.PENDING],
                members=[m for m in found if m.state is State.MEMBER],
                ended=[m for m in found if m.state in (State.REFUSED, State.REMOVED)],
            )
        )
    return views


async def _membership_views(request: Request) -> list[MembershipView]:
    node = node_of(request)
    views = []
    for membership in await reading.memberships(node):
        roster: list[RosterEntry] = []
        if membership.state is State.MEMBER:
            _, roster = await reading.membership(node, membership.network)
        views.append(MembershipView(membership, roster))
    return views


async def _admin_page(
    request: Request,
    session: Session,
    *,
    error: Invalid | None = None,
    form: dict[str, str] | None = None,
    network: str | None = None,
) -> Response:
    done = request.query_params.get("done") if error is None else None
    subject = request.query_params.get("subject", "")[:MAX_TARGET] if done else ""
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_networks.html",
        {
            "session": session,
            "csrf": session.csrf,
            "hosted": await _hosted_views(request),
            "memberships": await _membership_views(request),
            "done": done if done in NOTICES else None,
            "subject": subject,
            "error": error,
            # The network a member's form was about: its error is shown there.
            "error_network": network,
            "form": form or {},
            "link_rel": LINK_REL,
            "reason_max": REASON_MAX,
            "sector_max": SECTOR_MAX,
            "region_max": REGION_MAX,
        },
        status=400 if error is not None else 200,
    )
    return render.no_store(response)


def _done(notice: str, subject: str) -> Response:
    query = urlencode({"done": notice, "subject": subject})
    return RedirectResponse(f"/admin/networks?{query}", status_code=303)


@html_errors
async def admin_networks(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    return await _admin_page(request, session)


@html_errors
async def create(request: Request) -> Response:
    """A new network hosted here, with its own actor, charter and admission rule."""
    session = await sessions.require(request, "admin")
    raw = await sessions.read_form(request, session)
    sent = render.form_fields(raw)
    form = {k: sent.get(k, "") for k in CREATE_FIELDS}
    # The texts keep their lines: the charter's paragraphs.
    for key in ("summary", "charter"):
        value = raw.get(key)
        form[key] = value if isinstance(value, str) else ""
    try:
        created = await hosting.create_network(
            node_of(request),
            name=form["name"],
            title=form["title"],
            summary=form["summary"],
            charter=form["charter"],
            admission=form["admission"] or "admin",
        )
    except Invalid as exc:
        field = exc.field if exc.field in CREATE_FIELDS else "name"
        return await _admin_page(
            request, session, error=Invalid(exc.reason, field=f"create-{field}"), form=form
        )
    except NodeError as exc:  # the name is taken
        return await _admin_page(
            request, session, error=Invalid(exc.reason, field="create-name"), form=form
        )
    return _done("created", created.name)


@html_errors
async def decide(request: Request) -> Response:
    """Approve or refuse a waiting co-op, or remove a member: each with its reason."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    name = request.path_params["name"]
    actor = sent.get("actor", "")
    decision = sent.get("decision", "")
    reason = sent.get("reason", "")
    node = node_of(request)

    def refuse(message: str, field: str = "actor") -> Awaitable[Response]:
        return _admin_page(request, session, error=Invalid(message, field=field), network=name)

    if decision not in DECISIONS or not actor or len(actor) > MAX_TARGET:
        return await refuse("choose a co-op and approve, refuse or remove it")
    try:
        if decision == "approve":
            await hosting.approve(node, name, actor)
        elif decision == "refuse":
            await hosting.refuse(node, name, actor, reason=reason)
        else:
            await hosting.remove(node, name, actor, reason=reason)
    except Invalid as exc:
        return await refuse(exc.reason, "reason" if exc.field == "reason" else "actor")
    except NodeError as exc:  # no such application, or decided meanwhile, elsewhere
        return await refuse(exc.reason)
    notice = {"approve": "approved", "refuse": "refused", "remove": "removed"}[decision]
    return _done(notice, actor)


@html_errors
async def join(request: Request) -> Response:
    """Apply to a network by handle or URL: a Join is sent, the membership waits."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    form = {k: sent.get(k, "") for k in JOIN_FIELDS}
    target = form["target"].removeprefix("@")

    def refuse(reason: str, field: str = "target") -> Awaitable[Response]:
        error = Invalid(reason, field=f"join-{field}")
        return _admin_page(request, session, error=error, form=form)

    if not target:
        return await refuse("give the network's handle (network@example.org) or its address")
    if len(target) > MAX_TARGET:
        return await refuse("this address is too long")
    try:
        result = await joining.join(
            node_of(request), target, sector=form["sector"], region=form["region"]
        )
    except Invalid as exc:
        field = exc.field if exc.field in ("sector", "region") else "target"
        return await refuse(exc.reason, field)
    except (NodeError, FederationError) as exc:
        return await refuse(exc.reason)
    except (WebFingerError, ValueError, httpx.HTTPError) as exc:
        return await refuse(str(exc) or type(exc).__name__)
    if not result.sent:
        return await refuse(f"this co-op already belongs or applied to {result.network}")
    return _done("joined", result.network)


@html_errors
async def leave(request: Request) -> Response:
    """Leave a network, or withdraw an application."""
    session = await sessions.require(request, "admin")
    sent = render.form_fields(await sessions.read_form(request, session))
    network = sent.get("network", "")
    if not network or len(network) > MAX_TARGET:
        error = Invalid("choose a network from the list", field="leave")
        return await _admin_page(request, session, error=error)
    try:
        await joining.leave(node_of(request), network)
    except NodeError as exc:
        return await _admin_page(request, session, error=Invalid(exc.reason, field="leave"))
    return _done("left", network)


ROUTES: list[Route] = [
    Route("/networks/{name}", directory_page, methods=["GET"]),
    Route("/networks/{name}/member", member_page, methods=["GET"]),
    Route("/admin/networks", admin_networks, methods=["GET"]),
    Route("/admin/networks", create, methods=["POST"]),
    Route("/admin/networks/join", join, methods=["POST"]),
    Route("/admin/networks/leave", leave, methods=["POST"]),
    Route("/admin/networks/{name}/members", decide, methods=["POST"]),
]
