"""The count from stored rows gives the pure tally's result, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node.errors import Invalid
from node.governance.rules import (
    Ballot,
    Consent,
    Majority,
    Option,
    Outcome,
    Proposal,
    Qualified,
    Result,
    Role,
    tally,
)
from node.governance.store.tally import count, statuses
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine
from node.storage.tables import actors, ballots, proposal_voters, proposals

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
# Names outside ASCII, as a co-op may write them: stored as they are in the JSON.
PLACES = (Option("Lyon"), Option("Nîmes"), Option("Łódź"), Option("None", Role.ABSTAIN))
HALF = Fraction(1, 2)
WEIGHTS = {"producers": Fraction(1, 2), "workers": Fraction(3, 10), "consumers": Fraction(1, 5)}
KEYS = itertools.count()


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


def ballot(voter: str, *choices: str, hours: float = 1, activity_id: str | None = None) -> Ballot:
    return Ballot(
        voter=voter,
        choices=choices,
        cast_at=OPENS + timedelta(hours=hours),
        activity_id=activity_id or f"{voter}/votes/{hours}/{'+'.join(choices)}",
    )


def votes(electorate: Mapping[str, str | None], *plan: tuple[int, str]) -> list[Ballot]:
    """``(3, "For"), (2, "Against")``: the next three members vote For, then two Against."""
    voters = iter(electorate)
    return [ballot(next(voters), choice) for n, choice in plan for _ in range(n)]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


def store(
    db: Database,
    settings: Proposal,
    electorate: Mapping[str, str | None],
    valid: Iterable[Ballot],
    refused: Iterable[Ballot] = (),
) -> int:
    """Insert a proposal with its electorate and ballots, as the host stores them, and
    return its id: ``valid`` ballots passed every check at receipt, ``refused`` did not.
    Each call makes a new proposal, so that one database holds many."""
    key = f"p{next(KEYS)}"
    rows = [(b, "valid") for b in valid] + [(b, "refused") for b in refused]

    def unit(conn: Connection) -> int:
        actor_id = conn.execute(
            actors.insert()
            .values(
                username=f"coop-{key}",
                type="Organization",
                name="Co-op",
                summary="",
                created_at=OPENS,
                updated_at=OPENS,
            )
            .returning(actors.c.id)
        ).scalar_one()
        pk = int(
            conn.execute(
                proposals.insert()
                .values(
                    key=key,
                    uri=f"https://coop.example/proposals/{key}",
                    actor_id=actor_id,
                    title="A proposal",
                    source="",
                    content="",
                    options=json.dumps(
                        [{"name": o.name, "role": o.role.value} for o in settings.options]
                    ),
                    multiple_choice=int(settings.multiple_choice),
                    max_choices=settings.max_choices,
                    rule="",
                    quorum=str(settings.quorum),
                    abstentions_count=int(settings.abstentions_count_for_quorum),
                    allow_change=int(settings.replacements_allowed),
                    colleges_weigh=int(settings.college_weights is not None),
                    opens_at=settings.opens_at,
                    closes_at=settings.closes_at,
                    state="closed",
                    eligible=len(electorate),
                    published=OPENS,
                    updated=OPENS,
                )
                .returning(proposals.c.id)
            ).scalar_one()
        )
        if electorate:
            conn.execute(
                proposal_voters.insert(),
                [{"proposal_id": pk, "voter": v, "college": c} for v, c in electorate.items()],
            )
        if rows:
            conn.execute(
                ballots.insert(),
                [
                    {
                        "proposal_id": pk,
                        "voter": b.voter,
                        "college": electorate.get(b.voter),
                        "choices": json.dumps(
                            list(b.choices), ensure_ascii=False, separators=(",", ":")
                        ),
                        "activity_id": b.activity_id,
                        "cast_at": b.cast_at,
                        "state": state,
                        "reason": None if state == "valid" else "refused at receipt",
                        "notes": "[]",
                    }
                    for b, state in rows
                ],
            )
        return pk

    return db.write_sync(unit)


def counted(
    db: Database,
    settings: Proposal,
    electorate: Mapping[str, str | None],
    valid: list[Ballot],
    refused: list[Ballot] | None = None,
) -> Result:
    """Store, count from the rows, and check the count equals the pure tally's."""
    refused = refused or []
    pk = store(db, settings, electorate, valid, refused)
    result = db.read_sync(lambda conn: count(conn, pk, settings))
    expected = tally(settings, electorate, [*valid, *refused])
    assert result == replace(expected, refused=(), set_aside=())
    assert result.refused == ()
    assert result.set_aside == ()
    return result


