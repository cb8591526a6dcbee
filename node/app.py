"""The application factory: one Starlette app per node, owning its resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from federation.clock import Clock
from federation.errors import FederationError
from node.clock import node_clock
from node.errors import NodeError, SchemaOutdated
from node.runtime import Node, Poller, make_http_client
from node.services.setup import check_schema
from node.settings import Settings
from node.storage.database import Database
from node.storage.migrate import SchemaState
from node.web import (
    actors,
    api,
    comments,
    contexts,
    discovery,
    doctor,
    inbox,
    mail_api,
    media,
    members,
    metrics,
    networks_api,
    offers,
    orders,
    proposals,
)
from node.web.framing import FramingMiddleware
from node.web.nul_urls import NulUrlMiddleware
from node.web.proxies import ProxyHeadersMiddleware
from node.web.responses import error_answer
from node.web.slowbodies import SlowBodyMiddleware
from node.web.ui import (
    admin_federation,
    admin_proposals,
    audit_page,
    mail_pages,
    member_pages,
    network_pages,
    offer_pages,
    order_pages,
    proposal_pages,
    shared_pages,
    thread_pages,
)
from node.web.ui import pages as ui_pages
from node.web.ui import sessions as ui_sessions
from node.workers import default_pollers, run_poller


def create_app(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    run_workers: bool = True,
    pollers: tuple[Poller, ...] | None = None,
) -> Starlette:
    """A node's app. Nothing is opened until the lifespan starts.

    ``http`` and ``clock`` are injected by tests (several nodes wired in one process);
    by default the node makes its own client and reads the system clock, moved by
    ``COOPNODE_CLOCK_OFFSET`` if set (read here, so that a bad value stops the start).
    The workers run inside the app's event loop unless ``run_workers`` is false (tests
    drive them round by round; PostgreSQL deployments may run them as ``coopnode worker``).
    ``pollers`` replaces the default loops (a process hosting many nodes polls less).
    """
    node_time = clock if clock is not None else node_clock()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if check_schema(settings.database_url) is not SchemaState.CURRENT:
            raise SchemaOutdated("the database has no coopnode schema: run `coopnode migrate`")
        db = Database(settings.database_url)
        db.writer.start()
        client = http if http is not None else make_http_client(settings)
        node = Node(settings=settings, db=db, http=client, clock=node_time)
        app.state.node = node
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_poller(node, poller, stop), name=f"worker-{poller.name}")
            for poller in (
                (default_pollers() if pollers is None else pollers) if run_workers else ()
            )
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            if http is None:
                await client.aclose()
            db.close()

    app = NodeApp(
        settings,
        routes=[
            Route("/.well-known/webfinger", discovery.webfinger_endpoint),
            Route("/.well-known/host-meta", discovery.host_meta),
            Route("/.well-known/nodeinfo", discovery.nodeinfo_links),
            Route("/nodeinfo/2.1", discovery.nodeinfo_document),
            Route("/actors/{username}", actors.actor),
            Route("/actors/{username}/inbox", inbox.actor_inbox, methods=["POST"]),
            Route("/inbox", inbox.shared_inbox, methods=["POST"]),
            Route("/actors/{username}/outbox", actors.outbox),
            Route("/actors/{username}/followers", actors.followers),
            Route("/actors/{username}/following", actors.following),
            Route("/@{username}", actors.profile),
            Route("/ns/{name}", contexts.context_file),
            Route("/api/v1/node", api.node_info),
            Route("/api/v1/profile", api.update_profile, methods=["PATCH"]),
            Route("/api/v1/lookup", api.lookup),
            *orders.routes,
            *mail_api.routes,
            *comments.routes,
            *networks_api.ROUTES,
            Route("/metrics", metrics.metrics_page),
            Route("/doctor/probe/{nonce}", doctor.probe, methods=["GET", "POST"]),
            # Ahead of the routes with a {key}: /offers/new is not an offer.
            *offer_pages.routes,
            *order_pages.routes,
            *mail_pages.routes,
            *admin_federation.routes,
            *network_pages.ROUTES,
            *admin_proposals.routes,
            *thread_pages.routes,
            Route("/", ui_pages.home),
            Route("/catalogue", ui_pages.catalogue_page),
            Route("/catalogue/offers/{offer_id:int}", ui_pages.catalogue_offer),
            Route("/offers/{key}", ui_pages.offer),
            ui_pages.static_mount,
            Route("/login", ui_sessions.login_form, methods=["GET"]),
            Route("/login", ui_sessions.login, methods=["POST"]),
            Route("/logout", ui_sessions.logout, methods=["POST"]),
            Route("/me", member_pages.me),
            Route("/admin/members", member_pages.admin_members, methods=["GET"]),
            Route("/admin/members", member_pages.admin_add_member, methods=["POST"]),
            Route("/offers/{key}", offers.offer_object),
            Route("/offers/{key}/note", offers.offer_note),
            Route("/actors/{username}/offers", offers.offers_collection),
            Route("/api/v1/offers", offers.create, methods=["POST"]),
            # Ahead of /api/v1/offers/{key}: these two are lists, not offers.
            Route("/api/v1/offers/categories", api.offer_categories, methods=["GET"]),
            Route("/api/v1/offers/units", api.offer_units, methods=["GET"]),
            Route("/api/v1/offers/{key}", offers.show, methods=["GET"]),
            Route("/api/v1/offers/{key}", offers.update, methods=["PATCH"]),
            Route("/api/v1/offers/{key}", offers.withdraw, methods=["DELETE"]),
            Route("/api/v1/catalogue", offers.search),
            Route("/tags/{slug}", offers.tag),
            Route("/api/v1/media", media.upload, methods=["POST"]),
            Route("/media/{name}", media.serve_file),
            Route("/actors/{username}/members", members.roster),
            Route("/api/v1/members", members.list_members, methods=["GET"]),
            Route("/api/v1/members", members.create, methods=["POST"]),
            Route("/api/v1/members/{member_id}", members.show, methods=["GET"]),
            Route("/api/v1/members/{member_id}", members.change, methods=["PATCH"]),
            Route("/api/v1/members/{member_id}", members.remove, methods=["DELETE"]),
            Route("/api/v1/members/{member_id}/confirm", members.confirm, methods=["POST"]),
            Route("/api/v1/members/{member_id}/tokens", members.create_token, methods=["POST"]),
            Route("/api/v1/colleges", members.colleges, methods=["GET", "PUT"]),
            Route("/api/v1/login", members.login, methods=["POST"]),
            Route("/proposals", proposal_pages.proposals_list),
            Route("/proposals/{key}", proposal_pages.proposal),
            Route("/proposals/{key}/vote", proposal_pages.vote, methods=["POST"]),
            Route("/proposals/{key}/counts", proposal_pages.counts),
            Route("/proposals/{key}/audit", audit_page.proposal_audit),
            Route("/proposals/shared/{key}", shared_pages.shared_proposal),
            Route("/proposals/shared/{key}/vote", shared_pages.shared_vote, methods=["POST"]),
            Route("/proposals/shared/{key}/counts", shared_pages.shared_counts),
            Route("/proposals/shared/{key}/audit", audit_page.shared_audit),
            Route("/proposals/{key}/outcome", proposals.outcome),
            Route("/proposals/{key}/ballots", proposals.ballots_collection),
            Route("/proposals/{key}/electorate", proposals.electorate),
            Route("/proposals/{key}/voters", proposals.voters),
            Route("/proposals/{key}/subtotals", proposals.subtotals_collection),
            Route("/actors/{username}/proposals", proposals.proposals_collection),
            Route("/api/v1/proposals", proposals.list_all, methods=["GET"]),
            Route("/api/v1/proposals", proposals.create, methods=["POST"]),
            Route("/api/v1/proposals/invitations", proposals.invitations, methods=["GET"]),
            Route("/api/v1/proposals/{key}", proposals.show, methods=["GET"]),
            Route("/api/v1/proposals/{key}/votes", proposals.vote, methods=["POST"]),
            Route("/api/v1/proposals/{key}/decline", proposals.decline, methods=["POST"]),
            Route("/api/v1/proposals/{key}/accept", proposals.accept, methods=["POST"]),
        ],
        lifespan=lifespan,
        # Innermost, the timing by route: it reads the route the router chose.
        middleware=[
            Middleware(FramingMiddleware),
            Middleware(NulUrlMiddleware),
            Middleware(metrics.RouteTiming),
        ],
        exception_handlers={
            NodeError: _error_answer,
            FederationError: _error_answer,
            ui_sessions.LoginRequired: _login_required,
        },
    )
    app.state.settings = settings
    return app


class NodeApp(Starlette):
    """The node's Starlette app, with the shared inbox served ahead of the middleware
    and router: peers' deliveries are the requests that come by the thousand.

    Ahead of both, every request meets the connection's rules, from the settings: the
    client's address is taken from ``X-Forwarded-For`` only when a trusted proxy sends
    it, and a body must keep up a minimum pace (:mod:`node.web.slowbodies`)."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        paced = SlowBodyMiddleware(
            self._dispatch, grace=settings.body_grace, min_rate=settings.body_min_rate
        )
        self._front = ProxyHeadersMiddleware(paced, trusted=settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/inbox" and scope["method"] == "POST":
            scope["app"] = self
            await inbox.shared_inbox_lane(self.state.node, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _error_answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NodeError | FederationError)
    return error_answer(exc)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ui_sessions.LoginRequired)
    return ui_sessions.login_redirect(exc)
