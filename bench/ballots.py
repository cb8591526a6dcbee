"""Ballots per second through ``coopnode serve``'s inbox, and through its worker into the
ballots table.

A real node on loopback has ``--voters`` remote members living on a voters' server (a
Mastodon-shaped server in this process: one ``Person`` per voter, all sharing one RSA
key so that setting up thousands of voters does not take minutes of key generation;
each voter's key is still fetched and checked separately). A proposal is open and
allows changes. Every voter votes once (warm-up: the node fetches each voter's key),
then every voter changes their vote: those ballots, signed in advance as Mastodon signs
them, are sent by bench/loadgen.py over 50 keep-alive connections, and measured twice:

- receipt: verified and stored (the figure bench/inbox.py reports for any activity);
- ingest: from the first send until the worker has checked and stored every ballot
  (eligibility, window, options) and marked the counts stale.

    .venv/bin/python bench/ballots.py                    # SQLite
    .venv/bin/python bench/ballots.py --backend postgres
    .venv/bin/python bench/ballots.py --backend postgres --separate-worker

With SQLite, ``coopnode serve`` answers HTTP and runs the worker in one process (one
core); ``--separate-worker`` runs ``serve --no-workers`` beside a ``coopnode worker``
process, as a PostgreSQL deployment may.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from bench.inbox import database_env  # noqa: E402
from federation import httpsig, keys  # noqa: E402
from node.settings import load_settings  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import ballots, members  # noqa: E402
from tests.support.processes import (  # noqa: E402
    coopnode_command,
    free_port,
    run_coopnode,
    start_serve,
    stop_process,
)

AS2 = "application/activity+json"


def voters_server(port: int, public_pem: str) -> uvicorn.Server:
    base = f"http://127.0.0.1:{port}"

    async def actor(request: Request) -> Response:
        name = request.path_params["name"]
        uri = f"{base}/users/{name}"
        document = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": uri,
            "type": "Person",
            "preferredUsername": name,
            "inbox": f"{uri}/inbox",
            "endpoints": {"sharedInbox": f"{base}/inbox"},
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_pem},
        }
        return Response(json.dumps(document), media_type=AS2)

    async def inbox(request: Request) -> Response:
        await request.body()
        return Response(status_code=202)

    app = Starlette(
        routes=[
            Route("/users/{name}", actor),
            Route("/users/{name}/inbox", inbox, methods=["POST"]),
            Route("/inbox", inbox, methods=["POST"]),
        ]
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    return uvicorn.Server(config)


def add_voters(data_dir: Path, voters: list[str]) -> None:
    db = Database(load_settings(data_dir).database_url, readers=1)
    now = datetime.now(UTC)
    rows = [
        {
            "actor_uri": uri,
            "handle": f"{uri.rsplit('/', 1)[1]}@127.0.0.1",
            "local": 0,
            "role": "member",
            "joined_at": now - timedelta(days=30),
            "state": "confirmed",
            "created_at": now,
        }
        for uri in voters
    ]
    try:
        db.write_sync(lambda conn: conn.execute(insert(members), rows))
    finally:
        db.close()


def count_ballots(data_dir: Path) -> int:
    db = Database(load_settings(data_dir).database_url, readers=1)
    try:
        query = select(func.count()).select_from(ballots)
        return int(db.read_sync(lambda conn: conn.execute(query).scalar_one()))
    finally:
        db.close()


def build(
    voters: list[str], question: str, coop: str, port: int, key: keys.PrivateKey, option: str
) -> bytes:
    now = datetime.now(UTC)
    host = f"127.0.0.1:{port}"
    out = bytearray()
    for n, voter in enumerate(voters):
        note_id = f"{voter}#votes/{option}-{n}"
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{note_id}/activity",
            "type": "Create",
            "actor": voter,
            "to": [coop],
            "object": {
                "id": note_id,
                "type": "Note",
                "name": option,
                "attributedTo": voter,
                "inReplyTo": question,
                "to": [coop],
            },
        }
        body = json.dumps(activity).encode()
        headers = httpsig.sign_request(
            "POST", f"http://{host}/inbox", {"Host": host}, body, f"{voter}#main-key", key, now
        )
        head = (
            f"POST /inbox HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: {AS2}\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "Host")
            + "\r\n"
        ).encode()
        request = head + body
        out += struct.pack(">I", len(request)) + request
    return bytes(out)


def send(path: Path, port: int, connections: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadgen.py"),
            str(path),
            "--port",
            str(port),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def wait_for(data_dir: Path, wanted: int, limit: float) -> float:
    started = time.monotonic()
    while count_ballots(data_dir) < wanted:
        if time.monotonic() - started > limit:
            raise SystemExit(f"only {count_ballots(data_dir)} of {wanted} ballots after {limit} s")
        time.sleep(0.05)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--voters", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--separate-worker", action="store_true")
    args = parser.parse_args()
    if args.separate_worker and args.backend != "postgres":
        parser.error("--separate-worker needs --backend postgres")

    pem = keys.generate_rsa_private_pem()
    key = keys.load_own_private_key(pem)
    port = free_port()
    server = voters_server(port, keys.public_pem(key))
    threading.Thread(target=server.run, daemon=True).start()
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    voters = [f"http://127.0.0.1:{port}/users/v{n}" for n in range(args.voters)]

    with tempfile.TemporaryDirectory() as tmp, database_env(args.backend):
        tmp_path = Path(tmp)
        extra = ("--no-workers",) if args.separate_worker else ()
        node = start_serve(tmp_path / "node", None, *extra)
        worker = None
        try:
            node.wait_ready()
            if args.separate_worker:
                worker = subprocess.Popen(
                    [*coopnode_command(), "worker", "--data-dir", str(node.data_dir)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            add_voters(node.data_dir, voters)
            spec = tmp_path / "proposal.json"
            spec.write_text(
                json.dumps(
                    {
                        "title": "Adopt the 2027 delivery tariff",
                        "options": ["For", "Against", "Abstain"],
                        "rule": "majority",
                        "allow_change": True,
                        "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    }
                )
            )
            opened = run_coopnode("proposals", "open", str(spec), "--data-dir", str(node.data_dir))
            assert opened.returncode == 0, opened.stderr
            question = opened.stdout.strip().split("\t")[2]
            coop = f"{node.base}/actors/coop"
            first = tmp_path / "first.bin"
            first.write_bytes(build(voters, question, coop, node.port, key, "For"))
            warm_started = time.monotonic()
            send(first, node.port, args.connections)
            wait_for(node.data_dir, args.voters, 600)
            warm = time.monotonic() - warm_started
            changed = tmp_path / "changed.bin"
            changed.write_bytes(build(voters, question, coop, node.port, key, "Against"))
            started = time.monotonic()
            figures = send(changed, node.port, args.connections)
            done = wait_for(node.data_dir, 2 * args.voters, 600)
        finally:
            if worker is not None:
                stop_process(worker)
            node.stop()
            server.should_exit = True
    receipt = figures["count"] / figures["seconds"]
    ingest = args.voters / (done - started)
    layout = "serve --no-workers + worker" if args.separate_worker else "serve with its worker"
    print(f"{args.backend}, {layout}, {args.voters} voters")
    print(
        f"{args.backend:8} {receipt:7.0f} ballots/s verified and stored at receipt  "
        f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms  "
        f"(statuses {figures['statuses']})"
    )
    print(
        f"         {ingest:7.0f} ballots/s checked and stored by the worker "
        f"({args.voters} changed ballots in {done - started:.1f} s; "
        f"warm-up with key fetches {warm:.1f} s)"
    )
    os.environ.pop("COOPNODE_DATABASE_URL", None)


if __name__ == "__main__":
    main()
