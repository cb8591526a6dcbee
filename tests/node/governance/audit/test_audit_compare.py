"""The published result against the recount (node.governance.audit.compare)."""

from __future__ import annotations

from tests.node.governance.audit.host import DocumentServer, cli, honest, question_of


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
