"""Reading the closed Question (node.governance.audit.read): a proposal not closed, and
each malformed field, are clear errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.node.governance.audit.host import DocumentServer, cli, honest, question_of


def test_a_proposal_that_is_not_closed_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    del question_of(scenario, server)["closed"]

    run = cli(url)

    assert run.exit_code == 2
    assert "not closed" in run.stderr
    assert "Traceback" not in run.output


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
