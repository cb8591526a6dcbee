"""The published result held against the recount, figure by figure.

Every figure the host published (outcome, counts, turnout, quorum, support, weighted
shares, each college's figures, each option's ``replies.totalItems``) is compared with
the recount, and each ballot's published status with the status the recount gives it;
each difference is one discrepancy, in words.
"""

from __future__ import annotations

from node.governance.audit.fields import fraction_text
from node.governance.audit.read import Published
from node.governance.rules.tally import Ballot, Reason, Result


def recount_statuses(result: Result) -> dict[Ballot, str]:
    """Each ballot the recount did not count, and why: replaced, set aside or refused."""
    statuses: dict[Ballot, str] = {}
    for refusal in result.set_aside:
        statuses[refusal.ballot] = "replaced" if refusal.reason is Reason.REPLACED else "set aside"
    for refusal in result.refused:
        statuses[refusal.ballot] = "refused"
    return statuses


def compare(published: Published, recount: Result, problems: list[str]) -> None:
    """Each figure of ``published`` that differs from ``recount``, added to ``problems``."""

    def differ(what: str, shown: object, computed: object) -> None:
        if shown != computed:
            problems.append(f"{what}: published {shown}, recomputed {computed}")

    differ("result", published.result, recount.outcome.value)
    if published.passed is not None:
        differ("passed", published.passed, recount.passed)
    differ("eligible", published.eligible, recount.eligible)
    differ("quorumNeeded", published.quorum_needed, recount.quorum_needed)
    differ("turnout", published.turnout, recount.turnout)
    if published.quorum_turnout is not None:
        differ("quorumTurnout", published.quorum_turnout, recount.quorum_turnout)
    for name in dict.fromkeys([*recount.counts, *published.counts]):
        if name not in recount.counts:
            problems.append(f"count for {name!r}: published, but the proposal has no such option")
        else:
            differ(
                f"count for {name!r}", published.counts.get(name, "nothing"), recount.counts[name]
            )
    for name, n in published.replies.items():
        differ(f"replies.totalItems of {name!r}", n, recount.counts.get(name))
    if published.has_support:
        differ("support", fraction_text(published.support), fraction_text(recount.support))
    if published.has_weighted_support:
        differ(
            "weightedSupport",
            fraction_text(published.weighted_support),
            fraction_text(recount.weighted_support),
        )
    if published.weighted_shares is not None or recount.weighted_shares is not None:
        shown = published.weighted_shares or {}
        computed = recount.weighted_shares or {}
        for name in dict.fromkeys([*computed, *shown]):
            differ(
                f"weighted share of {name!r}",
                fraction_text(shown.get(name)),
                fraction_text(computed.get(name)),
            )
    if published.colleges is not None:
        computed_colleges = {c.name: c for c in recount.colleges}
        for name in dict.fromkeys([*computed_colleges, *published.colleges]):
            if name not in published.colleges:
                problems.append(f"college {name!r}: not published")
                continue
            if name not in computed_colleges:
                problems.append(
                    f"college {name!r}: published, but no voter of the electorate is in it"
                )
                continue
            weight, voters, counts = published.colleges[name]
            college = computed_colleges[name]
            if weight is not None or college.weight is not None:
                differ(
                    f"college {name!r} weight", fraction_text(weight), fraction_text(college.weight)
                )
            differ(f"college {name!r} voters", voters, college.voters)
            for option in dict.fromkeys([*college.counts, *counts]):
                differ(
                    f"college {name!r} count for {option!r}",
                    counts.get(option, "nothing"),
                    college.counts.get(option, "nothing"),
                )
