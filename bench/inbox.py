"""Verified and persisted activities per second through ``coopnode serve``'s inbox, and
through its ceiling: a bare inbox making the same checks and writing the same row.

Two real nodes on loopback: a sender (whose actor the receiver fetches once for its
key) and the receiver under load. Unique ``Create`` activities are signed in advance
with the sender's key (draft-cavage, as Mastodon signs), then bench/loadgen.py sends
them from a separate process over 50 keep-alive connections. The receiver runs its
inbox worker as usual. Afterwards the receiver's database must hold every activity.

Then, the nodes stopped, the ceiling: bench/inbox_ceiling.py, a bare ASGI application
served by uvicorn as ``coopnode serve`` serves the node, which makes the node's checks
(size, content type, JSON bounds, domain policy, the signature with its Date window and
Digest, verified with the key held in memory, the actor's origin) and writes the same
row through the same group-commit writer, answering 202 after the commit. It runs as
its own process on its own port, on a new database with the node's schema, and the same
load generator sends it the same activities, signed for its address. Printed: both
rates, the node's share of the ceiling, and each server's CPU per activity (from
/proc, all its threads).

Last, both are sent requests the node refuses (a bad signature, a stale Date, an
oversized body, a wrong content type, and a few more): each must answer as the node
does, and the answers are printed side by side.

    .venv/bin/python bench/inbox.py                       # SQLite
    .venv/bin/python bench/inbox.py --backend postgres
    .venv/bin/python bench/inbox.py --ceiling-only        # the bare inbox alone
    .venv/bin/python bench/inbox.py --runs 3              # in turn, 3 times: best of each
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from federation import httpsig, keys  # noqa: E402
from federation.inbox import MAX_BODY_BYTES  # noqa: E402
from federation.mediatypes import AS2  # noqa: E402
from node.services import identity  # noqa: E402
from node.settings import DATABASE_FILE, load_settings  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import inbox_activities  # noqa: E402
from tests.support.processes import free_port, start_serve, stop_process  # noqa: E402

# The sender's address when the ceiling runs alone: no node answers there, and the
# ceiling never fetches anything.
SENDER_ALONE = "http://sender.test"


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


def activity(sender: str, tag: str, n: int, **changes: Any) -> dict[str, Any]:
    document = {
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
    document.update(changes)
    return document


def signed(
    body: bytes,
    sender: str,
    port: int,
    key: keys.PrivateKey,
    now: datetime,
    *,
    host: str | None = None,
) -> dict[str, str]:
    """The headers of a POST of ``body`` to the inbox on ``port``, signed as the sender's
    actor (``(request-target) host date digest``, as Mastodon signs). ``host`` is the
    Host header, ``127.0.0.1:PORT`` unless given (a node's domain, as a proxy passes it)."""
    host = host or f"127.0.0.1:{port}"
    added = httpsig.sign_request(
        "POST",
        f"http://{host}/inbox",
        {"Host": host},
        body,
        f"{sender}/actors/coop#main-key",
        key,
        now,
    )
    return {"Host": host, "Content-Type": AS2, **{k: v for k, v in added.items() if k != "Host"}}


def raw_request(headers: dict[str, str], body: bytes) -> bytes:
    head = (
        "POST /inbox HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def build_requests(
    count: int,
    sender: str,
    port: int,
    key: keys.PrivateKey,
    tag: str = "bench",
    *,
    host: str | None = None,
) -> bytes:
    """``count`` signed requests, each prefixed by its length (what loadgen.py reads);
    ``host`` as for :func:`signed`."""
    now = datetime.now(UTC)
    out = bytearray()
    for n in range(count):
        body = json.dumps(activity(sender, tag, n)).encode()
        request = raw_request(signed(body, sender, port, key, now, host=host), body)
        out += struct.pack(">I", len(request)) + request
    return bytes(out)


def post_once(
    port: int, sender: str, key: keys.PrivateKey, tag: str, *, host: str | None = None
) -> int:
    """One signed activity, over its own connection: its status (``host`` as for
    :func:`signed`)."""
    body = json.dumps(activity(sender, tag, 0)).encode()
    headers = signed(body, sender, port, key, datetime.now(UTC), host=host)
    return httpx.post(f"http://127.0.0.1:{port}/inbox", content=body, headers=headers).status_code


# --- what the node refuses -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    expected: int  # the node's answer, as federation/errors.py names it
    headers: dict[str, str]
    body: bytes


def refusal_cases(sender: str, port: int, key: keys.PrivateKey) -> list[Case]:
    """Requests the node refuses, each with the status it answers; and one it accepts,
    first, so that a server refusing everything is caught too."""
    now = datetime.now(UTC)

    def body_of(tag: str, **changes: Any) -> bytes:
        return json.dumps(activity(sender, tag, 0, **changes)).encode()

    def case(name: str, expected: int, body: bytes, when: datetime = now) -> Case:
        return Case(name, expected, signed(body, sender, port, key, when), body)

    cases = [case("accepted (the control)", 202, body_of("refusals-accepted"))]

    forged = case("signature that does not match", 401, body_of("refusals-forged"))
    value = forged.headers["Signature"]
    start = value.index('signature="') + len('signature="')
    raw = bytearray(base64.b64decode(value[start:-1]))
    raw[10] ^= 0xFF
    forged.headers["Signature"] = value[:start] + base64.b64encode(raw).decode() + '"'
    cases.append(forged)

    cases.append(
        case("Date 13 hours old", 401, body_of("refusals-stale"), now - timedelta(hours=13))
    )
    cases.append(
        case("Date 2 hours ahead", 401, body_of("refusals-ahead"), now + timedelta(hours=2))
    )

    swapped = case("body changed after signing", 401, body_of("refusals-swapped"))
    cases.append(Case(swapped.name, 401, swapped.headers, body_of("refusals-swapped-2")))

    unsigned = case("no signature", 401, body_of("refusals-unsigned"))
    cases.append(
        Case(
            unsigned.name,
            401,
            {k: v for k, v in unsigned.headers.items() if k != "Signature"},
            unsigned.body,
        )
    )

    wrong_type = case("Content-Type text/plain", 415, body_of("refusals-type"))
    wrong_type.headers["Content-Type"] = "text/plain"
    cases.append(wrong_type)

    padding = " " * (MAX_BODY_BYTES + 1 - len(body_of("refusals-large")))
    large = body_of("refusals-large")[:-1] + padding.encode() + b"}"
    cases.append(case("body over 1 MiB", 413, large))

    cases.append(case("not JSON", 400, b'{"id": "unterminated'))
    cases.append(
        case(
            "id on another server",
            400,
            body_of("refusals-origin", id="http://elsewhere.test/activities/1"),
        )
    )
    cases.append(
        case(
            "actor other than the signer",
            401,
            body_of("refusals-actor", actor="http://elsewhere.test/actors/someone"),
        )
    )
    return cases


def answers(port: int, cases: list[Case]) -> list[tuple[str, int, int]]:
    """Each case's name, expected status and answer, every request on a connection of
    its own."""
    found = []
    for case in cases:
        response = httpx.post(
            f"http://127.0.0.1:{port}/inbox", content=case.body, headers=case.headers, timeout=30
        )
        found.append((case.name, case.expected, response.status_code))
    return found


# --- measuring -------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One server's figures under the same load."""

    figures: dict[str, Any]
    cpu_seconds: float
    stored: int = 0
    refusals: list[tuple[str, int, int]] | None = None

    @property
    def rate(self) -> float:
        return float(self.figures["count"]) / float(self.figures["seconds"])

    @property
    def cpu_per_activity_us(self) -> float:
        return self.cpu_seconds / float(self.figures["count"]) * 1e6


def load(requests_file: Path, port: int, pid: int, connections: int) -> Run:
    """Send every request with loadgen.py; the server's CPU time over the same span."""
    cpu_before = process_cpu_seconds(pid)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadgen.py"),
            str(requests_file),
            "--port",
            str(port),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = process_cpu_seconds(pid) - cpu_before
    return Run(figures=json.loads(result.stdout), cpu_seconds=cpu)


def stored(database_url: str) -> int:
    """The benchmark's activities a database holds (the warm-up and the refusals' control
    left out)."""
    db = Database(database_url, readers=1)
    try:
        query = (
            select(func.count())
            .select_from(inbox_activities)
            .where(inbox_activities.c.activity_id.like("%/activities/bench-%"))
        )
        return int(db.read_sync(lambda conn: conn.execute(query).scalar_one()))
    finally:
        db.close()


@contextlib.contextmanager
def database_env(backend: str) -> Iterator[Callable[[str], str] | None]:
    """What makes a new PostgreSQL database, for the receiver (in COOPNODE_DATABASE_URL,
    set by the caller) and the ceiling; None: SQLite files in the temporary directory."""
    if backend == "sqlite":
        yield None
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        try:
            yield cluster.create_database
        finally:
            os.environ.pop("COOPNODE_DATABASE_URL", None)


def measure_node(tmp_path: Path, args: argparse.Namespace) -> tuple[Run, str, keys.PrivateKey]:
    """The node's run, its sender's base URL and key (for the ceiling's requests)."""
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
        # One request first, so that the key fetch is not part of the measurement.
        status = post_once(receiver.port, sender.base, key, "warm-up")
        assert status == 202, receiver.read_output()
        requests_file = tmp_path / "node-requests.bin"
        requests_file.write_bytes(build_requests(args.count, sender.base, receiver.port, key))
        run = load(requests_file, receiver.port, receiver.process.pid, args.connections)
        requests_file.unlink()
        run.refusals = answers(receiver.port, refusal_cases(sender.base, receiver.port, key))
    finally:
        receiver.stop()
        sender.stop()
    run.stored = stored(load_settings(tmp_path / "receiver").database_url)
    return run, sender.base, key


def measure_ceiling(
    tmp_path: Path, database_url: str, sender: str, key: keys.PrivateKey, args: argparse.Namespace
) -> Run:
    port = free_port()
    keys_file = tmp_path / "ceiling-keys.json"
    keys_file.write_text(
        json.dumps(
            [
                {
                    "key_id": f"{sender}/actors/coop#main-key",
                    "owner": f"{sender}/actors/coop",
                    "public_key_pem": keys.public_pem(key),
                }
            ]
        )
    )
    requests_file = tmp_path / "ceiling-requests.bin"
    requests_file.write_bytes(build_requests(args.count, sender, port, key))
    log_path = tmp_path / "ceiling.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "inbox_ceiling.py"),
                "--port",
                str(port),
                "--database-url",
                database_url,
                "--keys",
                str(keys_file),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_answering(port, process, log_path)
        status = post_once(port, sender, key, "warm-up")
        assert status == 202, log_path.read_text()
        run = load(requests_file, port, process.pid, args.connections)
        run.refusals = answers(port, refusal_cases(sender, port, key))
    finally:
        stop_process(process)
    run.stored = stored(database_url)
    return run


def wait_answering(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the ceiling exited early:\n{log_path.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"the ceiling did not answer in 30 s:\n{log_path.read_text()}")


# --- the report ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--ceiling-only", action="store_true", help="measure the bare inbox alone, no node"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="the node then the ceiling, this many times in turn (the best of each compared)",
    )
    args = parser.parse_args()

    pairs: list[tuple[Run | None, Run]] = []
    with tempfile.TemporaryDirectory() as tmp, database_env(args.backend) as new_database:
        for n in range(1, args.runs + 1):
            run_path = Path(tmp) / f"run{n}"
            run_path.mkdir()
            if new_database is not None:
                os.environ["COOPNODE_DATABASE_URL"] = new_database(f"inbox{n}")
            node_run: Run | None = None
            if args.ceiling_only:
                sender = SENDER_ALONE
                key = keys.load_own_private_key(keys.generate_rsa_private_pem())
            else:
                node_run, sender, key = measure_node(run_path, args)
            ceiling_url = (
                new_database(f"ceiling{n}")
                if new_database is not None
                else f"sqlite:///{run_path / 'ceiling' / DATABASE_FILE}"
            )
            pairs.append((node_run, measure_ceiling(run_path, ceiling_url, sender, key, args)))

    # Each figure moves with whatever else the cores do: over several runs in turn, the
    # best of each is what each path allows.
    ceiling = max((c for _, c in pairs), key=lambda run: run.rate)
    nodes = [r for r, _ in pairs if r is not None]
    node = max(nodes, key=lambda run: run.rate) if nodes else None
    if node is not None and len(pairs) > 1:
        shares = ", ".join(f"{r.rate / c.rate:.2f}" for r, c in pairs if r is not None)
        print(
            f"{args.backend:8} each run's share (node, then ceiling): {shares}; the best of each:"
        )
    if node is not None:
        print(line(f"{args.backend:8} node   ", node, args))
    print(line(f"{args.backend:8} ceiling", ceiling, args))
    if node is not None:
        print(
            f"         the node reaches {node.rate / ceiling.rate:.2f} of its ceiling; server CPU "
            f"an activity: the node {node.cpu_per_activity_us:.0f} µs (its workers' "
            f"included), the bare inbox {ceiling.cpu_per_activity_us:.0f} µs "
            f"({node.cpu_per_activity_us / ceiling.cpu_per_activity_us:.2f} times)"
        )
    else:
        print(f"         server CPU an activity: {ceiling.cpu_per_activity_us:.0f} µs")
    for name, run in (("node", node), ("ceiling", ceiling)):
        if run is not None:
            generator = run.figures["generator_cpu_seconds"]
            print(
                f"         load generator CPU ({name}) {generator:.1f} s "
                f"of {run.figures['seconds']:.1f} s wall"
            )
    limit = rsa_verifications_per_second()
    reached = f"the node {node.rate / limit:.0%}, " if node is not None else ""
    print(
        f"         this machine verifies {limit:.0f} RSA-2048 signatures/s on one core: "
        f"{reached}the bare inbox {ceiling.rate / limit:.0%} of that"
    )
    print_refusals(node, ceiling)


def line(label: str, run: Run, args: argparse.Namespace) -> str:
    figures = run.figures
    return (
        f"{label} {run.rate:7.0f} verified and persisted activities/s  "
        f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms  "
        f"({figures['count']} requests, {args.connections} connections, "
        f"statuses {figures['statuses']}, {run.stored} stored)"
    )


def print_refusals(node: Run | None, ceiling: Run) -> None:
    """Each case's answers side by side: the bare inbox must answer as the node does, and
    both as federation/errors.py says."""
    assert ceiling.refusals is not None
    by_node = node.refusals if node is not None else None
    print(f"         {'request':32} {'expected':>8} {'node':>5} {'ceiling':>8}")
    agree = 0
    for i, (name, expected, answer) in enumerate(ceiling.refusals):
        node_answer = by_node[i][2] if by_node else None
        same = answer == expected and node_answer in (None, expected)
        agree += same
        shown = "-" if node_answer is None else str(node_answer)
        print(f"         {name:32} {expected:8} {shown:>5} {answer:8}{'' if same else '  differs'}")
    whom = "the node and the bare inbox answer" if node is not None else "the bare inbox answers"
    print(f"         {whom} {agree} of {len(ceiling.refusals)} requests as expected")


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used, all its threads (Linux's /proc): steadier
    than a rate when the load generator shares the machine's two cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rsa_verifications_per_second(count: int = 2000) -> float:
    """The machine's own ceiling for the inbox: every activity costs one RSA-2048
    signature check (draft-cavage, as Mastodon signs). Best of three rounds."""
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
