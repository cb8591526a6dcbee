"""What the layers in front of every request cost, alone, in one process: the
proxy-header check and the slow-body watch (node/web/proxies.py, node/web/slowbodies.py),
around an app that reads a 600-byte body and answers 202, as the shared inbox does.

    .venv/bin/python bench/front_layers.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.web.proxies import ProxyHeadersMiddleware
from node.web.slowbodies import SlowBodyMiddleware

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/activity+json"),
    (b"content-length", b"600"),
    (b"date", b"Sat, 05 Dec 2026 17:00:00 GMT"),
    (b"digest", b"SHA-256=" + b"x" * 44),
    (b"signature", b"keyId=" + b"z" * 400),
]


async def inbox_like(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def receive() -> Message:
    return {"type": "http.request", "body": b"x" * 600, "more_body": False}


async def send(message: Message) -> None:
    return None


async def per_request(app: ASGIApp, count: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            scope = {
                "type": "http",
                "client": ("127.0.0.1", 50000),
                "headers": HEADERS,
                "path": "/inbox",
                "method": "POST",
            }
            await app(scope, receive, send)
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


async def main() -> None:
    count = 50_000
    slow = SlowBodyMiddleware(inbox_like, grace=10, min_rate=4096)
    cases: list[tuple[str, ASGIApp]] = [
        ("the app alone", inbox_like),
        ("with the proxy-header check", ProxyHeadersMiddleware(inbox_like, trusted=["127.0.0.1"])),
        ("with the slow-body watch", slow),
        ("with both", ProxyHeadersMiddleware(slow, trusted=["127.0.0.1"])),
    ]
    plain = 0.0
    for name, app in cases:
        cost = await per_request(app, count)
        plain = plain or cost
        print(f"{name:30} {cost:6.2f} µs a request  (+{cost - plain:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
