"""No URL with a NUL reaches a route.

A NUL is never part of a key, a username or a search, and PostgreSQL cannot hold one in
a text value: a path or query string with one (``%00``) would fail deep in a query, on
one engine only, with a 500. It is refused here instead, with a 400 that says why.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from node.web.responses import error

REASON = "the URL holds a NUL character (%00)"


def has_nul(scope: Scope) -> bool:
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    return "\x00" in path or b"\x00" in query or b"\x00" in unquote_to_bytes(query)


class NulUrlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_nul(scope):
            await error(400, "bad_request", REASON)(scope, receive, send)
            return
        await self.app(scope, receive, send)
