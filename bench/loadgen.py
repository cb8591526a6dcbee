"""A small HTTP/1.1 load generator for pre-built requests (run by bench/inbox.py).

Reads length-prefixed raw requests from a file, sends them over ``--connections``
keep-alive connections, and prints one JSON line: count, seconds, statuses, latency
percentiles. Pre-built bytes keep the generator's own cost (and any signing) out of
what is measured. ``--port`` may be given more than once: the connections are then
spread over the ports in turn, as a reverse proxy spreads requests over the web
processes (bench/scaleout.py). ``--announce`` writes ``sending`` to standard error just
before the first request, so that a caller measures the servers over the sending only;
``sending_cpu_seconds`` is the generator's own CPU over that span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from collections import Counter
from pathlib import Path


def load(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        requests.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return requests


async def connection(
    host: str, port: int, requests: list[bytes], latencies: list[float], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(status_line.split()[1])] += 1
    finally:
        writer.close()


async def run(
    host: str, ports: list[int], requests: list[bytes], connections: int, announce: bool = False
) -> dict[str, object]:
    shares = [requests[i::connections] for i in range(connections)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    if announce:
        print("sending", file=sys.stderr, flush=True)
    cpu_started = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(
        *(
            connection(host, ports[i % len(ports)], share, latencies, statuses)
            for i, share in enumerate(shares)
        )
    )
    elapsed = time.perf_counter() - started
    sending_cpu = time.process_time() - cpu_started
    latencies.sort()
    return {
        "count": len(latencies),
        "seconds": elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "generator_cpu_seconds": time.process_time(),
        "sending_cpu_seconds": sending_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("requests", type=Path)
    parser.add_argument(
        "--port", type=int, action="append", required=True, help="repeat to spread over ports"
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--announce", action="store_true", help="write 'sending' to stderr before the first"
    )
    args = parser.parse_args()
    import uvloop  # the generator's own cost should stay small beside the server's

    requests = load(args.requests)
    result = uvloop.run(run("127.0.0.1", args.port, requests, args.connections, args.announce))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
