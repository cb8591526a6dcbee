"""The ceiling for bench/inbox.py: the shared inbox as a bare ASGI application.

Per ``POST /inbox`` it makes the checks ``coopnode serve`` makes before its 202
(node/web/inbox.py, federation/inbox.py), in the same order and with the same functions
wherever the node has one, then writes the same row (``inbox_activities``, through
``node.services.inbox.RECORD``) with the same group-commit writer
(``Database.insert``), and answers 202 once the row is committed:

1. the body: a declared ``Content-Length`` over 1 MiB, or a body that grows past it (413);
2. ``Content-Type``: ActivityStreams JSON (415);
3. the body is UTF-8, a JSON object within the node's bounds (``parse_object``: depth,
   no NUL or unpaired surrogate), with an http(s) ``id``, a ``type`` and an http(s)
   ``actor`` (400);
4. the domain policy on the actor's host (and a boosted object's), and on the key's
   host (403); none is refused here, as none is on the benchmark's node;
5. a ``Delete`` from an actor it never knew is answered 202 and not stored;
6. the signature: draft-cavage (``Signature``: parsed, Mastodon's policy on what is
   signed and on the ``Date`` window, the ``Digest`` or ``Content-Digest`` against the
   body, the RSA signature over the signing string) or RFC 9421 (``Signature-Input``),
   with the key from a dictionary in memory (401);
7. the signing key's owner is the activity's actor (401), and the activity's id is on
   the actor's server (400);
8. the row: its state (``ignored`` when no feature wants the activity) and its values
   as the node makes them, the body kept verbatim.

What it leaves out is what the ceiling measures: Starlette's app object and the node's
front middleware (trusted proxies, the minimum pace of a body), the metrics, the key
cache's bookkeeping (least-recent order, a refetch on a failed signature), the
verification pipeline's coroutines, the worker's wake-up, and the background workers.
A key it does not hold is refused (the node would fetch it).

Run by bench/inbox.py; by hand:

    .venv/bin/python bench/inbox_ceiling.py --port 8123 \\
        --database-url sqlite:////tmp/ceiling.db --keys keys.json

``keys.json`` lists the keys it trusts: ``[{"key_id": ..., "owner": ...,
"public_key_pem": ...}]``. A new database is given the node's schema (the project's
migrations) first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.requests import ClientDisconnect  # noqa: E402

from federation import httpsig, rfc9421  # noqa: E402
from federation.errors import (  # noqa: E402
    FederationError,
    MalformedInput,
    NotAuthorized,
    Refused,
)
from federation.inbox import actor_id, host_of, read_activity  # noqa: E402
from federation.keys import PublicKey, load_public_pem  # noqa: E402
from federation.origins import same_origin  # noqa: E402
from node.inbox.classify import classify  # noqa: E402
from node.services import inbox  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.urls import Urls  # noqa: E402
from node.web.inbox import read_body  # noqa: E402

Scope = dict[str, Any]
Receive = Any
Send = Any

_ACCEPTED_START = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-length", b"0")],
}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


class CeilingInbox:
    """The shared inbox, bare. ``keys`` maps a key id to its owner and public key."""

    def __init__(
        self, database_url: str, base_url: str, keys: Mapping[str, tuple[str, PublicKey]]
    ) -> None:
        self.database_url = database_url
        self.base_url = base_url
        self.urls = Urls(base_url)
        self.keys = dict(keys)
        self.known_actors = frozenset(owner for owner, _ in self.keys.values())
        # The domains refused: none, as on the benchmark's node. Still asked, as the node asks.
        self.blocked: frozenset[str] = frozenset()
        self.db: Database | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or scope["path"] != "/inbox":
            await _answer(send, 404, {"error": "not_found", "reason": "only POST /inbox here"})
            return
        try:
            await self._receive(scope, receive)
        except ClientDisconnect:
            return
        except FederationError as exc:
            await _answer(send, exc.status, {"error": type(exc).__name__, "reason": exc.public})
            return
        await send(_ACCEPTED_START)
        await send(_EMPTY_BODY)

    async def _receive(self, scope: Scope, receive: Receive) -> None:
        headers = httpsig.lowered_headers(
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]
        )
        body = await read_body(receive, headers.get("content-length"))
        now = datetime.now(UTC)

        activity, actor, text = read_activity(headers, body)
        activity_id = activity["id"]

        self._check_domain(actor)
        if activity["type"] == "Announce":
            shared = actor_id(activity.get("object"))
            if shared is not None:
                self._check_domain(shared)
        if activity["type"] == "Delete" and actor not in self.known_actors:
            return  # accepted, not stored: a Delete from an actor never known

        key_id = await self._verify_signature(scope, headers, body, now)
        owner = self.keys[key_id][0]
        if owner != actor:
            raise NotAuthorized(
                f"the request is signed by {owner} but the activity's actor is {actor}"
            )
        if not same_origin(activity_id, actor):
            raise MalformedInput(f"the activity {activity_id} is not on its actor's server")

        state = "ignored" if classify(activity, actor=actor, urls=self.urls) is None else "pending"
        values = inbox.record_values(activity, actor=actor, now=now, state=state, body=text)
        assert self.db is not None
        await self.db.insert(inbox.RECORD, values)

    def _check_domain(self, url: str) -> None:
        host = host_of(url)
        if host in self.blocked:
            raise Refused(f"{host} is blocked by this node")

    def _key(self, key_id: str) -> PublicKey:
        self._check_domain(key_id)
        found = self.keys.get(key_id)
        if found is None:
            raise NotAuthorized(f"the key {key_id} is not one this inbox holds")
        return found[1]

    async def _verify_signature(
        self, scope: Scope, headers: httpsig.LoweredHeaders, body: bytes, now: datetime
    ) -> str:
        path = scope["path"]
        query = scope["query_string"].decode("latin-1")
        if "signature-input" in headers:

            async def lookup(key_id: str) -> PublicKey:
                return self._key(key_id)

            url = self.base_url + path + (f"?{query}" if query else "")
            verified = await rfc9421.verify_request(
                method="POST", url=url, headers=headers, body=body, now=now, key_lookup=lookup
            )
            return str(verified.key_id)
        value = headers.get("signature")
        if value is None:
            raise NotAuthorized("the request is not signed: sign it as Mastodon does")
        params = httpsig.parse_signature_header(value)
        httpsig.check_policy(params, "POST", headers, now)
        covers_body = "digest" in params.headers or "content-digest" in params.headers
        if body and not covers_body:
            raise NotAuthorized("the request has a body but its signature covers no digest of it")
        if covers_body:
            httpsig.verify_body_digest(headers, body)
        # As the node: the target with its query string, then without.
        targets = [f"{path}?{query}", path] if query else [path]
        texts = [
            httpsig.signing_string(
                "POST", target, headers, params.headers, params.created, params.expires
            )
            for target in targets
        ]
        key = self._key(params.key_id)
        if any(httpsig.verify_signature(params, text, key) for text in texts):
            return params.key_id
        raise NotAuthorized(f"signature does not match the key {params.key_id}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.db = Database(self.database_url, readers=1)
                    self.db.writer.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.db is not None:
                    self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Send, status: int, document: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def read_keys(path: Path) -> dict[str, tuple[str, PublicKey]]:
    entries = json.loads(path.read_text())
    return {e["key_id"]: (e["owner"], load_public_pem(e["public_key_pem"])) for e in entries}


def prepare_schema(database_url: str) -> None:
    """Give a new database the node's schema, with the project's migrations."""
    from node.storage.engine import create_null_pool_engine
    from node.storage.migrate import SchemaState, schema_state, upgrade

    engine = create_null_pool_engine(database_url)
    try:
        state = schema_state(engine)
        if state is SchemaState.EMPTY:
            upgrade(engine)
        elif state is not SchemaState.CURRENT:
            raise SystemExit(f"the database's schema is {state.value}: give a new one")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="the keys it trusts (JSON)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()

    prepare_schema(args.database_url)
    app = CeilingInbox(args.database_url, f"http://127.0.0.1:{args.port}", read_keys(args.keys))

    import uvicorn

    from node import heap

    heap.settle()  # the collector as `coopnode serve` sets it
    # uvicorn as `coopnode serve` runs it (node/cli/server.py).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level=args.log_level,
        log_config=uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        ws="none",
    )


if __name__ == "__main__":
    main()
