"""Governance's documents are functions of stored rows and addresses alone: a proposal's
``Question`` before and after its close, the outcome ``Note``, and a ballot as the
published ballots list it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from node.governance import documents
from node.governance.rules.tally import Option, Role
from node.governance.store.rows import Mode, Shown, State, StoredBallot, StoredProposal
from node.urls import Urls

URLS = Urls("https://coop.example")
OPENS = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(days=7)

OPEN = StoredProposal(
    id=1,
    key="k1",
    uri="https://coop.example/proposals/k1",
    author=None,
    title="Solar <panels>",
    content="<p>On the roof.</p>",
    source={"text": "On the roof.", "language": "en"},
    options=(Option("For", Role.FOR), Option("Against", Role.AGAINST)),
    multiple_choice=False,
    max_choices=1,
    rule="qualified",
    threshold=Fraction(2, 3),
    block_at=None,
    quorum=Fraction(1, 4),
    abstentions_count=False,
    allow_change=True,
    college_weights={"producers": Fraction(1, 2), "consumers": Fraction(1, 2)},
    open_ballot=True,
    counting_mode=Mode.OPEN,
    opens_at=OPENS,
    closes_at=CLOSES,
    state=State.OPEN,
    eligible=4,
    roster_digest="sha-256=abc",
    shown=Shown({"For": 2}, 2),
    outcome=None,
    closed_at=None,
    published=OPENS,
    updated=OPENS,
    mirror=None,
)
OUTCOME = {
    "result": "passed",
    "reason": "2 of 2 for",
    "counts": {"For": 2, "Against": 0},
    "turnout": 2,
    "eligible": 4,
}


def test_an_open_proposal_is_a_poll_with_its_rules() -> None:
    doc = documents.question(URLS, "coop", OPEN)

    assert doc["attributedTo"] == "https://coop.example/actors/coop"
    assert doc["oneOf"][0]["replies"]["totalItems"] == 2
    assert doc["oneOf"][1]["replies"]["totalItems"] == 0
    assert doc["decisionRule"] == {"type": "qualified", "threshold": "2/3"}
    assert doc["quorum"] == "1/4"
    assert doc["colleges"] == [
        {"name": "producers", "weight": "1/2"},
        {"name": "consumers", "weight": "1/2"},
    ]
    assert doc["electorate"] == ["https://coop.example/actors/coop"]
    assert doc["contentMap"] == {"en": doc["content"]}
    assert "closed" not in doc
    assert "outcome" not in doc


def test_a_closed_proposal_carries_its_outcome_and_where_to_audit_it() -> None:
    closed = replace(OPEN, state=State.CLOSED, outcome=OUTCOME, closed_at=CLOSES)
    secret = replace(closed, open_ballot=False, counting_mode=Mode.SUBTOTAL)

    doc = documents.question(URLS, "coop", closed)
    assert doc["closed"] == "2027-03-08T09:00:00Z"
    assert doc["outcome"] == OUTCOME
    assert doc["ballots"] == URLS.proposal_ballots("k1")
    assert doc["rosterSnapshot"]["id"] == URLS.proposal_electorate("k1")

    doc = documents.question(URLS, "coop", secret)
    assert doc["rosterSnapshot"] == {"totalItems": 4, "digest": "sha-256=abc"}
    assert doc["subtotals"] == "https://coop.example/proposals/k1/subtotals"
    assert "ballots" not in doc


def test_the_outcome_note_says_it_in_words_escaped() -> None:
    closed = replace(OPEN, state=State.CLOSED, outcome=OUTCOME, closed_at=CLOSES)

    note = documents.outcome_note(URLS, "coop", closed)

    assert note["inReplyTo"] == OPEN.uri
    assert note["content"].startswith("<p><strong>Solar &lt;panels&gt;</strong>: Passed.</p>")
    assert "2 of 4 eligible members voted" in note["content"]
    assert f"coopnode audit {OPEN.uri}" in note["content"]


def test_a_published_ballot_says_what_became_of_it() -> None:
    ballot = StoredBallot(
        id=7,
        voter="https://mastodon.example/users/ada",
        college=None,
        choices=("For",),
        activity_id="https://mastodon.example/users/ada#votes/1",
        cast_at=OPENS,
        state="valid",
        reason=None,
        notes=({"type": "Note", "name": "For"},),
    )

    assert documents.ballot_item(ballot)["status"] == "counted"
    assert documents.ballot_item(ballot)["votes"] == [{"type": "Note", "name": "For"}]
    replaced = documents.ballot_item(replace(ballot, state="replaced", reason="replaced"))
    assert (replaced["status"], replaced["reason"]) == ("replaced", "replaced")