def test_a_majority_is_counted_from_the_rows(db: Database) -> None:
    electorate = members(10)
    result = counted(db, proposal(), electorate, votes(electorate, (5, "For"), (3, "Against")))

    assert result.outcome is Outcome.PASSED
    assert result.counts == {"For": 5, "Against": 3, "Abstain": 0}
    assert (result.eligible, result.turnout) == (10, 8)


def test_nothing_stored_counts_nothing(db: Database) -> None:
    result = counted(db, proposal(quorum=Fraction(1, 2)), members(4), [])

    assert result.outcome is Outcome.NO_QUORUM
    assert (result.eligible, result.turnout, result.quorum_needed) == (4, 0, 2)


@pytest.mark.parametrize(("allowed", "kept"), [(True, "Against"), (False, "For")])
def test_the_last_ballot_counts_where_changes_are_allowed_else_the_first(
    db: Database, allowed: bool, kept: str
) -> None:
    electorate = members(3)
    voter = next(iter(electorate))
    changed = [
        ballot(voter, "For", hours=1),
        ballot(voter, "Abstain", hours=2),
        ballot(voter, "Against", hours=3),
    ]
    others = votes(dict(list(electorate.items())[1:]), (1, "For"), (1, "Against"))
    result = counted(db, proposal(replacements_allowed=allowed), electorate, changed + others)

    assert result.turnout == 3
    assert result.counts[kept] == 2


@pytest.mark.parametrize(("allowed", "kept"), [(True, "For"), (False, "Against")])
def test_ballots_accepted_at_the_same_instant_are_ordered_by_activity_id(
    db: Database, allowed: bool, kept: str
) -> None:
    # By code point "B" < "a" < "b"; a linguistic collation would put "a" first.
    electorate = members(1)
    voter = next(iter(electorate))
    tied = [
        ballot(voter, "Abstain", activity_id="https://coop.example/votes/a"),
        ballot(voter, "For", activity_id="https://coop.example/votes/b"),
        ballot(voter, "Against", activity_id="https://coop.example/votes/B"),
    ]
    result = counted(db, proposal(replacements_allowed=allowed), electorate, tied)

    assert result.counts[kept] == 1
    assert result.turnout == 1


def test_weighted_colleges_are_counted_from_the_rows(db: Database) -> None:
    producers = members(4, "producers", "p")
    workers = members(3, "workers", "w")
    consumers = members(12, "consumers", "c")
    electorate = {**producers, **workers, **consumers}
    cast = [
        *votes(producers, (1, "For"), (3, "Against")),
        *votes(workers, (1, "For"), (2, "Against")),
        *votes(consumers, (10, "For"), (1, "Abstain")),
    ]
    settings = proposal(rule=Qualified(Fraction(2, 3)), college_weights=WEIGHTS)
    result = counted(db, settings, electorate, cast)

    assert result.outcome is Outcome.REJECTED
    assert result.support is not None
    assert result.support > Fraction(2, 3)
    assert result.weighted_support is not None
    assert result.weighted_support < Fraction(2, 3)
    assert [(c.name, c.voters) for c in result.colleges] == [
        ("consumers", 11),
        ("producers", 4),
        ("workers", 3),
    ]


