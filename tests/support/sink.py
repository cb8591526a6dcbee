"""A fast recording inbox sink, run as its own process, for delivery tests and benchmarks.

It listens on one port of many loopback addresses (``127.0.1.1``, ``127.0.1.2``, ...),
so that a node sees each address as a separate host, and answers every ``POST`` with
202 (``--delay-ms`` later, if given: a slow peer). For each inbox (the ``Host`` header
and path) it counts the requests and the distinct activity ids received, so a test can
say "every inbox got the activity, none twice". ``GET /_sink/stats`` answers those
figures as JSON. Parsing is httptools' (the parser uvicorn uses) on a bare asyncio
protocol: the sink must cost little next to the sender under test, on the same cores.

    python -m tests.support.sink --port 8800 --hosts 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools


@dataclass
class Record:
    requests: int = 0
    signed: int = 0
    unreadable: int = 0
    # inbox ("host/path") -> activity id -> times received
    received: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def stats(self) -> dict[str, Any]:
        duplicates = {
            f"{inbox} {activity}": times
            for inbox, activities in self.received.items()
            for activity, times in activities.items()
            if times > 1
        }
        return {
            "requests": self.requests,
            "signed": self.signed,
            "unreadable": self.unreadable,
            "inboxes": len(self.received),
            "deliveries": sum(len(a) for a in self.received.values()),
            "duplicates": duplicates,
            "per_inbox": {inbox: dict(a) for inbox, a in self.received.items()},
        }


_ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
_ACCEPTED_CLOSING = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Connection(asyncio.Protocol):
    def __init__(self, record: Record, delay: float = 0.0) -> None:
        self.record = record
        self.delay = delay
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.host = b""
        self.signed = False
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"host":
            self.host = value
        elif lowered == b"signature":
            self.signed = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        if method == b"GET" and self.url == b"/_sink/stats":
            payload = json.dumps(self.record.stats()).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            return
        if method != b"POST":
            self.transport.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        record = self.record
        record.requests += 1
        record.signed += self.signed
        try:
            activity_id = json.loads(b"".join(self.body))["id"]
            if not isinstance(activity_id, str):
                raise TypeError("id")
        except (ValueError, KeyError, TypeError):
            record.unreadable += 1
        else:
            inbox = f"{self.host.decode('latin-1')}{self.url.decode('latin-1')}"
            record.received[inbox][activity_id] += 1
        # A client that asks for "Connection: close" gets it, as from any server.
        keep_alive = self.parser.should_keep_alive()
        if self.delay:
            # Received (and counted) now, answered later: one request at a time per
            # connection, so the answer cannot overtake another.
            asyncio.get_running_loop().call_later(self.delay, self._answer_late, keep_alive)
        else:
            self._answer(keep_alive)

    def _answer(self, keep_alive: bool) -> None:
        if keep_alive:
            self.transport.write(_ACCEPTED)
        else:
            self.transport.write(_ACCEPTED_CLOSING)
            self.transport.close()

    def _answer_late(self, keep_alive: bool) -> None:
        if not self.transport.is_closing():
            self._answer(keep_alive)


def addresses(count: int) -> list[str]:
    """``count`` loopback addresses, 127.0.1.1 onwards (each a distinct host to a node)."""
    if not 1 <= count <= 250 * 250:
        raise ValueError("between 1 and 62,500 addresses")
    return [_address(n) for n in range(count)]


def _address(n: int) -> str:
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


async def serve(port: int, hosts: int, delay_ms: float = 0.0) -> None:
    record = Record()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(record, delay_ms / 1000), host=addresses(hosts), port=port, backlog=1024
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"sink ready on port {port}, {hosts} addresses", flush=True)
    async with server:
        await stop.wait()


@dataclass
class SinkProcess:
    """A sink started by :func:`start_sink`; ``inbox(n)`` spreads inboxes over its hosts."""

    port: int
    hosts: int
    process: subprocess.Popen[str]

    def inbox(self, n: int) -> str:
        host = _address(n % self.hosts)
        return f"http://{host}:{self.port}/inbox/{n}"

    def stats(self) -> dict[str, Any]:
        import httpx

        url = f"http://{addresses(1)[0]}:{self.port}/_sink/stats"
        return dict(httpx.get(url, timeout=10).json())

    def stop(self) -> None:
        from tests.support.processes import stop_process

        stop_process(self.process)


def start_sink(port: int, hosts: int = 1, delay_ms: float = 0.0) -> SinkProcess:
    """Start the sink as a process and wait until it listens."""
    options = ["--port", str(port), "--hosts", str(hosts)]
    if delay_ms:
        options += ["--delay-ms", str(delay_ms)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sink", *options],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("sink ready"):
        process.kill()
        raise RuntimeError(f"the sink did not start: {line}{process.stdout.read()}")
    return SinkProcess(port=port, hosts=hosts, process=process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hosts", type=int, default=1, help="how many loopback addresses")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="answer each POST this much later"
    )
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port, args.hosts, args.delay_ms))


if __name__ == "__main__":
    main()
