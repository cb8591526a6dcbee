"""A co-op's own vote on a shared proposal hosted elsewhere (its *mirror*), for the
counting modes where each co-op decides at home: "subtotal" (the mirror's counts go to
the host) and "coop" (the mirror decides the co-op's one ballot).

Pure: the host's ``Question`` read into the input a proposal of this co-op is opened
with, and the option a co-op casts from its members' result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from node.governance.rules.proposal_input import iso
from node.governance.rules.tally import Option, Outcome, Result, Role

# Co-op mode: a co-op's own vote ends this long before the shared one, so that its
# ballot reaches the host before the end.
COOP_LEAD = timedelta(minutes=15)


def mirror_input(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The API input of a co-op's own vote mirroring a host's ``Question``."""
    options = document.get("oneOf") or []
    rule = document.get("decisionRule") or {}
    data: dict[str, Any] = {
        "title": str(document.get("name", ""))[:200],
        "text": "",
        "options": [
            {"name": o.get("name"), "role": o.get("optionRole", "plain")}
            for o in options
            if isinstance(o, dict)
        ],
        "rule": rule.get("type"),
        "quorum": "0%",  # quorum is the host's, over the whole electorate
        # The host's opening, not the moment this co-op heard of it or took part: who
        # may vote is who was a member then, as on every other co-op of the proposal.
        "opens_at": start if isinstance(start := document.get("startTime"), str) else iso(now),
        "closes_at": _mirror_end(document),
        "allow_change": bool(document.get("allowBallotChange", True)),
        "abstentions_count": bool(document.get("abstentionsCountTowardQuorum", False)),
        "open_ballot": False,
    }
    if rule.get("type") == "qualified":
        data["threshold"] = rule.get("threshold")
    if rule.get("type") == "consent":
        data["block_at"] = rule.get("blockAt", 1)
    return data


def _mirror_end(document: dict[str, Any]) -> Any:
    end = document.get("endTime")
    if document.get("countingMode") != "coop" or not isinstance(end, str):
        return end
    try:
        moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return end
    return iso(moment - COOP_LEAD)


def coop_choice(options: tuple[Option, ...], result: Result, tie: str) -> str | None:
    """The option a co-op casts in co-op mode, from its members' vote: for if it passed,
    against if it was rejected (an objection if blocked), and on a tie or without quorum
    what the proposal says (abstain, or against); None where there is no such option."""
    by_role = {o.role: o.name for o in options}
    for_votes = sum(n for name, n in result.counts.items() if by_role.get(Role.FOR) == name)
    against = sum(n for name, n in result.counts.items() if by_role.get(Role.AGAINST) == name)
    if result.outcome is Outcome.PASSED:
        return by_role.get(Role.FOR)
    if result.outcome is Outcome.BLOCKED:
        return by_role.get(Role.OBJECTION)
    tied = result.outcome is Outcome.REJECTED and for_votes == against
    if tied or result.outcome is Outcome.NO_QUORUM:
        if tie == "against" and tied:
            return by_role.get(Role.AGAINST) or by_role.get(Role.OBJECTION)
        return by_role.get(Role.ABSTAIN)
    return by_role.get(Role.AGAINST)
