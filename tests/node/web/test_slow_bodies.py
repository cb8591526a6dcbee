"""A body that trickles in too slowly is cut off with 408, on every route, the shared
inbox included; a body that keeps up the pace, however long it takes, is not.

The node runs in a real uvicorn on 127.0.0.1 and the client writes to a raw socket, so
the pace is the one the server sees. Test settings shorten the grace to half a second;
each test is bounded to a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn

from node.web.slowbodies import body_deadline
from tests.node.web.test_media import _png_chunk
from tests.support.network import Network, TestNode

GRACE = 0.5  # seconds
MIN_RATE = 1000  # bytes a second
BOUND = 5.0  # seconds any one exchange may take before the test fails


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its signals
        yield


@contextlib.asynccontextmanager
async def served(coop: TestNode) -> AsyncIterator[int]:
    """The node's app in uvicorn, as `coopnode serve` runs it, on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until uvicorn takes them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        coop.app, lifespan="off", log_level="warning", http="httptools", ws="none"
    )
    server = _Quiet(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


async def send_paced(
    port: int, head: str, body: bytes, *, chunk: int, every: float
) -> tuple[bytes, bool]:
    """Send ``head`` then ``body`` ``chunk`` bytes at a time, one chunk ``every``
    seconds, until the server answers; return the answer and whether the whole body
    went out before it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0

    async def trickle() -> None:
        nonlocal sent
        writer.write(head.encode("latin-1"))
        for start in range(0, len(body), chunk):
            if start:
                await asyncio.sleep(every)  # the client's pace, which the test is about
            writer.write(body[start : start + chunk])
            await writer.drain()
            sent = min(len(body), start + chunk)

    sender = asyncio.create_task(trickle())
    answer = b""
    try:
        async with asyncio.timeout(BOUND):
            # To the end: the server closes after a cut. Read as it comes, and stop sending
            # at the first byte of the answer: a byte sent after the server closed draws
            # a reset, which would lose what was read but not yet handed over.
            while chunk := await reader.read(65536):
                answer += chunk
                sender.cancel()
    except ConnectionResetError:
        pass  # the server closed with some of the body unread: the answer came before
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
    return answer, sent == len(body)


def request_head(path: str, length: int, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: alpha.test", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join([*lines, "Connection: close", "", ""])


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
async def coop(network: Network) -> TestNode:
    return await network.add("alpha.test", body_grace=GRACE, body_min_rate=MIN_RATE)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/inbox", "application/activity+json"),
        ("/actors/coop/inbox", "application/activity+json"),
        ("/api/v1/login", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(
    coop: TestNode, path: str, kind: str
) -> None:
    body = json.dumps({"type": "Create", "padding": "x" * 2000}).encode()

    async with served(coop) as port:
        # 20 bytes a second, against a minimum of 1000 after half a second.
        answer, finished = await send_paced(
            port, request_head(path, len(body), Content_Type=kind), body, chunk=1, every=0.05
        )

    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert b"too slowly" in answer
    assert not finished


async def test_a_body_that_stops_coming_is_cut_off_too(coop: TestNode) -> None:
    async with served(coop) as port:
        answer, _ = await send_paced(
            port,
            request_head("/inbox", 5000, Content_Type="application/activity+json"),
            b"{",  # one byte of the five thousand promised, then nothing
            chunk=1,
            every=BOUND,
        )

    assert status_of(answer) == 408


def noisy_png(size: int) -> bytes:
    """A valid greyscale PNG of ``size`` by ``size`` pixels of noise, stored
    uncompressed: about ``size * size`` bytes to upload."""
    noise = random.Random(7)
    rows = b"".join(b"\x00" + noise.randbytes(size) for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 0))
        + _png_chunk(b"IEND", b"")
    )


async def test_an_upload_that_keeps_up_the_pace_is_not_cut_however_long_it_takes(
    coop: TestNode,
) -> None:
    image = noisy_png(256)  # 64 KiB
    head = request_head(
        "/api/v1/media",
        len(image),
        Content_Type="image/png",
        Authorization=coop.auth["Authorization"],
    )

    async with served(coop) as port:
        # 8 KiB every tenth of a second: about a second in all, twice the grace, at
        # eighty times the minimum rate (a phone on a poor connection does better).
        answer, finished = await send_paced(port, head, image, chunk=8192, every=0.1)

    assert status_of(answer) == 201, answer
    assert finished


def test_the_deadline_is_the_grace_then_whatever_the_bytes_so_far_have_earned() -> None:
    def deadline(received: int) -> float:
        return body_deadline(100.0, received, grace=10, min_rate=4096)

    assert deadline(0) == 110.0  # the first byte may take the whole grace
    assert deadline(4096 * 5) == 110.0  # five seconds' worth: still within the grace
    assert deadline(4096 * 60) == 160.0  # a minute's worth buys a minute from the start
