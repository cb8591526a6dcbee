"""The audit of a proposal counted ballot by ballot (node.governance.audit.ballots): an
honest host verifies, weighted colleges and multiple choice are recounted, and a host
that lists a voter twice, serves another electorate or a malformed ballot is caught."""

from __future__ import annotations

from fractions import Fraction

from node.governance.audit.render import render
from node.governance.rules.tally import Majority, Option
from tests.node.governance.audit.host import (
    DocumentServer,
    Scenario,
    audit_now,
    ballot_of,
    cli,
    honest,
    question_of,
)


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


def test_a_malformed_ballot_is_a_clear_error_naming_it(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    ballot_of(scenario, server, 3)["castAt"] = "tuesday"

    run = cli(url)

    assert run.exit_code == 2
    assert "ballots item 3.castAt" in run.stderr
