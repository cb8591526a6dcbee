"""``GET /metrics`` for a monitoring system, and the timing of every request by route.

The page is off by default (404, as if there were none). With ``metrics = "loopback"``
it answers clients on this machine that come straight to the node, not through the
reverse proxy (a request the proxy forwards names its client in ``X-Forwarded-For``, or
``Forwarded``); with ``metrics = "token"`` it answers whoever sends
``Authorization: Bearer`` and the ``metrics_token``.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from node.services import metrics
from node.web.responses import error, node_of

_PROXIED = ("x-forwarded-for", "forwarded")


async def metrics_page(request: Request) -> Response:
    node = node_of(request)
    settings = node.settings
    if settings.metrics == "off":
        return error(404, "not_found", "metrics are off (the metrics setting)")
    if settings.metrics == "loopback" and not _local_and_direct(request):
        return error(403, "forbidden", "metrics are shown to this machine's clients only")
    if settings.metrics == "token" and not _bearer_matches(request, settings.metrics_token):
        response = error(401, "unauthorized", "metrics need the metrics token as a bearer token")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    now = node.clock.now()
    depths = await node.db.read(lambda conn: metrics.read_depths(conn, now=now))
    return Response(metrics.exposition(depths), media_type=metrics.CONTENT_TYPE)


def _local_and_direct(request: Request) -> bool:
    if any(name in request.headers for name in _PROXIED):
        return False
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class RouteTiming:
    """Times each HTTP request and files it under the template of the route that
    answered it (``/offers/{key}``), read from the endpoint the router chose; a request
    no route matched is filed under ``unmatched``. Placed innermost, next to the
    router, whose choice it reads from the scope it shares."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if self.templates is None:
                self.templates = templates_of(scope["app"].routes)
            endpoint = scope.get("endpoint")
            route = "unmatched" if endpoint is None else self.templates.get(id(endpoint))
            metrics.REQUEST_SECONDS.labels(route or "unmatched").observe(
                time.perf_counter() - start
            )


def templates_of(routes: list[BaseRoute]) -> dict[int, str]:
    """Each endpoint's route template (the first route that names it), by identity."""
    templates: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Route):
            templates.setdefault(id(route.endpoint), route.path)
        elif isinstance(route, Mount):
            templates.setdefault(id(route.app), route.path + "/{path}")
    return templates
