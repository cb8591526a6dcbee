"""The tally: the same result on every node, whatever the order and the replays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import node.governance.rules
from node.errors import Invalid
from node.governance.rules import (
    Ballot,
    Consent,
    Majority,
    Option,
    Outcome,
    Proposal,
    Qualified,
    Reason,
    Result,
    Role,
    tally,
)

OPENS = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(days=14)
FOR_AGAINST = (
    Option("For", Role.FOR),
    Option("Against", Role.AGAINST),
    Option("Abstain", Role.ABSTAIN),
)
CONSENT = (
    Option("Consent", Role.FOR),
    Option("Object", Role.OBJECTION),
    Option("Stand aside", Role.ABSTAIN),
)
PLACES = (Option("Lyon"), Option("Nantes"), Option("Lille"), Option("None", Role.ABSTAIN))
WEIGHTS = {"producers": Fraction(1, 2), "workers": Fraction(3, 10), "consumers": Fraction(1, 5)}


def proposal(**settings: Any) -> Proposal:
    values: dict[str, Any] = {
        "options": FOR_AGAINST,
        "opens_at": OPENS,
        "closes_at": CLOSES,
        "rule": Majority(),
    }
    values.update(settings)
    return Proposal(**values)


def members(n: int, college: str | None = None, prefix: str = "m") -> dict[str, str | None]:
    return {f"https://coop.example/actors/{prefix}{i}": college for i in range(n)}


def ballot(
    voter: str,
    *choices: str,
    hours: float = 1,
    activity_id: str | None = None,
    college: str | None = None,
) -> Ballot:
    return Ballot(
        voter=voter,
        choices=choices,
        cast_at=OPENS + timedelta(hours=hours),
        activity_id=activity_id or f"{voter}/votes/{hours}/{'+'.join(choices)}",
        college=college,
    )


def votes(electorate: Mapping[str, str | None], *plan: tuple[int, str]) -> list[Ballot]:
    """``(3, "For"), (2, "Against")``: the next three members vote For, then two Against."""
    voters = iter(electorate)
    return [ballot(next(voters), choice) for n, choice in plan for _ in range(n)]


def test_the_public_names_are_pinned() -> None:
    assert set(node.governance.rules.__all__) == {
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
    }


# Decision rules


def test_a_simple_majority_passes_with_more_for_than_against_abstentions_left_out() -> None:
    electorate = members(30)
    ballots = votes(electorate, (6, "For"), (5, "Against"), (10, "Abstain"))

    result = tally(proposal(), electorate, ballots)

    assert result.outcome is Outcome.PASSED
    assert result.counts == {"For": 6, "Against": 5, "Abstain": 10}
    assert result.support == Fraction(6, 11)
    assert result.reason == "passed: 6 for, 5 against (54.5 % for); more than half needed"


def test_a_tie_is_not_a_simple_majority() -> None:
    electorate = members(10)

    result = tally(proposal(), electorate, votes(electorate, (4, "For"), (4, "Against")))

    assert result.outcome is Outcome.REJECTED
    assert result.support == Fraction(1, 2)


def test_two_thirds_exactly_passes_a_two_thirds_threshold_and_one_vote_less_does_not() -> None:
    electorate = members(40)
    rule = Qualified(Fraction(2, 3))

    exactly = tally(
        proposal(rule=rule), electorate, votes(electorate, (20, "For"), (10, "Against"))
    )
    short = tally(proposal(rule=rule), electorate, votes(electorate, (19, "For"), (10, "Against")))

    assert exactly.outcome is Outcome.PASSED
    assert exactly.reason == ("passed: 20 for, 10 against (66.7 % for); at least 2/3 needed")
    assert short.outcome is Outcome.REJECTED


def test_only_abstentions_reject_a_majority_vote() -> None:
    electorate = members(4)

    result = tally(proposal(), electorate, votes(electorate, (4, "Abstain")))

    assert result.outcome is Outcome.REJECTED
    assert result.support is None
    assert result.reason.startswith("rejected: no vote for or against")


def test_a_proposal_that_fails_quorum() -> None:
    # 25 % of 30 members is 7.5: quorum is 8 voters.
    electorate = members(30)
    ballots = votes(electorate, (7, "For"))

    result = tally(proposal(quorum=Fraction(1, 4)), electorate, ballots)

    assert result.outcome is Outcome.NO_QUORUM
    assert result.quorum_needed == 8
    assert not result.quorum_met
    assert result.counts["For"] == 7
    assert result.reason == (
        "no quorum: 7 of 30 eligible members voted (abstentions not counted), 8 needed "
        "(quorum 25.0 %)"
    )


@pytest.mark.parametrize(("abstentions_count", "outcome"), [(False, "no quorum"), (True, "passed")])
def test_abstentions_count_toward_quorum_only_where_the_proposal_says_so(
    abstentions_count: bool, outcome: str
) -> None:
    electorate = members(30)
    ballots = votes(electorate, (6, "For"), (2, "Abstain"))
    settings = proposal(quorum=Fraction(1, 4), abstentions_count_for_quorum=abstentions_count)

    result = tally(settings, electorate, ballots)

    assert result.turnout == 8
    assert result.quorum_turnout == (8 if abstentions_count else 6)
    assert result.outcome.value == outcome


def test_a_consent_proposal_blocked_by_objections() -> None:
    electorate = members(20)
    ballots = votes(electorate, (15, "Consent"), (2, "Object"), (3, "Stand aside"))

    result = tally(proposal(options=CONSENT, rule=Consent(2)), electorate, ballots)

    assert result.outcome is Outcome.BLOCKED
    assert result.objections == 2
    assert result.reason == "blocked: 2 objections, 2 would block"


def test_a_consent_proposal_passes_below_the_blocking_number() -> None:
    electorate = members(20)
    ballots = votes(electorate, (3, "Consent"), (1, "Object"), (16, "Stand aside"))

    result = tally(proposal(options=CONSENT, rule=Consent(2)), electorate, ballots)

    assert result.outcome is Outcome.PASSED
    assert result.reason == "passed by consent: 1 objection, 2 would block"


def test_a_multiple_choice_publishes_counts_and_decides_nothing() -> None:
    electorate = members(5)
    voters = list(electorate)
    settings = proposal(options=PLACES, rule=None, multiple_choice=True, max_choices=2)
    ballots = [
        ballot(voters[0], "Lyon", "Nantes"),
        ballot(voters[1], "Lyon"),
        ballot(voters[2], "Lille", "Lyon"),
        ballot(voters[3], "None"),
    ]

    result = tally(settings, electorate, ballots)

    assert result.outcome is Outcome.COUNTED
    assert result.counts == {"Lyon": 3, "Nantes": 1, "Lille": 1, "None": 1}
    assert (result.turnout, result.quorum_turnout) == (4, 3)


# Colleges


def cooperative() -> dict[str, str | None]:
    return (
        members(10, "producers", "p") | members(10, "workers", "w") | members(80, "consumers", "c")
    )


def test_colleges_weighing_50_30_20_turn_a_plain_majority_into_a_rejection() -> None:
    # Consumers are many and for; producers and workers are few and mostly against.
    electorate = cooperative()
    voters = list(electorate)
    producers, workers, consumers = voters[:10], voters[10:20], voters[20:]
    ballots = (
        [ballot(v, "For") for v in producers[:2]]
        + [ballot(v, "Against") for v in producers[2:10]]
        + [ballot(v, "For") for v in workers[:4]]
        + [ballot(v, "Against") for v in workers[4:10]]
        + [ballot(v, "For") for v in consumers[:60]]
        + [ballot(v, "Against") for v in consumers[60:70]]
        + [ballot(v, "Abstain") for v in consumers[70:80]]
    )

    weighted = tally(proposal(college_weights=WEIGHTS), electorate, ballots)
    plain = tally(proposal(), electorate, ballots)

    assert plain.outcome is Outcome.PASSED
    assert plain.support == Fraction(66, 90)
    assert weighted.outcome is Outcome.REJECTED
    # producers 2/10, workers 4/10, consumers 60/70
    expected = Fraction(1, 2) * Fraction(2, 10) + Fraction(3, 10) * Fraction(4, 10)
    expected += Fraction(1, 5) * Fraction(60, 70)
    assert weighted.weighted_support == expected
    assert weighted.support == plain.support
    assert weighted.counts == plain.counts
    assert {c.name: (c.voters, c.counts["For"], c.weight) for c in weighted.colleges} == {
        "consumers": (80, 60, Fraction(1, 5)),
        "producers": (10, 2, Fraction(1, 2)),
        "workers": (10, 4, Fraction(3, 10)),
    }
    assert weighted.weighted_shares is not None
    assert weighted.weighted_shares["Abstain"] == Fraction(1, 5) * Fraction(10, 80)
    assert sum(weighted.weighted_shares.values()) == 1
    assert weighted.reason == (
        "rejected: 39.1 % for with college weights, more than half needed; "
        "plain count 66 for, 24 against (73.3 % for)"
    )


def test_weights_are_renormalised_over_the_colleges_that_voted() -> None:
    electorate = cooperative()
    voters = list(electorate)
    # Producers stay home; workers are all for, consumers all against.
    ballots = [ballot(v, "For") for v in voters[10:20]] + [
        ballot(v, "Against") for v in voters[20:25]
    ]

    result = tally(proposal(college_weights=WEIGHTS), electorate, ballots)

    assert result.weighted_support == Fraction(3, 5)  # 0.3 / (0.3 + 0.2)
    assert result.outcome is Outcome.PASSED


def test_weighing_colleges_needs_a_weight_for_every_college_of_the_roster() -> None:
    electorate = members(3, "producers") | members(2, "visitors", "v")

    with pytest.raises(Invalid, match="visitors"):
        tally(proposal(college_weights=WEIGHTS), electorate, [])


# One counted ballot per member


def test_a_changed_ballot_replaces_the_earlier_one_where_changes_are_allowed() -> None:
    electorate = members(3)
    voter = next(iter(electorate))
    first, second = ballot(voter, "For", hours=1), ballot(voter, "Against", hours=2)

    result = tally(proposal(replacements_allowed=True), electorate, [second, first])

    assert result.counts == {"For": 0, "Against": 1, "Abstain": 0}
    assert [(r.ballot, r.reason) for r in result.set_aside] == [(first, Reason.REPLACED)]
    assert result.refused == ()


def test_the_first_ballot_stays_where_changes_are_not_allowed() -> None:
    electorate = members(3)
    voter = next(iter(electorate))
    first, second = ballot(voter, "For", hours=1), ballot(voter, "Against", hours=2)

    result = tally(proposal(replacements_allowed=False), electorate, [second, first])

    assert result.counts == {"For": 1, "Against": 0, "Abstain": 0}
    assert [(r.ballot, r.reason) for r in result.set_aside] == [(second, Reason.ALREADY_VOTED)]


@pytest.mark.parametrize(("allowed", "counted"), [(True, "Against"), (False, "For")])
def test_ballots_accepted_at_the_same_instant_are_ordered_by_activity_id(
    allowed: bool, counted: str
) -> None:
    electorate = members(1)
    voter = next(iter(electorate))
    ballots = [
        ballot(voter, "Against", activity_id="https://coop.example/activities/b"),
        ballot(voter, "For", activity_id="https://coop.example/activities/a"),
    ]

    result = tally(proposal(replacements_allowed=allowed), electorate, ballots)

    assert result.counts[counted] == 1
    assert result.turnout == 1


def test_concurrent_duplicate_ballots_count_once() -> None:
    electorate = members(2)
    voter = next(iter(electorate))
    vote = ballot(voter, "For")

    result = tally(proposal(), electorate, [vote, replace(vote), vote])

    assert result.counts["For"] == 1
    assert result.set_aside == ()
    assert result.refused == ()


def test_two_different_ballots_under_one_activity_id_are_both_refused() -> None:
    electorate = members(2)
    voter = next(iter(electorate))
    one = ballot(voter, "For", activity_id="https://coop.example/activities/1")
    other = ballot(voter, "Against", activity_id="https://coop.example/activities/1")

    result = tally(proposal(), electorate, [one, other])

    assert result.turnout == 0
    assert {(r.ballot, r.reason) for r in result.refused} == {
        (one, Reason.CONFLICTING_ID),
        (other, Reason.CONFLICTING_ID),
    }


# Refusals: each one is returned with its reason, never dropped


def refusal_of(settings: Proposal, electorate: Mapping[str, str | None], vote: Ballot) -> Reason:
    result = tally(settings, electorate, [vote])
    assert result.turnout == 0
    assert [r.ballot for r in result.refused] == [vote]
    return result.refused[0].reason


VOTER = "https://coop.example/actors/m0"


@pytest.mark.parametrize(
    ("vote", "reason"),
    [
        (ballot(VOTER, "For", hours=-1), Reason.BEFORE_OPENING),
        (ballot(VOTER, "For", hours=14 * 24), Reason.AFTER_CLOSE),
        (ballot("https://elsewhere.example/actors/x", "For"), Reason.NOT_ELIGIBLE),
        (ballot(VOTER, "Maybe"), Reason.UNKNOWN_OPTION),
        (ballot(VOTER, "For", "Against"), Reason.TOO_MANY_CHOICES),
        (ballot(VOTER), Reason.NO_CHOICE),
        (ballot(VOTER, "For", college="workers"), Reason.COLLEGE_MISMATCH),
    ],
    ids=["before-opening", "at-the-close", "not-a-member", "unknown", "two", "none", "college"],
)
def test_a_single_choice_ballot_is_refused_with_its_reason(vote: Ballot, reason: Reason) -> None:
    assert refusal_of(proposal(), members(3, "producers"), vote) is reason


@pytest.mark.parametrize(
    ("choices", "reason"),
    [
        (("Lyon", "Nantes", "Lille"), Reason.TOO_MANY_CHOICES),
        (("Lyon", "Lyon"), Reason.REPEATED_OPTION),
        (("Lyon", "None"), Reason.ABSTENTION_COMBINED),
        (("Lyon", "Paris"), Reason.UNKNOWN_OPTION),
        ((), Reason.NO_CHOICE),
    ],
)
def test_a_multiple_choice_ballot_is_refused_with_its_reason(
    choices: tuple[str, ...], reason: Reason
) -> None:
    settings = proposal(options=PLACES, rule=None, multiple_choice=True, max_choices=2)

    assert refusal_of(settings, members(3), ballot(VOTER, *choices)) is reason


def test_a_refused_ballot_does_not_hide_the_voters_valid_one() -> None:
    electorate = members(2)
    valid, late = ballot(VOTER, "For"), ballot(VOTER, "Against", hours=15 * 24)

    result = tally(proposal(replacements_allowed=True), electorate, [valid, late])

    assert result.counts["For"] == 1
    assert [r.reason for r in result.refused] == [Reason.AFTER_CLOSE]


@pytest.mark.parametrize(
    "settings",
    [
        {"options": (Option("For", Role.FOR),)},
        {"options": (Option("For", Role.FOR), Option("For", Role.AGAINST))},
        {"options": (Option("For", Role.FOR), Option("Object", Role.OBJECTION))},
        {"options": FOR_AGAINST, "rule": Consent(1)},
        {"rule": None},
        {"rule": Majority(), "options": PLACES, "multiple_choice": True},
        {"rule": None, "options": PLACES, "multiple_choice": True, "max_choices": 5},
        {"closes_at": OPENS},
        {"opens_at": datetime(2027, 3, 1, 9, 0)},
        {"quorum": Fraction(3, 2)},
        {"quorum": 0.25},
        {"college_weights": {"producers": 0.5, "workers": 0.5}},
        {"college_weights": {"producers": Fraction(1, 2), "workers": Fraction(1, 3)}},
        {"college_weights": {"producers": Fraction(1), "workers": Fraction(0)}},
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        proposal(**settings)


@pytest.mark.parametrize(
    "make", [lambda: Qualified(Fraction(0)), lambda: Qualified(0.67), lambda: Consent(0)]
)
def test_impossible_rules_are_refused(make: Any) -> None:
    with pytest.raises(Invalid):
        make()


# Properties: the order of arrival and replays change nothing

ELECTORATE: dict[str, str | None] = {
    f"https://coop{i % 2}.example/actors/m{i}": college
    for i, college in enumerate(["producers", "producers", "workers", "workers", "consumers"] * 2)
}
OUTSIDERS = ["https://elsewhere.example/actors/x"]
PROPOSALS = [
    proposal(replacements_allowed=True, quorum=Fraction(1, 3)),
    proposal(rule=Qualified(Fraction(2, 3)), college_weights=WEIGHTS),
    proposal(
        options=CONSENT,
        rule=Consent(2),
        replacements_allowed=True,
        abstentions_count_for_quorum=True,
        quorum=Fraction(1, 2),
    ),
    proposal(
        options=PLACES,
        rule=None,
        multiple_choice=True,
        max_choices=2,
        college_weights=WEIGHTS,
        replacements_allowed=True,
    ),
]
OPTION_NAMES = sorted({o.name for p in PROPOSALS for o in p.options} | {"Paris"})


@st.composite
def ballots(draw: st.DrawFn, names: list[str], max_choices: int = 3) -> Ballot:
    """Mostly ballots that can count, from a few voters, so that voters often have several."""
    voter = draw(st.sampled_from([*list(ELECTORATE)[:5], *OUTSIDERS]))
    if draw(st.integers(0, 3)):
        choices = draw(
            st.lists(st.sampled_from(names), min_size=1, max_size=max_choices, unique=True)
        )
    else:
        choices = draw(st.lists(st.sampled_from(OPTION_NAMES), max_size=3))
    return Ballot(
        voter=voter,
        choices=tuple(choices),
        # A few instants around the window, so that ties and edges happen.
        cast_at=draw(
            st.sampled_from(
                [
                    OPENS,
                    OPENS + timedelta(hours=1),
                    OPENS + timedelta(hours=1),
                    CLOSES - timedelta(hours=1),
                    OPENS - timedelta(hours=1),
                    CLOSES,
                ]
            )
        ),
        # A small pool of ids per voter, so that the same id sometimes carries another ballot.
        activity_id=f"{voter}/votes/{draw(st.integers(0, 4))}",
        college=draw(st.sampled_from([None, None, None, ELECTORATE.get(voter), "workers"])),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, list[Ballot]]:
    index = draw(st.integers(0, len(PROPOSALS) - 1))
    settings = PROPOSALS[index]
    names = [o.name for o in settings.options]
    return index, draw(st.lists(ballots(names, settings.max_choices), max_size=25))


def tallied(index: int, votes: list[Ballot]) -> Result:
    return tally(PROPOSALS[index], ELECTORATE, votes)


CASES = cases()


@settings(max_examples=200, deadline=None, database=None)
@given(case=CASES, data=st.data())
def test_the_tally_does_not_depend_on_the_order_of_arrival(
    case: tuple[int, list[Ballot]], data: st.DataObject
) -> None:
    index, votes = case
    arrived = data.draw(st.permutations(votes))

    assert tallied(index, arrived) == tallied(index, votes)


@settings(max_examples=200, deadline=None, database=None)
@given(case=CASES, data=st.data())
def test_replaying_any_ballots_changes_nothing(
    case: tuple[int, list[Ballot]], data: st.DataObject
) -> None:
    index, votes = case
    replays = data.draw(st.lists(st.sampled_from(votes), max_size=10)) if votes else []
    where = data.draw(st.integers(0, len(votes)))

    assert tallied(index, votes[:where] + replays + votes[where:]) == tallied(index, votes)


def refused_ballots() -> st.SearchStrategy[Ballot]:
    def fresh(vote: Ballot) -> Ballot:
        return replace(vote, activity_id=f"{vote.activity_id}/refused")

    return st.one_of(
        ballots(OPTION_NAMES).map(
            lambda b: replace(fresh(b), cast_at=CLOSES + timedelta(minutes=1))
        ),
        ballots(OPTION_NAMES).map(lambda b: replace(fresh(b), voter=OUTSIDERS[0])),
        ballots(OPTION_NAMES).map(lambda b: replace(fresh(b), choices=("Paris",))),
    )


@settings(max_examples=200, deadline=None, database=None)
@given(case=CASES, refused=refused_ballots(), data=st.data())
def test_a_refused_ballot_changes_no_count(
    case: tuple[int, list[Ballot]], refused: Ballot, data: st.DataObject
) -> None:
    index, votes = case
    where = data.draw(st.integers(0, len(votes)))

    before = tallied(index, votes)
    after = tallied(index, [*votes[:where], refused, *votes[where:]])

    assert replace(after, refused=()) == replace(before, refused=())
    assert len(after.refused) == len(before.refused) + 1
    assert refused in {r.ballot for r in after.refused}


@settings(max_examples=200, deadline=None, database=None)
@given(case=CASES)
def test_every_ballot_is_counted_set_aside_or_refused(case: tuple[int, list[Ballot]]) -> None:
    index, votes = case

    result = tallied(index, votes)

    accounted = [r.ballot for r in result.refused] + [r.ballot for r in result.set_aside]
    assert len(accounted) == len(set(accounted))
    assert len(accounted) + result.turnout == len(set(votes))
    assert result.turnout <= len({b.voter for b in votes})