def test_a_college_that_did_not_vote_is_listed_with_no_votes(db: Database) -> None:
    electorate = {**members(2, "producers", "p"), **members(2, "workers", "w")}
    settings = proposal(college_weights={"producers": HALF, "workers": HALF})
    result = counted(db, settings, electorate, votes(electorate, (2, "For")))

    assert [(c.name, c.voters) for c in result.colleges] == [("producers", 2), ("workers", 0)]


def test_a_roster_college_without_weight_is_refused_as_by_the_tally(db: Database) -> None:
    electorate = {**members(2, "producers", "p"), **members(1, "visitors", "v")}
    settings = proposal(college_weights={"producers": HALF, "workers": HALF})
    pk = store(db, settings, electorate, votes(electorate, (1, "For")))

    with pytest.raises(Invalid, match="visitors"):
        db.read_sync(lambda conn: count(conn, pk, settings))
    with pytest.raises(Invalid, match="visitors"):
        tally(settings, electorate, [])


def test_a_multiple_choice_is_counted_from_the_rows(db: Database) -> None:
    electorate = members(5)
    voters = list(electorate)
    cast = [
        ballot(voters[0], "Lyon", "Nîmes"),
        ballot(voters[1], "Nîmes", "Lyon"),  # the same choice, another order
        ballot(voters[2], "Łódź"),
        ballot(voters[3], "None"),
    ]
    settings = proposal(options=PLACES, rule=None, multiple_choice=True, max_choices=2)
    result = counted(db, settings, electorate, cast)

    assert result.outcome is Outcome.COUNTED
    assert result.counts == {"Lyon": 2, "Nîmes": 2, "Łódź": 1, "None": 1}
    assert (result.turnout, result.quorum_turnout) == (4, 3)


def test_refused_rows_change_nothing(db: Database) -> None:
    electorate = members(4)
    voters = list(electorate)
    valid = votes(electorate, (2, "For"), (1, "Against"))
    refused = [
        ballot(voters[2], "For", hours=24 * 15),  # after the close
        ballot("https://elsewhere.example/actors/x", "Against"),  # not a member
        ballot(voters[3], "Paris"),  # no such option
        ballot(voters[0], "For", "Against", hours=2),  # two choices on a single choice
    ]
    result = counted(db, proposal(replacements_allowed=True), electorate, valid, refused)

    assert result.counts == {"For": 2, "Against": 1, "Abstain": 0}
    assert result.turnout == 3


@pytest.mark.parametrize(("abstentions_count", "outcome"), [(False, "no quorum"), (True, "passed")])
def test_abstentions_count_toward_quorum_only_where_the_proposal_says_so(
    db: Database, abstentions_count: bool, outcome: str
) -> None:
    electorate = members(20)
    cast = votes(electorate, (3, "For"), (1, "Against"), (2, "Abstain"))
    settings = proposal(quorum=Fraction(1, 4), abstentions_count_for_quorum=abstentions_count)
    result = counted(db, settings, electorate, cast)

    assert result.outcome.value == outcome
    assert (result.quorum_needed, result.turnout) == (5, 6)


def test_only_abstentions_under_consent(db: Database) -> None:
    electorate = members(6)
    settings = proposal(options=CONSENT, rule=Consent(1), quorum=Fraction(1, 2))
    result = counted(db, settings, electorate, votes(electorate, (4, "Stand aside")))

    assert result.outcome is Outcome.NO_QUORUM
    assert (result.turnout, result.quorum_turnout) == (4, 0)


def test_proposals_are_counted_apart(db: Database) -> None:
    electorate = members(3)
    settings = proposal()
    first = store(db, settings, electorate, votes(electorate, (3, "For")))
    # The same voters and the same activity ids on another proposal.
    second = store(db, settings, electorate, votes(electorate, (3, "Against")))

    one, two = db.read_sync(lambda c: (count(c, first, settings), count(c, second, settings)))
    assert (one.counts["For"], two.counts["Against"]) == (3, 3)


