"""A fast recording inbox sink, run as its own process, for delivery tests and benchmarks.

It listens on one port of many loopback addresses (``127.0.1.1``, ``127.0.1.2``, ...),
so that a node sees each address as a separate host, and answers every ``POST`` with
202 (``--delay-ms`` later, if given: a slow peer). For each inbox (the ``Host`` header
and path) it counts the requests and the distinct activity ids accepted, so a test can
say "every inbox got the activity, none twice". ``GET /_sink/stats`` answers those
figures as JSON. Parsing is httptools' (the parser uvicorn uses) on a bare asyncio
protocol: the sink must cost little next to the sender under test, on the same cores.

The first ``--scripted-hosts`` addresses answer as scripted instead: a POST signed
RFC 9421 (it carries ``Signature-Input``) gets ``--rfc9421-answer``, any other
``--cavage-answer``; ``--rfc9421-answer 401`` is a server that verifies draft-cavage
signatures only, as Mastodon 4.4 (and 4.5 and 4.6, for an Ed25519 key) answers. Only
requests answered 2xx count as received. ``--keep`` keeps every request (host, path,
headers, body) for ``GET /_sink/requests``, so that a test can verify its signature.

    python -m tests.support.sink --port 8800 --hosts 50
    python -m tests.support.sink --port 8800 --hosts 50 --scripted-hosts 25 --rfc9421-answer 401
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http
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
class Script:
    """How the first ``hosts`` addresses answer a POST, by how it is signed."""

    hosts: int = 0
    rfc9421: int = 202
    cavage: int = 202
    keep: bool = False


@dataclass
class Record:
    requests: int = 0
    signed: int = 0
    # Requests signed RFC 9421 (with Signature-Input), and those answered other than 2xx.
    rfc9421: int = 0
    refused: int = 0
    unreadable: int = 0
    # inbox ("host/path") -> activity id -> times received
    received: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # With --keep: every request, as GET /_sink/requests answers it.
    kept: list[dict[str, Any]] = field(default_factory=list)
    # POSTs received and not answered yet, per address and in all, and the most seen.
    open: Counter[str] = field(default_factory=Counter)
    open_in_all: int = 0
    most_open: Counter[str] = field(default_factory=Counter)
    most_open_in_all: int = 0

    def opened(self, address: str) -> None:
        self.open[address] += 1
        self.open_in_all += 1
        self.most_open[address] = max(self.most_open[address], self.open[address])
        self.most_open_in_all = max(self.most_open_in_all, self.open_in_all)

    def answered(self, address: str) -> None:
        self.open[address] -= 1
        self.open_in_all -= 1

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
            "rfc9421": self.rfc9421,
            "refused": self.refused,
            "unreadable": self.unreadable,
            "inboxes": len(self.received),
            "deliveries": sum(len(a) for a in self.received.values()),
            "duplicates": duplicates,
            "per_inbox": {inbox: dict(a) for inbox, a in self.received.items()},
            # POSTs in progress at once (received, not yet answered): the most per
            # address, and in all.
            "most_open": dict(self.most_open),
            "most_open_in_all": self.most_open_in_all,
        }


_ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
_ACCEPTED_CLOSING = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()


class _Connection(asyncio.Protocol):
    def __init__(self, record: Record, delay: float = 0.0, script: Script | None = None) -> None:
        self.record = record
        self.delay = delay
        self.script = script or Script()
        self.scripted = False
        self.address = ""
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.host = b""
        self.signed = False
        self.rfc9421 = False
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport
        self.address = transport.get_extra_info("sockname")[0]
        if self.script.hosts:
            self.scripted = _index(self.address) < self.script.hosts

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
        elif lowered == b"signature-input":
            self.rfc9421 = True
        if self.script.keep:
            self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        if method == b"GET" and self.url in (b"/_sink/stats", b"/_sink/requests"):
            figures = self.record.stats() if self.url == b"/_sink/stats" else self.record.kept
            payload = json.dumps(figures).encode()
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
        record.rfc9421 += self.rfc9421
        body = b"".join(self.body)
        inbox = f"{self.host.decode('latin-1')}{self.url.decode('latin-1')}"
        if self.script.keep:
            record.kept.append(
                {
                    "inbox": inbox,
                    "headers": self.headers,
                    "body": base64.b64encode(body).decode("ascii"),
                }
            )
        status = 202
        if self.scripted:
            status = self.script.rfc9421 if self.rfc9421 else self.script.cavage
        if not 200 <= status < 300:
            record.refused += 1
        else:
            try:
                activity_id = json.loads(body)["id"]
                if not isinstance(activity_id, str):
                    raise TypeError("id")
            except (ValueError, KeyError, TypeError):
                record.unreadable += 1
            else:
                record.received[inbox][activity_id] += 1
        # A client that asks for "Connection: close" gets it, as from any server.
        keep_alive = self.parser.should_keep_alive()
        record.opened(self.address)
        if self.delay:
            # Received (and counted) now, answered later: one request at a time per
            # connection, so the answer cannot overtake another.
            asyncio.get_running_loop().call_later(self.delay, self._answer_late, keep_alive, status)
        else:
            self._answer(keep_alive, status)

    def _answer(self, keep_alive: bool, status: int = 202) -> None:
        self.record.answered(self.address)
        if status == 202:
            self.transport.write(_ACCEPTED if keep_alive else _ACCEPTED_CLOSING)
        else:
            closing = b"" if keep_alive else b"connection: close\r\n"
            self.transport.write(
                _status_line(status) + b"content-length: 0\r\n" + closing + b"\r\n"
            )
        if not keep_alive:
            self.transport.close()

    def _answer_late(self, keep_alive: bool, status: int) -> None:
        if not self.transport.is_closing():
            self._answer(keep_alive, status)
        else:
            self.record.answered(self.address)


def addresses(count: int) -> list[str]:
    """``count`` loopback addresses, 127.0.1.1 onwards (each a distinct host to a node)."""
    if not 1 <= count <= 250 * 250:
        raise ValueError("between 1 and 62,500 addresses")
    return [_address(n) for n in range(count)]


def _address(n: int) -> str:
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


def _index(address: str) -> int:
    """The n of :func:`_address`."""
    third, fourth = (int(part) for part in address.split(".")[2:])
    return (third - 1) * 250 + fourth - 1


async def serve(port: int, hosts: int, delay_ms: float = 0.0, script: Script | None = None) -> None:
    record = Record()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(record, delay_ms / 1000, script),
        host=addresses(hosts),
        port=port,
        backlog=1024,
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

    def host(self, n: int) -> str:
        """The address (a host to a node) of ``inbox(n)``."""
        return _address(n % self.hosts)

    def stats(self) -> dict[str, Any]:
        import httpx

        url = f"http://{addresses(1)[0]}:{self.port}/_sink/stats"
        return dict(httpx.get(url, timeout=10).json())

    def requests(self) -> list[dict[str, Any]]:
        """Every request received (started with ``keep=True``), in order: ``inbox``,
        ``headers`` as (name, value) pairs, ``body`` in base64."""
        import httpx

        url = f"http://{addresses(1)[0]}:{self.port}/_sink/requests"
        return list(httpx.get(url, timeout=10).json())

    def stop(self) -> None:
        from tests.support.processes import stop_process

        stop_process(self.process)


def start_sink(
    port: int,
    hosts: int = 1,
    delay_ms: float = 0.0,
    *,
    scripted_hosts: int = 0,
    rfc9421_answer: int = 202,
    cavage_answer: int = 202,
    keep: bool = False,
) -> SinkProcess:
    """Start the sink as a process and wait until it listens (options as the module's
    description says)."""
    options = ["--port", str(port), "--hosts", str(hosts)]
    if delay_ms:
        options += ["--delay-ms", str(delay_ms)]
    if scripted_hosts:
        options += ["--scripted-hosts", str(scripted_hosts)]
        options += ["--rfc9421-answer", str(rfc9421_answer)]
        options += ["--cavage-answer", str(cavage_answer)]
    if keep:
        options.append("--keep")
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
    parser.add_argument(
        "--scripted-hosts", type=int, default=0, help="how many addresses answer as scripted"
    )
    parser.add_argument(
        "--rfc9421-answer", type=int, default=202, help="their answer to RFC 9421 signatures"
    )
    parser.add_argument("--cavage-answer", type=int, default=202, help="their other answers")
    parser.add_argument("--keep", action="store_true", help="keep requests for /_sink/requests")
    args = parser.parse_args()
    import uvloop

    script = Script(args.scripted_hosts, args.rfc9421_answer, args.cavage_answer, args.keep)
    uvloop.run(serve(args.port, args.hosts, args.delay_ms, script))


if __name__ == "__main__":
    main()
