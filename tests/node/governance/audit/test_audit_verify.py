"""A ballot's Notes and proofs (node.governance.audit.verify): a choice changed after
signing, Notes that say something else, another actor's key, a key the voter does not
publish; a voter whose key cannot be had is unverifiable, not tampered."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.governance.rules.tally import Majority
from tests.node.governance.audit.host import (
    DocumentServer,
    Scenario,
    audit_now,
    ballot_of,
    cli,
    honest,
    question_of,
)


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
