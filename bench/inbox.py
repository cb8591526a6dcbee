"""Verified and persisted activities per second through ``coopnode serve``'s inbox.

Two real nodes on loopback: a sender (whose actor the receiver fetches once for its
key) and the receiver under load. Unique ``Create`` activities are signed in advance
with the sender's key (draft-cavage, as Mastodon signs), then bench/loadgen.py sends
them from a separate process over 50 keep-alive connections. The receiver runs its
inbox worker as usual. Afterwards the receiver's database must hold every activity.

    .venv/bin/python bench/inbox.py                       # SQLite
    .venv/bin/python bench/inbox.py --backend postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from federation import httpsig, keys  # noqa: E402
from node.services import identity  # noqa: E402
from node.settings import load_settings  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import inbox_activities  # noqa: E402
from tests.support.processes import free_port, start_serve  # noqa: E402


def sender_key(data_dir: Path) -> keys.PrivateKey:
    # The sender keeps its own SQLite file: COOPNODE_DATABASE_URL names the receiver's.
    saved = os.environ.pop("COOPNODE_DATABASE_URL", None)
    try:
        url = load_settings(data_dir).database_url
    finally:
        if saved is not None:
            os.environ["COOPNODE_DATABASE_URL"] = saved
    db = Database(url, readers=1)
    try:
        coop = db.read_sync(lambda conn: identity.get_actor(conn, "coop"))
    finally:
        db.close()
    assert coop.rsa_private_pem is not None
    return keys.load_own_private_key(coop.rsa_private_pem)


def build_requests(
    count: int, sender: str, receiver_port: int, key: keys.PrivateKey, tag: str = "bench"
) -> bytes:
    now = datetime.now(UTC)
    host = f"127.0.0.1:{receiver_port}"
    out = bytearray()
    for n in range(count):
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{sender}/activities/{tag}-{n}",
            "type": "Create",
            "actor": f"{sender}/actors/coop",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {
                "id": f"{sender}/notes/{tag}-{n}",
                "type": "Note",
                "attributedTo": f"{sender}/actors/coop",
                "content": "<p>Organic apples, 1 kg, 3.50 EUR</p>",
            },
        }
        body = json.dumps(activity).encode()
        headers = httpsig.sign_request(
            "POST",
            f"http://{host}/inbox",
            {"Host": host},
            body,
            f"{sender}/actors/coop#main-key",
            key,
            now,
        )
        head = (
            f"POST /inbox HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/activity+json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "Host")
            + "\r\n"
        ).encode()
        request = head + body
        out += struct.pack(">I", len(request)) + request
    return bytes(out)


def stored(data_dir: Path) -> int:
    db = Database(load_settings(data_dir).database_url, readers=1)
    try:
        query = select(func.count()).select_from(inbox_activities)
        return int(db.read_sync(lambda conn: conn.execute(query).scalar_one()))
    finally:
        db.close()


@contextlib.contextmanager
def database_env(backend: str) -> Iterator[None]:
    if backend == "sqlite":
        yield
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        os.environ["COOPNODE_DATABASE_URL"] = cluster.create_database("inbox")
        try:
            yield
        finally:
            del os.environ["COOPNODE_DATABASE_URL"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, database_env(args.backend):
        tmp_path = Path(tmp)
        # The sender keeps SQLite: only the receiver's storage is under test.
        sender_env = os.environ.pop("COOPNODE_DATABASE_URL", None)
        sender = start_serve(tmp_path / "sender")
        if sender_env:
            os.environ["COOPNODE_DATABASE_URL"] = sender_env
        receiver = start_serve(tmp_path / "receiver", free_port())
        try:
            sender.wait_ready()
            receiver.wait_ready()
            key = sender_key(tmp_path / "sender")
            warm = build_requests(1, sender.base, receiver.port, key, tag="warm-up")[4:]
            # One request first, so the key fetch is not part of the measurement.
            head, body = warm.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")[1:]
            headers = dict(line.split(": ", 1) for line in lines)
            response = httpx.post(
                f"{receiver.base}/inbox",
                content=body,
                headers={**headers, "Host": f"127.0.0.1:{receiver.port}"},
            )
            assert response.status_code == 202, response.text
            requests_file = tmp_path / "requests.bin"
            requests_file.write_bytes(build_requests(args.count, sender.base, receiver.port, key))
            cpu_before = process_cpu_seconds(receiver.process.pid)
            result = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "loadgen.py"),
                    str(requests_file),
                    "--port",
                    str(receiver.port),
                    "--connections",
                    str(args.connections),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(result.stdout)
            cpu = process_cpu_seconds(receiver.process.pid) - cpu_before
        finally:
            receiver.stop()
            sender.stop()
        persisted = stored(tmp_path / "receiver") - 1  # less the warm-up
    rate = figures["count"] / figures["seconds"]
    print(
        f"{args.backend:8} {rate:7.0f} verified and persisted activities/s  "
        f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms  "
        f"({figures['count']} requests, {args.connections} connections, "
        f"statuses {figures['statuses']}, {persisted} stored)"
    )
    print(
        f"         load generator CPU {figures['generator_cpu_seconds']:.1f} s "
        f"of {figures['seconds']:.1f} s wall; the node's own CPU "
        f"{cpu / figures['count'] * 1e6:.0f} µs an activity (its workers' included)"
    )
    limit = rsa_verifications_per_second()
    print(
        f"         this machine verifies {limit:.0f} RSA-2048 signatures/s on one core: "
        f"the inbox reaches {rate / limit:.0%} of that"
    )


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used, all its threads (Linux's /proc): steadier
    than a rate when the load generator shares the machine's two cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rsa_verifications_per_second(count: int = 2000) -> float:
    """The machine's own ceiling for the inbox: every activity costs one RSA-2048
    signature check (draft-cavage, as Mastodon signs). Best of three rounds."""
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    message = b"(request-target): post /inbox\nhost: coop.example\ndate: now"
    signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        best = max(best, count / (time.perf_counter() - started))
    return best


if __name__ == "__main__":
    main()
