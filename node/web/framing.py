"""Pages are never shown inside another site's frame.

A page in a hidden frame can be made to take a member's clicks for the attacker's
(a vote, an admin's "accept"): every HTML response says it may not be framed, with
``Content-Security-Policy: frame-ancestors 'none'`` for current browsers and
``X-Frame-Options: DENY`` for older ones. A policy the response already sends is kept,
with the directive added to it. JSON and images are left as they are: they are not
pages, and the media route sends its own policy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = b"frame-ancestors 'none'"
_PAGE_TYPES = (b"text/html", b"application/xhtml+xml")


def framing_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` of an HTML response with framing forbidden; others unchanged."""
    kind = next((value for name, value in headers if name == b"content-type"), b"")
    if not kind.lower().startswith(_PAGE_TYPES):
        return headers
    policy: bytes | None = None
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name == b"content-security-policy" and policy is None:
            policy = value
        elif name != b"x-frame-options":
            kept.append((name, value))
    if policy is None or not policy.strip():
        policy = FRAME_ANCESTORS
    elif b"frame-ancestors" not in policy.lower():
        policy = policy.rstrip().rstrip(b";") + b"; " + FRAME_ANCESTORS
    return [*kept, (b"content-security-policy", policy), (b"x-frame-options", b"DENY")]


class FramingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_unframed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = framing_headers(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_unframed)
