"""A peer whose inbox answers as scripted, run as its own process, for delivery fault tests.

It is a minimal ActivityPub server: WebFinger for ``HANDLE@HOST:PORT``, an actor
document with a real RSA key, and an inbox that answers every ``POST`` the same way:
``202``, ``410``, ``429`` (with ``Retry-After`` if given), ``500``, or ``hang`` (reads
the request and answers nothing until the sender hangs up). It counts what it received;
``GET /stats`` answers the figures as JSON, so a test can say "one attempt, no retry".
Bind it to its own loopback address (``--host 127.0.3.1``) and a node sees it as a host
of its own, with its own delivery health.

    python -m tests.support.scripted_peer --port 8801 --answer 429 --retry-after 120
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation import httpsig, keys
from federation.errors import FederationError

ANSWERS = ("202", "410", "429", "500", "hang")
AS2 = "application/activity+json"


@dataclass
class Record:
    posts: int = 0
    signed: int = 0
    # activity id -> times received
    activities: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    # With --authorized-fetch: the key ids of the signed fetches answered, and how many
    # fetches were refused.
    signed_fetches: list[str] = field(default_factory=list)
    refused_fetches: int = 0

    def stats(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "signed": self.signed,
            "signed_fetches": list(self.signed_fetches),
            "refused_fetches": self.refused_fetches,
            "activities": dict(self.activities),
            "types": dict(self.types),
        }


def create_app(
    *,
    base: str,
    handle: str,
    answer: str,
    retry_after: str | None = None,
    authorized_fetch: bool = False,
) -> Starlette:
    if answer not in ANSWERS:
        raise ValueError(f"answer {answer!r}: use one of {', '.join(ANSWERS)}")
    authority = base.split("://", 1)[1]
    actor_id = f"{base}/actors/{handle}"
    public_pem = keys.public_pem(keys.load_own_private_key(keys.generate_rsa_private_pem()))
    actor = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor_id,
        "type": "Service",
        "preferredUsername": handle,
        "name": f"Scripted peer answering {answer}",
        "inbox": f"{base}/inbox",
        "outbox": f"{actor_id}/outbox",
        "followers": f"{actor_id}/followers",
        "following": f"{actor_id}/following",
        "publicKey": {"id": f"{actor_id}#main-key", "owner": actor_id, "publicKeyPem": public_pem},
    }
    record = Record()

    async def webfinger(request: Request) -> Response:
        if request.query_params.get("resource") != f"acct:{handle}@{authority}":
            return Response(status_code=404)
        jrd = {
            "subject": f"acct:{handle}@{authority}",
            "links": [{"rel": "self", "type": AS2, "href": actor_id}],
        }
        return JSONResponse(jrd, media_type="application/jrd+json")

    async def actor_document(request: Request) -> Response:
        if authorized_fetch:
            refusal = await check_signed_fetch(request)
            if refusal is not None:
                return refusal
        return Response(json.dumps(actor), media_type=AS2)

    async def check_signed_fetch(request: Request) -> Response | None:
        """Mastodon's secure mode: 401 unless the fetch is signed by a key its owner's
        document (fetched here, unsigned) vouches for."""

        async def lookup(key_id: str) -> Any:
            async with httpx.AsyncClient(timeout=5) as client:
                owner = await client.get(key_id, headers={"Accept": AS2})
            return keys.load_public_pem(owner.json()["publicKey"]["publicKeyPem"])

        try:
            verified = await httpsig.verify_request(
                "GET",
                request.url.path,
                request.url.query,
                request.headers,
                b"",
                datetime.now(UTC),
                lookup,
            )
        except FederationError as exc:
            record.refused_fetches += 1
            return JSONResponse({"error": exc.reason}, status_code=401)
        record.signed_fetches.append(verified.key_id)
        return None

    async def inbox(request: Request) -> Response:
        body = await request.body()
        record.posts += 1
        record.signed += "signature" in request.headers
        try:
            activity = json.loads(body)
            activity_id = str(activity["id"])
        except (ValueError, KeyError, TypeError):
            activity_id, activity = "(unreadable)", {}
        record.activities[activity_id] = record.activities.get(activity_id, 0) + 1
        record.types[activity_id] = str(activity.get("type"))
        if answer == "hang":
            # Nothing is sent until the sender gives up and disconnects.
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(status_code=504)  # to no one: the sender has gone
        headers = {"Retry-After": retry_after} if answer == "429" and retry_after else None
        return Response(status_code=int(answer), headers=headers)

    async def stats(request: Request) -> Response:
        return JSONResponse(record.stats())

    return Starlette(
        routes=[
            Route("/.well-known/webfinger", webfinger),
            Route(f"/actors/{handle}", actor_document),
            Route("/inbox", inbox, methods=["POST"]),
            Route("/stats", stats),
        ]
    )


@dataclass
class ScriptedPeerProcess:
    """A peer started by :func:`start_scripted_peer`."""

    host: str
    port: int
    handle: str
    process: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def acct(self) -> str:
        return f"acct:{self.handle}@{self.host}:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base}/actors/{self.handle}"

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/stats", timeout=5).json())

    def stop(self) -> None:
        from tests.support.processes import stop_process

        stop_process(self.process)


def start_scripted_peer(
    answer: str,
    *,
    port: int,
    host: str = "127.0.0.1",
    retry_after: int | None = None,
    handle: str = "peer",
    authorized_fetch: bool = False,
    timeout: float = 15.0,
) -> ScriptedPeerProcess:
    """Start the peer as a process and wait until it answers."""
    command = [sys.executable, "-m", "tests.support.scripted_peer"]
    command += ["--host", host, "--port", str(port), "--answer", answer, "--handle", handle]
    if authorized_fetch:
        command.append("--authorized-fetch")
    if retry_after is not None:
        command += ["--retry-after", str(retry_after)]
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peer = ScriptedPeerProcess(host=host, port=port, handle=handle, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout is not None else ""
            raise RuntimeError(f"the scripted peer exited early:\n{output}")
        try:
            peer.stats()
        except httpx.HTTPError:
            time.sleep(0.02)
        else:
            return peer
    peer.stop()
    raise TimeoutError(f"the scripted peer did not answer in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address to listen on")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answer", choices=ANSWERS, required=True)
    parser.add_argument("--retry-after", help="the Retry-After value of a 429 answer")
    parser.add_argument("--handle", default="peer")
    parser.add_argument(
        "--authorized-fetch",
        action="store_true",
        help="serve the actor only to signed fetches, as Mastodon's secure mode does",
    )
    args = parser.parse_args()
    import uvicorn

    app = create_app(
        base=f"http://{args.host}:{args.port}",
        handle=args.handle,
        answer=args.answer,
        retry_after=args.retry_after,
        authorized_fetch=args.authorized_fetch,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # A request still hanging must not hold the shutdown for long.
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