@pytest.mark.parametrize(("allowed", "other"), [(True, "replaced"), (False, "set aside")])
def test_statuses_name_the_counted_ballot_of_each_voter(
    db: Database, allowed: bool, other: str
) -> None:
    electorate = members(2)
    a, b = list(electorate)
    cast = [
        ballot(a, "For", hours=1),
        ballot(a, "Against", hours=2),
        ballot(b, "For", hours=1, activity_id="https://coop.example/votes/b"),
        ballot(b, "Against", hours=1, activity_id="https://coop.example/votes/B"),
    ]
    pk = store(db, proposal(replacements_allowed=allowed), electorate, cast)

    def read(conn: Connection) -> dict[str, str]:
        query = select(ballots.c.id, ballots.c.activity_id).where(ballots.c.proposal_id == pk)
        ids: dict[int, str] = {i: activity for i, activity in conn.execute(query)}
        return {ids[i]: status for i, status in dict(statuses(conn, pk, allowed)).items()}

    found = db.read_sync(read)
    if allowed:
        counted_ids = {cast[1].activity_id, cast[2].activity_id}
    else:
        counted_ids = {cast[0].activity_id, cast[3].activity_id}
    assert found == {b.activity_id: "counted" if b.activity_id in counted_ids else other
                     for b in cast}  # fmt: skip


# Property: any set of ballots valid at receipt is counted as the pure tally counts it.

ELECTORATE: dict[str, str | None] = {
    f"https://coop{i % 2}.example/actors/m{i}": college
    for i, college in enumerate(["producers", "producers", "workers", "workers", "consumers"] * 2)
}
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
    proposal(options=PLACES, rule=None, multiple_choice=True, max_choices=3, quorum=HALF),
]
# A few instants, so that ties are frequent, and ids whose byte order is not the
# dictionary order.
INSTANTS = [OPENS, OPENS + timedelta(hours=1), OPENS + timedelta(hours=1, microseconds=1)]
SUFFIXES = ["a", "B", "b", "Z", "é", "_", "0"]


@st.composite
def valid_ballots(draw: st.DrawFn, settings: Proposal) -> Ballot:
    names = [o.name for o in settings.options]
    abstain = [o.name for o in settings.options if o.role is Role.ABSTAIN]
    voter = draw(st.sampled_from(list(ELECTORATE)[:6]))
    if settings.multiple_choice and draw(st.booleans()):
        plain = [n for n in names if n not in abstain]
        choices = draw(st.lists(st.sampled_from(plain), min_size=1, max_size=settings.max_choices,
                                unique=True))  # fmt: skip
    else:
        choices = [draw(st.sampled_from(names))]
    return Ballot(
        voter=voter,
        choices=tuple(choices),
        cast_at=draw(st.sampled_from(INSTANTS)),
        activity_id=f"{voter}/votes/{draw(st.sampled_from(SUFFIXES))}{draw(st.integers(0, 3))}",
    )


@st.composite
def stored_cases(draw: st.DrawFn) -> tuple[Proposal, list[Ballot], list[Ballot]]:
    settings = draw(st.sampled_from(PROPOSALS))
    # Storage keeps activity ids unique per proposal.
    valid = draw(st.lists(valid_ballots(settings), max_size=20, unique_by=lambda b: b.activity_id))
    late = draw(st.lists(valid_ballots(settings), max_size=3, unique_by=lambda b: b.activity_id))
    refused = [replace(b, cast_at=CLOSES, activity_id=f"{b.activity_id}/late") for b in late]
    return settings, valid, refused


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=stored_cases())
def test_any_valid_ballots_are_counted_as_the_pure_tally_counts_them(
    db: Database, case: tuple[Proposal, list[Ballot], list[Ballot]]
) -> None:
    settings, valid, refused = case
    counted(db, settings, ELECTORATE, valid, refused)
