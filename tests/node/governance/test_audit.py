"""``coopnode audit`` against a real HTTP server on 127.0.0.1.

A :class:`Scenario` plays an honest host: it takes voters (each with an Ed25519 key
published in an actor document, as a coopnode publishes it) and their ballots, counts
them with the tally, and publishes the closed ``Question``, its electorate and ballots
collections in the wire format. Each test then lies about one thing, the way a
dishonest or buggy host could, and checks that the audit says so.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import keys, proofs
from node.cli.audit import audit_command, run_audit
from node.governance.audit import AuditReport, audit, render
from node.governance.proposing import result_json as outcome
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


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[DocumentServer]:
    served = DocumentServer().start()
    yield served
    served.stop()


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


# --- an honest host verifies -------------------------------------------------------------


def test_an_honest_proposal_verifies(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)

    run = cli(url)

    assert run.exit_code == 0, run.output
    assert "Verdict: VERIFIED" in run.output
    assert "Discrepancies: none" in run.output
    assert "Adopt the 2027 delivery tariff" in run.output
    assert "qualified majority, at least 2/3" in run.output
    report = audit_now(url)
    assert report.ok
    assert (report.verified, report.unverifiable, report.failed) == (12, 2, 0)
    assert report.recount.counts == {"For": 9, "Against": 1, "Abstain": 1}
    statuses = [b.recount_status for b in report.ballots]
    assert statuses.count("replaced") == 1
    assert statuses.count("refused") == 2
    unverifiable = {b.voter for b in report.ballots if b.proof == "unverifiable"}
    assert unverifiable == {f"{server.base}/actors/m8", f"{server.base}/actors/m9"}
    assert f"{server.base}/actors/m8" in render(report)


def test_colleges_that_weigh_are_recounted_with_their_weights(server: DocumentServer) -> None:
    scenario = Scenario(
        server.base,
        rule=Majority(),
        college_weights={"producers": Fraction(1, 2), "consumers": Fraction(1, 2)},
        page_size=3,  # several pages
    )
    producers = [scenario.voter(f"p{i}", "producers") for i in range(3)]
    consumers = [scenario.voter(f"c{i}", "consumers") for i in range(6)]
    for voter in producers:
        scenario.vote(voter, "For")
    for voter in consumers[:4]:
        scenario.vote(voter, "Against")
    scenario.vote(consumers[4], "For")
    url = scenario.publish(server)

    report = audit_now(url)
    text = render(report)

    assert report.ok, report.discrepancies
    assert report.recount.weighted_shares is not None
    assert "producers" in text
    assert "consumers" in text
    assert "Weighted share" in text
    assert "1/2" in text  # the weights
    assert "Verdict: VERIFIED" in text


def test_a_multiple_choice_ballot_has_one_signed_note_per_option(
    server: DocumentServer,
) -> None:
    scenario = Scenario(
        server.base,
        options=(Option("Oats"), Option("Rye"), Option("Spelt")),
        rule=None,
        multiple_choice=True,
        max_choices=2,
    )
    voters = [scenario.voter(f"v{i}") for i in range(4)]
    scenario.vote(voters[0], "Oats", "Rye")
    scenario.vote(voters[1], "Spelt")
    scenario.vote(voters[2], "Rye", "Spelt")
    url = scenario.publish(server)

    report = audit_now(url)

    assert report.ok, report.discrepancies
    assert report.verified == 3
    assert report.recount.counts == {"Oats": 1, "Rye": 2, "Spelt": 2}


# --- what a dishonest host is caught at --------------------------------------------------


def test_a_choice_changed_after_signing_is_tampered(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    item = ballot_of(scenario, server, 8)  # m7 voted Against
    item["choices"] = ["For"]
    item["votes"][0]["name"] = "For"
    question = question_of(scenario, server)
    question["outcome"]["counts"] = {"For": 10, "Against": 0, "Abstain": 1}

    run = cli(url)
    report = audit_now(url)

    assert run.exit_code == 1, run.output
    assert "TAMPERED" in run.output
    assert "Verdict: DOES NOT VERIFY" in run.output
    tampered = [b for b in report.ballots if b.proof == "failed"]
    assert [b.voter for b in tampered] == [f"{server.base}/actors/m7"]
    assert tampered[0].recount_status is None  # left out of the recount
    assert report.recount.counts["For"] == 9
    assert "count for 'For': published 10, recomputed 9" in report.discrepancies


def test_a_ballot_whose_choices_differ_from_its_notes_is_reported(
    server: DocumentServer,
) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    ballot_of(scenario, server, 8)["choices"] = ["For"]  # the Note still says Against

    report = audit_now(url)

    assert not report.ok
    assert report.inconsistent == 1
    assert any("not among the ballot's choices" in d for d in report.discrepancies)


def test_a_published_count_that_differs_from_the_recount_is_reported(
    server: DocumentServer,
) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    question = question_of(scenario, server)
    question["outcome"]["counts"]["Against"] = 3
    question["outcome"]["turnout"] = 13

    run = cli(url)

    assert run.exit_code == 1, run.output
    assert "count for 'Against': published 3, recomputed 1" in run.output
    assert "turnout: published 13, recomputed 11" in run.output
    assert "Verdict: DOES NOT VERIFY" in run.output


def test_a_voter_counted_twice_is_reported(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    first = ballot_of(scenario, server, 11)  # m10's first ballot, replaced
    assert first["status"] == "replaced"
    first["status"] = "counted"
    first.pop("reason")
    question = question_of(scenario, server)
    question["outcome"]["counts"]["Against"] += 1
    question["outcome"]["turnout"] += 1

    report = audit_now(url)

    assert not report.ok
    voter = f"{server.base}/actors/m10"
    assert f"{voter} has 2 ballots published as counted" in report.discrepancies
    assert any(
        d.startswith("ballot 11 (") and d.endswith("published counted, recount replaced")
        for d in report.discrepancies
    )


def test_a_proof_made_with_another_actors_key_is_key_confusion(server: DocumentServer) -> None:
    scenario = Scenario(server.base, rule=Majority())
    alice, bob, carol = (scenario.voter(n) for n in ("alice", "bob", "carol"))
    scenario.vote(alice, "For", key=bob.key, key_id=bob.key_id)  # bob signs for alice
    scenario.vote(bob, "Against")
    scenario.vote(carol, "For")
    url = scenario.publish(server)

    run = cli(url)
    report = audit_now(url)

    assert run.exit_code == 1, run.output
    assert "key confusion" in run.output
    [forged] = [b for b in report.ballots if b.proof == "failed"]
    assert forged.voter == alice.id
    assert any(bob.id in p and "key confusion" in p for p in forged.problems)


def test_a_key_the_voter_does_not_publish_fails(server: DocumentServer) -> None:
    scenario = Scenario(server.base, rule=Majority())
    alice, bob = scenario.voter("alice"), scenario.voter("bob")
    scenario.vote(alice, "For", key=Ed25519PrivateKey.generate())  # not alice's key
    scenario.vote(bob, "Against")
    url = scenario.publish(server)

    report = audit_now(url)

    assert report.failed == 1
    assert any("does not verify" in p for b in report.ballots for p in b.problems)


def test_an_electorate_that_does_not_match_its_digest_is_reported(
    server: DocumentServer,
) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    page = server.documents[f"/proposals/{scenario.key}/electorate?page=1"]
    assert isinstance(page, dict)
    page["orderedItems"].append({"voter": f"{server.base}/actors/outsider", "college": None})

    report = audit_now(url)

    assert not report.ok
    assert any("does not match its digest" in d for d in report.discrepancies)
    assert any("totalItems" in d for d in report.discrepancies)


def test_a_proposal_that_is_not_closed_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    del question_of(scenario, server)["closed"]

    run = cli(url)

    assert run.exit_code == 2
    assert "not closed" in run.stderr
    assert "Traceback" not in run.output


def test_an_unreachable_proposal_is_an_error(server: DocumentServer) -> None:
    run = cli(f"{server.base}/proposals/missing")

    assert run.exit_code == 2
    assert "404" in run.stderr


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("quorum",), "a quarter", "quorum"),
        (("startTime",), "yesterday", "startTime"),
        (("endTime",), None, "endTime: missing"),
        (("decisionRule",), {"type": "plurality"}, "decisionRule.type"),
        (("decisionRule",), {"type": "qualified", "threshold": "3/2"}, "decisionRule"),
        (("oneOf", 0, "optionRole"), "maybe", "oneOf[0].optionRole"),
        (("allowBallotChange",), "yes", "allowBallotChange"),
        (("colleges",), [{"name": "x", "weight": "1/3"}], "colleges"),
        (("outcome", "counts"), [1, 2], "outcome.counts"),
        (("outcome", "turnout"), -1, "outcome.turnout"),
        (("rosterSnapshot",), "sha-256=abc", "rosterSnapshot"),
    ],
)
def test_a_malformed_field_is_a_clear_error_naming_it(
    server: DocumentServer, path: tuple[Any, ...], value: Any, named: str
) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    target: Any = question_of(scenario, server)
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value

    run = cli(url)

    assert run.exit_code == 2, run.output
    assert named in run.stderr
    assert "Traceback" not in run.stderr + run.output


def test_a_malformed_ballot_is_a_clear_error_naming_it(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    ballot_of(scenario, server, 3)["castAt"] = "tuesday"

    run = cli(url)

    assert run.exit_code == 2
    assert "ballots item 3.castAt" in run.stderr


def test_a_page_on_another_host_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    collection = server.documents[f"/proposals/{scenario.key}/ballots"]
    assert isinstance(collection, dict)
    collection["first"] = collection["first"].replace("127.0.0.1", "localhost")

    run = cli(url)

    assert run.exit_code == 2
    assert "another host" in run.stderr


def test_a_page_that_is_not_part_of_the_collection_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    page = server.documents[f"/proposals/{scenario.key}/ballots?page=1"]
    assert isinstance(page, dict)
    page["partOf"] = f"{server.base}/proposals/other/ballots"

    run = cli(url)

    assert run.exit_code == 2
    assert "is part of" in run.stderr


def test_a_voter_whose_actor_is_gone_is_unverifiable_not_tampered(
    server: DocumentServer,
) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    del server.documents["/actors/m3"]

    report = audit_now(url)

    assert report.ok, report.discrepancies
    [gone] = [b for b in report.ballots if b.voter.endswith("/actors/m3")]
    assert gone.proof == "unverifiable"
    assert "could not be checked" in gone.problems[0]


def test_any_http_client_will_do(server: DocumentServer) -> None:
    """Without the address guard (a client of the caller's own), actor documents are
    fetched through fetch_json itself rather than aiohttp."""
    scenario = honest(server)
    url = scenario.publish(server)

    async def run() -> AuditReport:
        async with httpx.AsyncClient() as http:
            return await audit(url, http=http, allow_http=True)

    report = asyncio.run(run())

    assert report.ok, report.discrepancies
    assert report.verified == 12


def test_loopback_is_refused_without_allow_http(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)

    run = CliRunner().invoke(audit_command, [url])

    assert run.exit_code == 2
    assert "only https URLs are fetched" in run.stderr


def test_a_voter_that_is_no_url_is_reported_not_a_traceback(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    strange = "http://[::1"
    item = ballot_of(scenario, server, 1)
    item["voter"] = strange
    item["votes"][0]["attributedTo"] = strange

    report = audit_now(url)

    [ballot] = [b for b in report.ballots if b.voter == strange]
    assert ballot.proof == "unverifiable"  # no actor document to take a key from
    assert "not a valid URL" in ballot.problems[0]
    assert ballot.recount_status == "refused"  # not in the electorate
    assert any("published counted, recount refused" in d for d in report.discrepancies)
