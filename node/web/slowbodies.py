"""Request bodies that arrive too slowly are cut off.

uvicorn waits for a request's body as long as the sender likes. Facing the network
directly, a client that sends a byte every few seconds would hold a connection, and the
request half read, for as long as it pleased; a few thousand such clients hold them all
(a "slow loris"). Here a body may take ``grace`` seconds at any pace, the wait for its
first byte included; after that it must have averaged ``min_rate`` bytes a second since
the request began. A body that falls behind is cut off: the app's read fails as if the
client had left, the client is answered 408 with ``Connection: close`` if nothing was
answered yet, and the connection is closed.

It is always on: behind a proxy that buffers bodies (nginx does by default) it never
fires. A read of the body costs a dictionary entry, not a timer: one sweeper a process
looks over the reads in progress a few times a second (at most once a second) and
cancels those past their deadline, so a cut comes up to one sweep late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.errors import NodeError

log = logging.getLogger(__name__)


async def _nothing() -> None:
    return None


class BodyTooSlow(ClientDisconnect, NodeError):
    """Raised to the app from ``receive``: the body fell behind the minimum rate. A
    :class:`ClientDisconnect`, so that code which stops for a departed client stops;
    whatever the app answers gives way to the middleware's 408."""

    status = 408
    code = "request_timeout"

    def __init__(self) -> None:
        NodeError.__init__(self, "the body came too slowly")


def body_deadline(started: float, received: int, *, grace: float, min_rate: float) -> float:
    """The latest time the body's next bytes may arrive: the end of the grace, or the
    moment the bytes received so far stop meeting the minimum average, if later."""
    return started + max(grace, received / min_rate)


@dataclass(slots=True)
class _Body:
    started: float
    received: int = 0
    complete: bool = False
    cut: bool = False
    answered: bool = False


class SlowBodyMiddleware:
    def __init__(self, app: ASGIApp, *, grace: float, min_rate: float) -> None:
        self.app = app
        self.grace = grace
        self.min_rate = min_rate
        self._period = min(1.0, grace / 4)
        # The tasks waiting for a body's next bytes, and those bodies.
        self._reading: dict[asyncio.Task[object], _Body] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(started=time.monotonic())

        async def timed_receive() -> Message:
            if body.cut:
                raise BodyTooSlow
            if body.complete:  # what follows the body is the disconnect, which may come late
                return await receive()
            task = asyncio.current_task()
            assert task is not None
            self._reading[task] = body
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.create_task(self._sweep(), name="slow-bodies")
            try:
                message = await receive()
            except asyncio.CancelledError:
                if not body.cut:
                    raise
                task.uncancel()  # the sweeper's cancellation, spent here
                self._report(scope, body)
                raise BodyTooSlow from None
            finally:
                del self._reading[task]
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                body.complete = not message.get("more_body", False)
            return message

        def watched_send(message: Message) -> Awaitable[None]:
            # A plain function handing on send's awaitable: one frame less per message.
            if body.cut:  # the app's answer to the cut (a 500, say) gives way to the 408
                return _nothing()
            if message["type"] == "http.response.start":
                body.answered = True
            return send(message)

        with contextlib.suppress(BodyTooSlow):  # answered below
            await self.app(scope, timed_receive, watched_send)
        if body.cut and not body.answered:
            await self._too_slow(scope, receive, send)

    async def _too_slow(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "error": "request_timeout",
                "reason": f"the body came too slowly: after {self.grace:g} s it must "
                f"average {self.min_rate:g} bytes a second",
            },
            status_code=408,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _sweep(self) -> None:
        """Cancel the reads past their deadline; stop when a sweep finds no read in
        progress (the next read starts another: at most one start a period)."""
        while True:
            await asyncio.sleep(self._period)
            if not self._reading:
                return
            now = time.monotonic()
            for task, body in list(self._reading.items()):
                deadline = body_deadline(
                    body.started, body.received, grace=self.grace, min_rate=self.min_rate
                )
                if not body.cut and now >= deadline:
                    body.cut = True
                    task.cancel()

    def _report(self, scope: Scope, body: _Body) -> None:
        log.info(
            "cut off a request body to %r from %s: %d bytes in %.1f s",
            scope.get("path"),
            (scope.get("client") or ("?",))[0],
            body.received,
            time.monotonic() - body.started,
        )
