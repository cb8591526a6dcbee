"""The tally: a pure function from a proposal, its electorate and its ballots to a result.

The same function runs on the host at the close, on every node that shows live counts
and in ``coopnode audit``, so that everyone who recomputes a result gets the same one
(PROTOCOL.md, "Tally rules"). No storage, no clock, no network; exact rationals
(:class:`~fractions.Fraction`) for every share, weight and threshold, never floats.

Which ballots count
    1. Replays collapse: ballots equal in every field are one ballot. A voter's valid
       ballots that differ under one activity id are all refused (the same id carrying
       other content is tampering or a bug, and neither copy can be trusted). Ids are not
       compared across voters: storage keeps activity ids unique, a proof binds a ballot
       to its voter, and one voter still has one counted ballot.
    2. A ballot is refused, with its reason, when it was accepted before the opening or
       at or after the close (``opens_at <= cast_at < closes_at`` counts), when its voter
       is not in the electorate as of the opening, when it names a college other than
       the roster's, when it names no option, an unknown option, an option twice, more
       options than allowed (one for a single choice), or an abstention together with
       other options.
    3. Among a voter's valid ballots exactly one counts. Ballots are ordered by
       ``(cast_at, activity_id)``, ``cast_at`` being the time the host accepted the
       ballot (PROTOCOL.md: "each voter's latest accepted ballot counts; the host
       records the order in which it accepted ballots"). Where the proposal allows
       changes the last one counts; where it does not, the first one does and later
       ones are set aside. Set-aside ballots are listed, not dropped.

    Nothing depends on the order in which ballots are given: the result, refusals
    included, is the same for any permutation and for any number of replays.

How the counted ballots decide
    - Options have a role: for, against, abstain, objection, or plain (multiple choice).
    - Quorum = ceil(quorum share x number of eligible voters), compared with the number
      of voters whose ballot counts; a ballot naming only abstentions is left out of
      that number unless the proposal counts abstentions toward quorum. Quorum is
      counted in heads over the whole electorate, colleges or not.
    - Simple majority passes when votes for are more than half of for plus against;
      qualified majority when they are at least the chosen fraction. Abstentions are
      outside that denominator; with no vote for or against, the proposal is rejected.
    - Consent passes unless objections reach the set number (``Consent(1)``: any
      objection blocks). Objections are counted in heads even where colleges weigh:
      a blocking objection is a member's, whatever their college.
    - Colleges that weigh: each college's support (for / (for + against)) is computed on
      its own votes, and the combined support is the sum of weight x support over the
      colleges with at least one vote for or against, weights renormalised over those
      colleges. The published weighted share of each option is computed the same way
      over the colleges with at least one counted ballot. Plain counts are always
      published alongside.
    - Multiple choice publishes counts and decides nothing (outcome ``counted``), quorum
      still applying.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from fractions import Fraction
from typing import Any

from node.errors import Invalid

HALF = Fraction(1, 2)


class Role(Enum):
    FOR = "for"
    AGAINST = "against"
    ABSTAIN = "abstain"
    OBJECTION = "objection"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    role: Role = Role.PLAIN


@dataclass(frozen=True, slots=True)
class Majority:
    """Passes when votes for are more than half of the votes for and against."""


@dataclass(frozen=True, slots=True)
class Qualified:
    """Passes when votes for are at least ``fraction`` of the votes for and against."""

    fraction: Fraction

    def __post_init__(self) -> None:
        if not isinstance(self.fraction, Fraction) or not 0 < self.fraction <= 1:
            raise Invalid(
                "a qualified majority is an exact fraction above 0, at most 1", field="rule"
            )


@dataclass(frozen=True, slots=True)
class Consent:
    """Passes unless objections reach ``block_at`` (1: any objection blocks)."""

    block_at: int

    def __post_init__(self) -> None:
        if self.block_at < 1:
            raise Invalid("consent is blocked by at least one objection", field="rule")


Rule = Majority | Qualified | Consent


@dataclass(frozen=True)
class Proposal:
    """The settings of a proposal that the tally reads."""

    options: tuple[Option, ...]
    opens_at: datetime
    closes_at: datetime
    rule: Rule | None = None
    """Required for a single choice; ``None`` for a multiple choice, which decides nothing."""
    multiple_choice: bool = False
    max_choices: int = 1
    quorum: Fraction = Fraction(0)
    """Share of the eligible voters whose ballots must count."""
    abstentions_count_for_quorum: bool = False
    replacements_allowed: bool = False
    college_weights: Mapping[str, Fraction] | None = None
    """``None`` where colleges do not weigh; otherwise every college and its weight."""
    weighed_by: str = "college"
    """What the weighted "colleges" are, for the outcome's wording: ``"co-op"`` where each
    co-op casts one weighted ballot."""

    def __post_init__(self) -> None:
        names = [o.name for o in self.options]
        if len(names) < 2 or len(set(names)) != len(names):
            raise Invalid("a proposal has at least two options, all different", field="options")
        if self.opens_at.tzinfo is None or self.closes_at.tzinfo is None:
            raise Invalid("opening and closing times carry a time zone", field="opens_at")
        if self.closes_at <= self.opens_at:
            raise Invalid("the vote closes after it opens", field="closes_at")
        if not isinstance(self.quorum, Fraction) or not 0 <= self.quorum <= 1:
            raise Invalid("quorum is an exact fraction from 0 to 1", field="quorum")
        roles = {o.role for o in self.options}
        if self.multiple_choice:
            if self.rule is not None:
                raise Invalid("decision rules apply to single-choice proposals", field="rule")
            if not roles <= {Role.PLAIN, Role.ABSTAIN}:
                raise Invalid("multiple-choice options are plain or abstain", field="options")
            if not 1 <= self.max_choices <= len(names):
                raise Invalid("max_choices is from 1 to the number of options", field="max_choices")
        elif isinstance(self.rule, Consent):
            if Role.OBJECTION not in roles or not roles <= {Role.FOR, Role.OBJECTION, Role.ABSTAIN}:
                raise Invalid(
                    "a consent proposal has an objection option, and for or abstain ones",
                    field="options",
                )
        elif self.rule is not None:
            if not {Role.FOR, Role.AGAINST} <= roles or not roles <= {
                Role.FOR,
                Role.AGAINST,
                Role.ABSTAIN,
            }:
                raise Invalid(
                    "a majority vote has for and against options, and may have abstain",
                    field="options",
                )
        else:
            raise Invalid("a single-choice proposal has a decision rule", field="rule")
        if self.college_weights is not None:
            weights = self.college_weights
            exact = all(isinstance(w, Fraction) and w > 0 for w in weights.values())
            if not weights or not exact or sum(weights.values()) != 1:
                raise Invalid(
                    "college weights are positive exact fractions summing to 1",
                    field="college_weights",
                )


@dataclass(frozen=True, slots=True)
class Ballot:
    """One member's ballot as the host accepted it.

    ``cast_at`` is when the host accepted it (aware); ``college`` is what the ballot
    claims, ``None`` to take the roster's.
    """

    voter: str
    choices: tuple[str, ...]
    cast_at: datetime
    activity_id: str
    college: str | None = None


class Reason(Enum):
    BEFORE_OPENING = "cast before the vote opened"
    AFTER_CLOSE = "cast after the vote closed"
    NOT_ELIGIBLE = "the voter is not an eligible member as of the opening"
    COLLEGE_MISMATCH = "the ballot names a college other than the roster's"
    NO_CHOICE = "the ballot names no option"
    UNKNOWN_OPTION = "the ballot names an option that does not exist"
    REPEATED_OPTION = "the ballot names an option twice"
    TOO_MANY_CHOICES = "the ballot names more options than allowed"
    ABSTENTION_COMBINED = "an abstention cannot be combined with other options"
    CONFLICTING_ID = "another, different ballot has the same activity id"
    REPLACED = "replaced by a later ballot from the same voter"
    ALREADY_VOTED = "the voter's first ballot counts: this proposal does not allow changes"


@dataclass(frozen=True, slots=True)
class Refusal:
    ballot: Ballot
    reason: Reason

    def __str__(self) -> str:
        return self.reason.value


class Outcome(Enum):
    PASSED = "passed"
    REJECTED = "rejected"
    NO_QUORUM = "no quorum"
    BLOCKED = "blocked"
    COUNTED = "counted"


@dataclass(frozen=True)
class CollegeCount:
    name: str
    voters: int
    counts: Mapping[str, int]
    weight: Fraction | None = None
    """The college's weight as set, where colleges weigh."""


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str
    eligible: int
    quorum_needed: int
    turnout: int
    """Voters whose ballot counts."""
    quorum_turnout: int
    """Of those, the ones that count toward quorum."""
    counts: Mapping[str, int]
    """Plain counts per option, in the proposal's order."""
    colleges: tuple[CollegeCount, ...] = ()
    """Plain counts per college, where the roster names colleges."""
    weighted_shares: Mapping[str, Fraction] | None = None
    """Combined share of each option where colleges weigh."""
    support: Fraction | None = None
    """Plain votes for / (for + against), for a majority rule with votes."""
    weighted_support: Fraction | None = None
    refused: tuple[Refusal, ...] = ()
    set_aside: tuple[Refusal, ...] = ()
    objections: int = 0

    @property
    def quorum_met(self) -> bool:
        return self.quorum_turnout >= self.quorum_needed

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


