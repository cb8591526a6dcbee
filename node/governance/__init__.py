"""Governance: proposals, ballots and the tally.

Pure code: no storage and no HTTP. Services call :func:`tally` with a proposal's
settings, its electorate as of the opening and the ballots the host accepted; the same
function recomputes a published result in ``coopnode audit``.
"""

from __future__ import annotations

from node.governance.tally import (
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
