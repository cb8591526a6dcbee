"""Several real nodes in one process, wired by host name.

Each node is a real app with its own database; a request from one node to
``https://beta.test/...`` goes through httpx's ASGI transport straight into beta's app,
so federation travels the real code path (real documents, real signatures) without a
socket. All nodes read one injected clock, which tests move instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from federation.clock import ManualClock
from node.app import create_app
from node.runtime import Node
from node.services.setup import create_coop, migrate_database
from node.settings import Settings
from node.storage.database import Database

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


class HostRouter(httpx.AsyncBaseTransport):
    """Routes each request to the app registered for its host (and port)."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        # Every request that went through, as (method, url): tests assert what a node
        # fetched (or that it fetched nothing).
        self.log: list[tuple[str, str]] = []
        # URLs that fail as a server down would (a refused connection), for a while.
        self.down: set[str] = set()

    def add(self, host: str, app: Starlette) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, str(request.url)))
        if str(request.url) in self.down:
            raise httpx.ConnectError(f"{request.url} is down", request=request)
        host = request.url.netloc.decode("ascii")
        transport = self.apps.get(host)
        if transport is None:
            raise httpx.ConnectError(f"no test node answers for {host}", request=request)
        return await transport.handle_async_request(request)


@dataclass
class TestNode:
    __test__ = False  # a helper, not a test class
    settings: Settings
    app: Starlette
    token: str
    http: httpx.AsyncClient

    @property
    def node(self) -> Node:
        node = self.app.state.node
        assert isinstance(node, Node)
        return node

    @property
    def base(self) -> str:
        return self.settings.base_url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(self.base + path, **kwargs)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, self.base + path, **kwargs)

    async def decide_domain(self, host: str, policy: str) -> None:
        """Block or allow ``host`` as the admin would, effective at once."""
        from node.delivery.worker import refresh_domains
        from node.services import domains

        now = self.node.clock.now()
        await self.node.db.write(lambda c: domains.set_policy(c, host, policy, reason="", now=now))
        await refresh_domains(self.node)


@dataclass
class Network:
    root: Path
    database_url: Callable[[str], str]
    clock: ManualClock = field(default_factory=lambda: ManualClock(START))
    router: HostRouter = field(default_factory=HostRouter)
    nodes: dict[str, TestNode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(transport=self.router, follow_redirects=False)
        self._stack = contextlib.AsyncExitStack()

    async def add(
        self, domain: str, *, name: str | None = None, handle: str = "coop", **options: Any
    ) -> TestNode:
        """A node at ``domain``; ``options`` are further settings (``follow_policy``...)."""
        settings = Settings(
            data_dir=self.root / domain,
            domain=domain,
            name=name or f"Co-op {domain}",
            handle=handle,
            database_url=self.database_url(domain),
            **options,
        )
        settings.data_dir.mkdir(parents=True)
        migrate_database(settings.database_url)
        db = Database(settings.database_url, readers=1)
        try:
            token = create_coop(settings, db, self.clock)
        finally:
            db.close()
        app = create_app(settings, http=self.http, clock=self.clock, run_workers=False)
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        self.router.add(domain, app)
        test_node = TestNode(settings=settings, app=app, token=token, http=self.http)
        self.nodes[domain] = test_node
        return test_node

    async def settle(self, rounds: int = 20) -> int:
        """Run every node's inbox, delivery, backfill and governance workers until none
        has work left (the clock does not move: retries scheduled for later stay queued).
        Returns how many items were handled."""
        from node.delivery import worker as delivery_worker
        from node.governance import worker as governance_worker
        from node.inbox import worker as inbox_worker
        from node.mail import worker as mail_worker
        from node.networks import worker as networks_worker
        from node.offers import backfill
        from node.orders import worker as orders_worker

        handled = 0
        for _ in range(rounds):
            done = 0
            for test_node in list(self.nodes.values()):
                done += await inbox_worker.run_once(test_node.node)
                done += await delivery_worker.run_once(test_node.node)
                done += await backfill.run_once(test_node.node)
                done += await governance_worker.run_once(test_node.node)
                done += await orders_worker.run_once(test_node.node)
                done += await networks_worker.run_once(test_node.node)
                done += await mail_worker.run_once(test_node.node)
            handled += done
            if done == 0:
                return handled
        raise AssertionError(f"the network did not settle in {rounds} rounds")

    def add_static(self, domain: str, documents: dict[str, dict[str, Any]]) -> None:
        """A peer that serves fixed ActivityStreams documents by path: a hostile or odd
        server whose answers a test controls exactly."""

        async def serve(scope: Any, receive: Any, send: Any) -> None:
            document = documents.get(scope["path"])
            status = 200 if document is not None else 404
            body = json.dumps(document or {"error": "not found"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/activity+json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

        self.router.apps[domain] = httpx.ASGITransport(app=serve)

    async def aclose(self) -> None:
        await self._stack.aclose()
        await self.http.aclose()