@dataclass
class _Picked:
    chosen: dict[str, Ballot] = field(default_factory=dict)
    """The counted ballot of each voter."""
    pairs: dict[str | None, dict[tuple[str, ...], int]] = field(default_factory=dict)
    """Per college, how many counted ballots make each choice (nested rather than keyed
    by pairs: a tuple made per ballot costs more in garbage collection than the count)."""
    refused: list[Refusal] = field(default_factory=list)
    set_aside: list[Refusal] = field(default_factory=list)


def tally(
    proposal: Proposal, eligible: Mapping[str, str | None], ballots: Iterable[Ballot]
) -> Result:
    """Count ``ballots`` for ``proposal``; ``eligible`` maps each voter eligible as of
    the opening to their college (``None`` where the co-op has no colleges)."""
    check_roster(proposal, eligible.values())
    picked = _pick(proposal, eligible, ballots)
    return _decide(proposal, eligible, picked)


def check_roster(proposal: Proposal, colleges: Iterable[str | None]) -> None:
    """Refuse a roster with members in a college that has no weight, where colleges
    weigh: their ballots could not be combined (shared with the count from storage)."""
    weights = proposal.college_weights
    if weights is not None:
        outside = set(colleges).difference(weights)
        if outside:
            raise Invalid(
                f"colleges weigh, but the roster has members in {_names(outside)}, "
                "which have no weight",
                field="college_weights",
            )


