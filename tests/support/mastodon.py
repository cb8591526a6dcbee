"""A Mastodon-shaped server for the in-process network: WebFinger, ``Person`` actors at
``/users/NAME`` with real RSA keys (Mastodon's shape: ``publicKey`` with ``#main-key``,
a shared inbox), an inbox that records what it is sent, and votes sent the way Mastodon
sends them: one signed ``Create`` of a ``Note`` with ``name`` = the option and
``inReplyTo`` = the poll, per option chosen, to the poll author's inbox.

It lets governance tests have remote members who vote "from Mastodon" over the real
code path (real documents, real HTTP signatures) without a Mastodon install.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation import httpsig, keys, proofs
from federation.errors import FederationError
from federation.jsonld import (
    AS_CONTEXT_URL,
    DATA_INTEGRITY_V2_CONTEXT_URL,
    MULTIKEY_V1_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
)
from tests.support.network import Network

AS2 = "application/activity+json"


@dataclass
class MastodonUser:
    name: str
    actor: str
    key: keys.PrivateKey
    # An Ed25519 Multikey in the actor's assertionMethod (FEP-521a), as Mitra publishes:
    # for ballots that carry a proof.
    ed_key: Ed25519PrivateKey | None = None

    @property
    def multikey_id(self) -> str:
        return f"{self.actor}#ed25519-key"

    @property
    def handle(self) -> str:
        return f"{self.name}@{self.actor.split('/')[2]}"


@dataclass
class Mastodon:
    """One Mastodon-like server at ``domain`` in ``network``."""

    network: Network
    domain: str
    users: dict[str, MastodonUser] = field(default_factory=dict)
    # Every activity POSTed to any inbox here, in order.
    received: list[dict[str, Any]] = field(default_factory=list)
    # Mastodon's secure mode (AUTHORIZED_FETCH): an actor is served only to a fetch
    # signed by a key whose owner's document verifies it; others get 401.
    authorized_fetch: bool = False
    # The key ids of the signed fetches answered, in order.
    signed_fetches: list[str] = field(default_factory=list)
    # The statuses its users posted, served at their ids (by path).
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base = f"https://{self.domain}"
        app = Starlette(
            routes=[
                Route("/.well-known/webfinger", self._webfinger),
                Route("/users/{name}", self._actor),
                Route("/users/{name}/statuses/{status}", self._status),
                Route("/users/{name}/inbox", self._inbox, methods=["POST"]),
                Route("/inbox", self._inbox, methods=["POST"]),
            ]
        )
        self.network.router.add(self.domain, app)

    def add_user(self, name: str, *, multikey: bool = False) -> MastodonUser:
        pem = keys.generate_rsa_private_pem()
        ed_key = Ed25519PrivateKey.generate() if multikey else None
        user = MastodonUser(
            name, f"{self.base}/users/{name}", keys.load_own_private_key(pem), ed_key
        )
        self.users[name] = user
        return user

    # --- what the server answers ----------------------------------------------------------

    async def _webfinger(self, request: Request) -> Response:
        resource = request.query_params.get("resource", "")
        name = resource.removeprefix("acct:").split("@")[0]
        user = self.users.get(name)
        if user is None or not resource.endswith("@" + self.domain):
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "subject": f"acct:{name}@{self.domain}",
                "links": [{"rel": "self", "type": AS2, "href": user.actor}],
            },
            media_type="application/jrd+json",
        )

    def actor_document(self, user: MastodonUser) -> dict[str, Any]:
        document: dict[str, Any] = {
            "@context": [AS_CONTEXT_URL, SECURITY_V1_CONTEXT_URL],
            "id": user.actor,
            "type": "Person",
            "preferredUsername": user.name,
            "name": user.name.title(),
            "inbox": f"{user.actor}/inbox",
            "outbox": f"{user.actor}/outbox",
            "followers": f"{user.actor}/followers",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": f"{user.actor}#main-key",
                "owner": user.actor,
                "publicKeyPem": keys.public_pem(user.key),
            },
        }
        if user.ed_key is not None:
            document["@context"].append(MULTIKEY_V1_CONTEXT_URL)
            document["assertionMethod"] = [
                {
                    "id": user.multikey_id,
                    "type": "Multikey",
                    "controller": user.actor,
                    "publicKeyMultibase": keys.ed25519_to_multibase(user.ed_key.public_key()),
                }
            ]
        return document

    async def _actor(self, request: Request) -> Response:
        if self.authorized_fetch:
            refusal = await self._check_signed_fetch(request)
            if refusal is not None:
                return refusal
        user = self.users.get(request.path_params["name"])
        if user is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(json.dumps(self.actor_document(user)), media_type=AS2)

    async def _status(self, request: Request) -> Response:
        found = self.statuses.get(request.url.path)
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(json.dumps(found), media_type=AS2)

    async def _check_signed_fetch(self, request: Request) -> Response | None:
        async def lookup(key_id: str) -> Any:
            owner = await self.network.http.get(key_id, headers={"Accept": AS2})
            return keys.load_public_pem(owner.json()["publicKey"]["publicKeyPem"])

        try:
            verified = await httpsig.verify_request(
                "GET",
                request.url.path,
                request.url.query,
                request.headers,
                b"",
                self.network.clock.now(),
                lookup,
            )
        except FederationError as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        self.signed_fetches.append(verified.key_id)
        return None

    async def _inbox(self, request: Request) -> Response:
        self.received.append(json.loads(await request.body()))
        return Response(status_code=202)

    # --- what its users do ----------------------------------------------------------------

    def vote_activity(
        self, user: MastodonUser, question: str, option: str, *, attributed_to: str | None = None
    ) -> dict[str, Any]:
        """A vote as Mastodon builds it (ActivityPub::VoteSerializer); with a proof made
        with the user's Multikey where the user has one."""
        key = uuid.uuid4().hex
        note = {
            "id": f"{user.actor}#votes/{key}",
            "type": "Note",
            "name": option,
            "attributedTo": attributed_to or user.actor,
            "inReplyTo": question,
            "to": [question.rsplit("/proposals/", 1)[0] + "/actors/coop"],
        }
        if user.ed_key is not None:
            note = proofs.sign(
                {"@context": [AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL], **note},
                user.ed_key,
                verification_method=user.multikey_id,
                created=self.network.clock.now(),
            )
        return {
            "@context": AS_CONTEXT_URL,
            "id": f"{user.actor}#votes/{key}/activity",
            "type": "Create",
            "actor": user.actor,
            "published": "2027-03-01T09:00:00Z",
            "to": note["to"],
            "object": note,
        }

    async def post(
        self, user: MastodonUser, inbox: str, activity: dict[str, Any]
    ) -> httpx.Response:
        """POST ``activity`` to ``inbox``, signed as ``user`` (draft-cavage, RSA)."""
        auth = httpsig.SignatureAuth(f"{user.actor}#main-key", user.key, self.network.clock)
        return await self.network.http.post(
            inbox,
            content=json.dumps(activity).encode(),
            headers={"Content-Type": AS2},
            auth=auth,
        )

    async def vote(
        self, user: MastodonUser, question: str, *options: str, inbox: str | None = None
    ) -> list[dict[str, Any]]:
        """Vote on the poll ``question`` for ``options``: one Create per option, as
        Mastodon does; returns the activities sent."""
        target = inbox or question.rsplit("/proposals/", 1)[0] + "/actors/coop/inbox"
        sent = []
        for option in options:
            activity = self.vote_activity(user, question, option)
            response = await self.post(user, target, activity)
            assert response.status_code in (200, 202), response.text
            sent.append(activity)
        return sent

    def status(
        self,
        user: MastodonUser,
        in_reply_to: str,
        content: str,
        *,
        to: list[str] | None = None,
        cc: list[str] | None = None,
    ) -> dict[str, Any]:
        """A public reply as Mastodon serialises a status (NoteSerializer: the shape of
        a chaos.social reply), kept and served at its id."""
        number = len(self.statuses) + 1
        uri = f"{user.actor}/statuses/{number}"
        note = {
            "id": uri,
            "type": "Note",
            "summary": None,
            "inReplyTo": in_reply_to,
            "published": "2027-03-01T09:00:00Z",
            "url": f"{self.base}/@{user.name}/{number}",
            "attributedTo": user.actor,
            "to": to if to is not None else ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": cc if cc is not None else [f"{user.actor}/followers"],
            "sensitive": False,
            "conversation": (
                f"tag:{self.domain},2027-03-01:objectId={number}:objectType=Conversation"
            ),
            "content": content,
            "contentMap": {"fr": content},
            "attachment": [],
            "tag": [],
        }
        self.statuses[f"/users/{user.name}/statuses/{number}"] = note
        return note

    async def reply(
        self, user: MastodonUser, inbox: str, in_reply_to: str, content: str, **addressing: Any
    ) -> dict[str, Any]:
        """Post a public reply to ``in_reply_to`` (a Create, as Mastodon sends it) to
        ``inbox``; returns the Note."""
        note = self.status(user, in_reply_to, content, **addressing)
        activity = {
            "@context": AS_CONTEXT_URL,
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": user.actor,
            "published": note["published"],
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }
        response = await self.post(user, inbox, activity)
        assert response.status_code in (200, 202), response.text
        return note

    def replies_to(self, user: MastodonUser) -> list[dict[str, Any]]:
        """Notes sent to ``user`` (direct replies), oldest first."""
        return [
            a["object"]
            for a in self.received
            if a.get("type") == "Create"
            and isinstance(a.get("object"), dict)
            and user.actor in a["object"].get("to", [])
        ]
