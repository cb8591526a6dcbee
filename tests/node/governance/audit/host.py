"""A host for the audit's tests: a real HTTP server on 127.0.0.1 and an honest co-op.

A :class:`Scenario` plays an honest host: it takes voters (each with an Ed25519 key
published in an actor document, as a coopnode publishes it) and their ballots, counts
them with the tally, and publishes the closed ``Question``, its electorate and ballots
collections in the wire format. Each test then lies about one thing, the way a
dishonest or buggy host could, and checks that the audit says so. ``bench/audit.py``
serves its large vote with the same classes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import uvicorn
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import keys, proofs
from node.cli.audit import audit_command, run_audit
from node.governance.audit.report import AuditReport
from node.governance.documents import result_json as outcome
from node.governance.rules.digest import roster_digest
from node.governance.rules.tally import (
    Ballot,
    Consent,
    Majority,
    Option,
    Proposal,
    Qualified,
    Reason,
    Result,
    Role,
    tally,
)

AS = "https://www.w3.org/ns/activitystreams"
DATA_INTEGRITY = "https://w3id.org/security/data-integrity/v2"
AS2 = "application/activity+json"
OPENS = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(days=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fraction(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


# --- a tiny ActivityPub server -----------------------------------------------------------


class DocumentServer:
    """Serves ``documents`` (path with query → JSON object, or its bytes) as
    ActivityStreams on a free port of 127.0.0.1, from uvicorn on a thread of its own."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.documents: dict[str, dict[str, Any] | bytes] = {}
        self.requests = 0
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.requests += 1
        query = scope["query_string"].decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        document = self.documents.get(path)
        if document is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        headers = [(b"content-type", AS2.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def start(self) -> DocumentServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the document server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- an honest host ----------------------------------------------------------------------


@dataclass
class Voter:
    id: str
    key: Ed25519PrivateKey
    college: str | None = None

    @property
    def key_id(self) -> str:
        return f"{self.id}#ed25519-key"

    def actor(self) -> dict[str, Any]:
        return {
            "@context": [AS, "https://w3id.org/security/multikey/v1"],
            "id": self.id,
            "type": "Person",
            "preferredUsername": self.id.rsplit("/", 1)[-1],
            "inbox": f"{self.id}/inbox",
            "assertionMethod": [
                {
                    "id": self.key_id,
                    "type": "Multikey",
                    "controller": self.id,
                    "publicKeyMultibase": keys.ed25519_to_multibase(self.key.public_key()),
                }
            ],
        }


@dataclass
class Scenario:
    """A closed proposal, its electorate and its ballots, published as a coopnode does."""

    base: str
    options: tuple[Option, ...] = (
        Option("For", Role.FOR),
        Option("Against", Role.AGAINST),
        Option("Abstain", Role.ABSTAIN),
    )
    rule: Majority | Qualified | Consent | None = field(
        default_factory=lambda: Qualified(Fraction(2, 3))
    )
    multiple_choice: bool = False
    max_choices: int = 1
    quorum: Fraction = Fraction(1, 4)
    allow_change: bool = True
    abstentions_count: bool = False
    college_weights: dict[str, Fraction] | None = None
    page_size: int = 1000
    key: str = "p1"
    voters: list[Voter] = field(default_factory=list)
    electorate: dict[str, str | None] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def proposal_id(self) -> str:
        return f"{self.base}/proposals/{self.key}"

    def voter(self, name: str, college: str | None = None, *, eligible: bool = True) -> Voter:
        voter = Voter(f"{self.base}/actors/{name}", Ed25519PrivateKey.generate(), college)
        self.voters.append(voter)
        if eligible:
            self.electorate[voter.id] = college
        return voter

    def vote(
        self,
        voter: Voter,
        *choices: str,
        at: timedelta = timedelta(hours=1),
        signed: bool = True,
        key: Ed25519PrivateKey | None = None,
        key_id: str | None = None,
    ) -> dict[str, Any]:
        """A ballot as received: one Note per choice, signed by the voter's node."""
        n = len(self.items) + 1
        cast_at = OPENS + at + timedelta(microseconds=n)
        notes = []
        for choice in choices:
            note: dict[str, Any] = {
                "@context": [AS, DATA_INTEGRITY],
                "id": f"{voter.id}/ballots/{n}#{choice}",
                "type": "Note",
                "name": choice,
                "inReplyTo": self.proposal_id,
                "attributedTo": voter.id,
                "to": [f"{self.base}/actors/coop"],
            }
            if signed:
                note = proofs.sign(
                    note,
                    key or voter.key,
                    verification_method=key_id or voter.key_id,
                    created=cast_at,
                )
            notes.append(note)
        item = {
            "type": "Ballot",
            "voter": voter.id,
            "college": voter.college,
            "choices": list(choices),
            "castAt": _iso(cast_at),
            "activity": f"{voter.id}/activities/{n}",
            "status": "counted",
            "votes": notes,
        }
        self.items.append(item)
        return item

    def proposal(self) -> Proposal:
        return Proposal(
            options=self.options,
            opens_at=OPENS,
            closes_at=CLOSES,
            rule=self.rule,
            multiple_choice=self.multiple_choice,
            max_choices=self.max_choices,
            quorum=self.quorum,
            abstentions_count_for_quorum=self.abstentions_count,
            replacements_allowed=self.allow_change,
            college_weights=self.college_weights,
        )

    def count(self) -> Result:
        """The host's count, which also sets each published ballot's status."""
        ballots = [
            Ballot(
                voter=i["voter"],
                choices=tuple(i["choices"]),
                cast_at=datetime.fromisoformat(i["castAt"]),
                activity_id=i["activity"],
                college=i["college"],
            )
            for i in self.items
        ]
        result = tally(self.proposal(), self.electorate, ballots)
        statuses: dict[Ballot, tuple[str, str]] = {}
        for refusal in result.set_aside:
            status = "replaced" if refusal.reason is Reason.REPLACED else "set aside"
            statuses[refusal.ballot] = (status, refusal.reason.value)
        for refusal in result.refused:
            statuses[refusal.ballot] = ("refused", refusal.reason.value)
        for item, ballot in zip(self.items, ballots, strict=True):
            status, reason = statuses.get(ballot, ("counted", ""))
            item["status"] = status
            item.pop("reason", None)
            if reason:
                item["reason"] = reason
        return result

    def publish(self, server: DocumentServer) -> str:
        """Count, then put every document on ``server``; returns the proposal's URL."""
        result = self.count()
        docs = server.documents
        prefix = f"/proposals/{self.key}"
        options_key = "anyOf" if self.multiple_choice else "oneOf"
        question: dict[str, Any] = {
            "@context": [AS, "https://coopnode.org/ns/v1"],
            "id": self.proposal_id,
            "type": "Question",
            "attributedTo": f"{self.base}/actors/coop",
            "name": "Adopt the 2027 delivery tariff",
            "content": "<p>The tariff.</p>",
            options_key: [
                {
                    "type": "Note",
                    "name": o.name,
                    "optionRole": o.role.value,
                    "replies": {"type": "Collection", "totalItems": result.counts[o.name]},
                }
                for o in self.options
            ],
            "startTime": _iso(OPENS),
            "endTime": _iso(CLOSES),
            "closed": _iso(CLOSES),
            "votersCount": result.turnout,
            "quorum": _fraction(self.quorum),
            "allowBallotChange": self.allow_change,
            "abstentionsCountTowardQuorum": self.abstentions_count,
            "countingMode": "open",
            "electorate": [f"{self.base}/actors/coop"],
            "ballots": f"{self.proposal_id}/ballots",
            "rosterSnapshot": {
                "id": f"{self.proposal_id}/electorate",
                "totalItems": len(self.electorate),
                "digest": roster_digest(self.electorate.items()),
            },
            "outcome": outcome(result),
            "to": [f"{AS}#Public"],
            "published": _iso(OPENS),
        }
        if self.multiple_choice:
            question["maxChoices"] = self.max_choices
        if isinstance(self.rule, Majority):
            question["decisionRule"] = {"type": "majority"}
        elif isinstance(self.rule, Qualified):
            question["decisionRule"] = {
                "type": "qualified",
                "threshold": _fraction(self.rule.fraction),
            }
        elif isinstance(self.rule, Consent):
            question["decisionRule"] = {"type": "consent", "blockAt": self.rule.block_at}
        if self.college_weights is not None:
            question["colleges"] = [
                {"name": n, "weight": _fraction(w)} for n, w in self.college_weights.items()
            ]
        docs[prefix] = question
        roster = [{"voter": v, "college": c} for v, c in self.electorate.items()]
        self._collection(docs, f"{prefix}/electorate", roster)
        self._collection(docs, f"{prefix}/ballots", self.items)
        for voter in self.voters:
            docs[voter.id.removeprefix(self.base)] = voter.actor()
        return self.proposal_id

    def _collection(self, docs: dict[str, Any], path: str, items: list[Any]) -> None:
        url = f"{self.base}{path}"
        docs[path] = {
            "@context": [AS],
            "id": url,
            "type": "OrderedCollection",
            "totalItems": len(items),
            "first": f"{url}?page=1",
        }
        pages = max(1, -(-len(items) // self.page_size))
        for n in range(1, pages + 1):
            page: dict[str, Any] = {
                "@context": [AS],
                "id": f"{url}?page={n}",
                "type": "OrderedCollectionPage",
                "partOf": url,
                "orderedItems": items[(n - 1) * self.page_size : n * self.page_size],
            }
            if n < pages:
                page["next"] = f"{url}?page={n + 1}"
            docs[f"{path}?page={n}"] = page


# --- helpers -----------------------------------------------------------------------------


def honest(server: DocumentServer) -> Scenario:
    """Twelve eligible members, one outsider; signed and unsigned ballots, a change of
    mind, a late ballot and one from a non-member."""
    scenario = Scenario(server.base)
    members = [scenario.voter(f"m{i}") for i in range(12)]
    outsider = scenario.voter("outsider", eligible=False)
    for member in members[:7]:
        scenario.vote(member, "For")
    scenario.vote(members[7], "Against")
    scenario.vote(members[8], "Abstain", signed=False)  # a Mastodon voter: no proof
    scenario.vote(members[9], "For", signed=False)
    scenario.vote(members[10], "Against", at=timedelta(hours=2))
    scenario.vote(members[10], "For", at=timedelta(hours=3))  # changed their mind
    scenario.vote(members[11], "For", at=timedelta(days=2))  # too late
    scenario.vote(outsider, "For")
    return scenario


def audit_now(url: str) -> AuditReport:
    return asyncio.run(run_audit(url, allow_http=True))


def cli(url: str) -> Any:
    return CliRunner().invoke(audit_command, [url, "--allow-http"])


def ballot_of(scenario: Scenario, server: DocumentServer, position: int) -> dict[str, Any]:
    page = server.documents[f"/proposals/{scenario.key}/ballots?page=1"]
    assert isinstance(page, dict)
    item: dict[str, Any] = page["orderedItems"][position - 1]
    return item


def question_of(scenario: Scenario, server: DocumentServer) -> dict[str, Any]:
    question = server.documents[f"/proposals/{scenario.key}"]
    assert isinstance(question, dict)
    return question