def _pick(
    proposal: Proposal, eligible: Mapping[str, str | None], ballots: Iterable[Ballot]
) -> _Picked:
    """One pass: refuse what cannot count, count each voter's first valid ballot, and
    keep aside the voters seen more than once; those few are settled at the end."""
    opens, closes = proposal.opens_at, proposal.closes_at
    roles = {o.name: o.role for o in proposal.options}
    single = not proposal.multiple_choice
    max_choices = proposal.max_choices
    picked = _Picked()
    chosen, pairs, refused = picked.chosen, picked.pairs, picked.refused
    chosen_get, pairs_get, eligible_get = chosen.get, pairs.get, eligible.get
    again: dict[str, list[Ballot]] = {}
    no_college: Any = object()
    for ballot in ballots:
        cast_at = ballot.cast_at
        if cast_at < opens:
            refused.append(Refusal(ballot, Reason.BEFORE_OPENING))
            continue
        if cast_at >= closes:
            refused.append(Refusal(ballot, Reason.AFTER_CLOSE))
            continue
        voter = ballot.voter
        college = eligible_get(voter, no_college)
        if college is no_college:
            refused.append(Refusal(ballot, Reason.NOT_ELIGIBLE))
            continue
        claimed = ballot.college
        if claimed is not None and claimed != college:
            refused.append(Refusal(ballot, Reason.COLLEGE_MISMATCH))
            continue
        choices = ballot.choices
        if single and len(choices) == 1:
            if choices[0] not in roles:
                refused.append(Refusal(ballot, Reason.UNKNOWN_OPTION))
                continue
        else:
            problem = check_choices(choices, roles, 1 if single else max_choices)
            if problem is not None:
                refused.append(Refusal(ballot, problem))
                continue
        first = chosen_get(voter)
        if first is None:
            chosen[voter] = ballot
            counts = pairs_get(college)
            if counts is None:
                counts = pairs[college] = {}
            counts[choices] = counts.get(choices, 0) + 1
        elif first is ballot or first == ballot:
            continue  # a replay of the ballot counted so far
        elif voter in again:
            again[voter].append(ballot)
        else:
            again[voter] = [first, ballot]
    for voter, seen in again.items():
        _settle(proposal, eligible[voter], seen, picked)
    # A refused ballot that was replayed is one refusal.
    picked.refused = list(set(refused))
    return picked


