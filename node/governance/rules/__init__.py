"""Governance rules: the tally, the ballot digest and the reading of proposals and of
hosts' Questions.

Pure code: no storage, no HTTP, no clock of its own (``tests/test_layers.py`` keeps it
so). The node calls :func:`tally` with a proposal's settings, its electorate as of the
opening and the ballots the host accepted; ``coopnode audit`` recomputes a published
result with the same function.
"""

from __future__ import annotations

from node.governance.rules.tally import (
    Ballot,
    CollegeCount,
    Consent,
    Majority,
    Option,
    Outcome,
    Proposal,
    Qualified,
    Reason,
    Refusal,
    Result,
    Role,
    Rule,
    tally,
)

__all__ = [
    "Ballot",
    "CollegeCount",
    "Consent",
    "Majority",
    "Option",
    "Outcome",
    "Proposal",
    "Qualified",
    "Reason",
    "Refusal",
    "Result",
    "Role",
    "Rule",
    "tally",
]