def _settle(proposal: Proposal, college: str | None, seen: list[Ballot], picked: _Picked) -> None:
    """Choose the counted ballot of a voter who sent several, whatever their order."""
    voter = seen[0].voter
    counted = picked.chosen.pop(voter)
    _add(picked.pairs, college, counted.choices, -1)
    by_id: dict[str, set[Ballot]] = {}
    for ballot in seen:  # replays of one ballot collapse here
        by_id.setdefault(ballot.activity_id, set()).add(ballot)
    valid: list[Ballot] = []
    for copies in by_id.values():
        if len(copies) == 1:
            valid.extend(copies)
        else:
            picked.refused.extend(Refusal(b, Reason.CONFLICTING_ID) for b in copies)
    if not valid:
        return
    valid.sort(key=lambda b: (b.cast_at, b.activity_id))
    if proposal.replacements_allowed:
        counted, others, reason = valid[-1], valid[:-1], Reason.REPLACED
    else:
        counted, others, reason = valid[0], valid[1:], Reason.ALREADY_VOTED
    picked.chosen[voter] = counted
    _add(picked.pairs, college, counted.choices, 1)
    picked.set_aside.extend(Refusal(b, reason) for b in others)


def _add(
    pairs: dict[str | None, dict[tuple[str, ...], int]],
    college: str | None,
    choices: tuple[str, ...],
    n: int,
) -> None:
    counts = pairs.setdefault(college, {})
    counts[choices] = counts.get(choices, 0) + n


def check_choices(
    choices: tuple[str, ...], roles: Mapping[str, Role], max_choices: int
) -> Reason | None:
    if not choices:
        return Reason.NO_CHOICE
    if any(c not in roles for c in choices):
        return Reason.UNKNOWN_OPTION
    if len(set(choices)) != len(choices):
        return Reason.REPEATED_OPTION
    if len(choices) > 1 and any(roles[c] is Role.ABSTAIN for c in choices):
        return Reason.ABSTENTION_COMBINED
    if len(choices) > max_choices:
        return Reason.TOO_MANY_CHOICES
    return None


def _decide(proposal: Proposal, eligible: Mapping[str, str | None], picked: _Picked) -> Result:
    return decide(
        proposal,
        picked.pairs,
        eligible=len(eligible),
        roster=set(eligible.values()),
        refused=tuple(sorted(picked.refused, key=_refusal_order)),
        set_aside=tuple(sorted(picked.set_aside, key=_refusal_order)),
    )


def decide(
    proposal: Proposal,
    pairs: Mapping[str | None, Mapping[tuple[str, ...], int]],
    *,
    eligible: int,
    roster: Collection[str | None],
    refused: tuple[Refusal, ...] = (),
    set_aside: tuple[Refusal, ...] = (),
) -> Result:
    """Decide from counts alone: ``pairs`` says, per college, how many counted ballots
    make each choice (one counted ballot per voter), ``eligible`` is the size of the
    electorate and ``roster`` its colleges. Nothing here needs the ballots themselves,
    so a count grouped by the database gives the same result as :func:`tally`."""
    names = [o.name for o in proposal.options]
    roles = {o.name: o.role for o in proposal.options}
    weights = proposal.college_weights
    per_college: dict[str | None, dict[str, int]] = {}
    voters: Counter[str | None] = Counter()
    abstain_only = 0
    for college, made in pairs.items():
        counts = per_college[college] = dict.fromkeys(names, 0)
        for choices, n in made.items():
            voters[college] += n
            for choice in choices:
                counts[choice] += n
            if all(roles[c] is Role.ABSTAIN for c in choices):
                abstain_only += n
    plain = dict.fromkeys(names, 0)
    for counts in per_college.values():
        for name, n in counts.items():
            plain[name] += n

    in_roster: set[str | None] = set(roster)
    college_names = sorted(c for c in in_roster.union(weights or ()) if c is not None)
    colleges = tuple(
        CollegeCount(
            name=c,
            voters=voters[c],
            counts=per_college.get(c, dict.fromkeys(names, 0)),
            weight=None if weights is None else weights[c],
        )
        for c in college_names
    )
    weighted_shares = None
    if weights is not None:
        weighted_shares = _combine(
            weights,
            {
                c.name: {name: Fraction(n, c.voters) for name, n in c.counts.items()}
                for c in colleges
                if c.voters
            },
            names,
        )

    # Each counted ballot is one voter's, so the ballots counted are the voters counted.
    turnout = sum(voters.values())
    quorum_turnout = turnout if proposal.abstentions_count_for_quorum else turnout - abstain_only
    needed = math.ceil(proposal.quorum * eligible)
    result = Result(
        outcome=Outcome.COUNTED,
        reason="",
        eligible=eligible,
        quorum_needed=needed,
        turnout=turnout,
        quorum_turnout=quorum_turnout,
        counts=plain,
        colleges=colleges,
        weighted_shares=weighted_shares,
        refused=refused,
        set_aside=set_aside,
    )
    return _apply_rule(proposal, roles, result)


def _apply_rule(proposal: Proposal, roles: Mapping[str, Role], result: Result) -> Result:
    def total(role: Role, counts: Mapping[str, int]) -> int:
        return sum(n for name, n in counts.items() if roles[name] is role)

    rule = proposal.rule
    objections = total(Role.OBJECTION, result.counts)
    votes_for = total(Role.FOR, result.counts)
    votes_against = total(Role.AGAINST, result.counts)
    support = None
    if votes_for + votes_against and not isinstance(rule, Consent):
        support = Fraction(votes_for, votes_for + votes_against)
    weighted_support = None
    if proposal.college_weights is not None and isinstance(rule, Majority | Qualified):
        shares = {}
        for college in result.colleges:
            f = total(Role.FOR, college.counts)
            a = total(Role.AGAINST, college.counts)
            if f + a:
                shares[college.name] = {"for": Fraction(f, f + a)}
        if shares:
            weighted_support = _combine(proposal.college_weights, shares, ["for"])["for"]

    if not result.quorum_met:
        outcome = Outcome.NO_QUORUM
        counted = "" if proposal.abstentions_count_for_quorum else " (abstentions not counted)"
        reason = (
            f"no quorum: {result.quorum_turnout} of {result.eligible} eligible members "
            f"voted{counted}, {result.quorum_needed} needed "
            f"(quorum {_percent(proposal.quorum)})"
        )
    elif rule is None:
        outcome = Outcome.COUNTED
        reason = f"counted: multiple choice, {result.turnout} voters; no decision rule applies"
    elif isinstance(rule, Consent):
        blocked = objections >= rule.block_at
        outcome = Outcome.BLOCKED if blocked else Outcome.PASSED
        reason = (
            f"{'blocked' if blocked else 'passed by consent'}: "
            f"{_plural(objections, 'objection')}, {rule.block_at} would block"
        )
    else:
        decisive = support if weighted_support is None else weighted_support
        if isinstance(rule, Majority):
            threshold = "more than half"
            passed = decisive is not None and decisive > HALF
        else:
            threshold = f"at least {rule.fraction.numerator}/{rule.fraction.denominator}"
            passed = decisive is not None and decisive >= rule.fraction
        outcome = Outcome.PASSED if passed else Outcome.REJECTED
        plain = f"{votes_for} for, {votes_against} against"
        if support is None:
            reason = f"rejected: no vote for or against; {threshold} for needed"
        elif weighted_support is None:
            reason = f"{outcome.value}: {plain} ({_percent(support)} for); {threshold} needed"
        else:
            reason = (
                f"{outcome.value}: {_percent(weighted_support)} for with "
                f"{proposal.weighed_by} weights, "
                f"{threshold} needed; plain count {plain} ({_percent(support)} for)"
            )
    return replace(
        result,
        outcome=outcome,
        reason=reason,
        support=support,
        weighted_support=weighted_support,
        objections=objections,
    )


def _combine(
    weights: Mapping[str, Fraction],
    shares: Mapping[str, Mapping[str, Fraction]],
    names: list[str],
) -> dict[str, Fraction]:
    """Sum of weight x share per option over the colleges in ``shares``, with the
    weights renormalised over those colleges (PROTOCOL.md, "Tally rules")."""
    present = sum((weights[c] for c in shares), Fraction(0))
    if not present:
        return dict.fromkeys(names, Fraction(0))
    return {
        name: sum((weights[c] * s[name] for c, s in shares.items()), Fraction(0)) / present
        for name in names
    }


def _refusal_order(refusal: Refusal) -> tuple[str, str, datetime, tuple[str, ...], str, str]:
    b = refusal.ballot
    return (b.activity_id, b.voter, b.cast_at, b.choices, b.college or "", refusal.reason.value)


def _percent(share: Fraction) -> str:
    tenths = round(share * 1000)
    return f"{tenths // 10}.{tenths % 10} %"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(values: Iterable[str | None]) -> str:
    return ", ".join(sorted("(none)" if v is None else repr(v) for v in values))
