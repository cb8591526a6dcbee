"""Governance's rows as plain values: a stored proposal with its settings read, a ballot,
a co-op taking part in a shared proposal, a shared proposal another co-op hosts, and
what a member voted.

The tables keep settings, counts and outcomes as JSON text; this module is the one place
that reads them back, so that the rest of governance works with attributes and exact
values, never with a row's column names.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from node.governance.rules.proposal_input import rule_of
from node.governance.rules.shared_question import SharedQuestion, read_question
from node.governance.rules.tally import Option, Proposal, Role

Row = Mapping[Any, Any]


class State(enum.StrEnum):
    """Where a proposal is in its life: it only ever moves forward, scheduled -> open ->
    closed (:mod:`node.governance.proposals` makes each move)."""

    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"


# The one move out of each state: a proposal is never reopened nor rescheduled.
NEXT = {State.SCHEDULED: State.OPEN, State.OPEN: State.CLOSED}


class Mode(enum.StrEnum):
    """How a proposal is counted (PROTOCOL.md, "Counting modes on shared proposals")."""

    OPEN = "open"  # every ballot at the host, published at the close
    SUBTOTAL = "subtotal"  # each co-op sends the host its members' counts
    COOP = "coop"  # each co-op casts one ballot, decided by its own members' vote


@dataclass(frozen=True, slots=True)
class Shown:
    """The counts as last published: per option, and how many voted."""

    counts: dict[str, int]
    voters: int


@dataclass(frozen=True, slots=True)
class Mirror:
    """What makes a proposal this co-op's own vote on a shared one hosted elsewhere."""

    of: str
    """The host's proposal."""
    host: str
    inbox: str
    """Where this co-op's result goes."""
    mode: str
    """The shared proposal's counting mode: "subtotal" or "coop"."""
    tie: str
    """Co-op mode: what the co-op casts when its members tie ("abstain" or "against")."""

    def to_json(self) -> str:
        return json.dumps(
            {"of": self.of, "host": self.host, "inbox": self.inbox, "mode": self.mode,
             "tie": self.tie}
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredProposal:
    """A proposal of this co-op as stored, settings read."""

    id: int
    key: str
    uri: str
    author: str | None
    title: str
    content: str
    """The text as sanitised HTML."""
    source: dict[str, Any]
    """What the member sent, as checked: shown back by the API."""
    options: tuple[Option, ...]
    multiple_choice: bool
    max_choices: int
    rule: str
    """majority, qualified, consent, or "" (a multiple choice: counts only)."""
    threshold: Fraction | None
    block_at: int | None
    quorum: Fraction
    abstentions_count: bool
    allow_change: bool
    college_weights: dict[str, Fraction] | None
    """Each college's weight where colleges weigh, else None."""
    open_ballot: bool
    counting_mode: Mode
    opens_at: datetime
    closes_at: datetime
    state: State
    eligible: int | None
    roster_digest: str | None
    shown: Shown
    outcome: dict[str, Any] | None
    """The result as published at the close."""
    closed_at: datetime | None
    published: datetime
    updated: datetime
    mirror: Mirror | None

    @property
    def text(self) -> str:
        """The text as the member wrote it (Markdown)."""
        return str(self.source["text"])

    @property
    def electorate(self) -> list[str] | None:
        """The co-ops of a shared proposal, the host first; None for an internal one."""
        found = self.source.get("electorate")
        return list(found) if found else None

    @property
    def network(self) -> str | None:
        """The network whose member co-ops are the electorate (a network-wide proposal)."""
        found = self.source.get("network")
        return str(found) if found else None

    @property
    def language(self) -> str | None:
        return self.source.get("language") or None

    @property
    def coop_tie(self) -> str | None:
        return self.source.get("coop_tie") or None

    @property
    def shared_by_subtotals(self) -> bool:
        """A shared proposal this co-op hosts and counts by subtotals."""
        return self.counting_mode is Mode.SUBTOTAL and self.mirror is None

    def tally_settings(self) -> Proposal:
        """The settings the tally reads."""
        return Proposal(
            options=self.options,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            rule=rule_of(self.rule, self.threshold, self.block_at),
            multiple_choice=self.multiple_choice,
            max_choices=self.max_choices,
            quorum=self.quorum,
            abstentions_count_for_quorum=self.abstentions_count,
            replacements_allowed=self.allow_change,
            college_weights=self.college_weights,
            weighed_by="co-op" if self.counting_mode is Mode.COOP else "college",
        )


def proposal_of(row: Row) -> StoredProposal:
    shown: dict[str, Any] = (
        json.loads(row["counts"]) if row["counts"] else {"counts": {}, "voters": 0}
    )
    weights = None
    if row["colleges_weigh"] and row["college_weights"]:
        weights = {name: Fraction(w) for name, w in json.loads(row["college_weights"]).items()}
    return StoredProposal(
        id=row["id"],
        key=row["key"],
        uri=row["uri"],
        author=row["author"],
        title=row["title"],
        content=row["content"] or "",
        source=json.loads(row["source"]),
        options=tuple(Option(o["name"], Role(o["role"])) for o in json.loads(row["options"])),
        multiple_choice=bool(row["multiple_choice"]),
        max_choices=row["max_choices"],
        rule=row["rule"],
        threshold=None if row["threshold"] is None else Fraction(row["threshold"]),
        block_at=row["block_at"],
        quorum=Fraction(row["quorum"]),
        abstentions_count=bool(row["abstentions_count"]),
        allow_change=bool(row["allow_change"]),
        college_weights=weights,
        open_ballot=bool(row["open_ballot"]),
        counting_mode=Mode(row["counting_mode"]),
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        state=State(row["state"]),
        eligible=row["eligible"],
        roster_digest=row["roster_digest"],
        shown=Shown(dict(shown["counts"]), int(shown["voters"])),
        outcome=None if row["outcome"] is None else json.loads(row["outcome"]),
        closed_at=row["closed_at"],
        published=row["published"],
        updated=row["updated"],
        mirror=None if row["mirror"] is None else mirror_of(row["mirror"]),
    )


def mirror_of(text: str) -> Mirror:
    found = json.loads(text)
    return Mirror(
        of=str(found["of"]),
        host=str(found["host"]),
        inbox=str(found["inbox"]),
        mode=str(found.get("mode") or Mode.SUBTOTAL),
        tie=str(found.get("tie") or "abstain"),
    )


@dataclass(frozen=True, slots=True)
class StoredBallot:
    """A ballot the host received: valid (it passed every check at receipt; the count
    decides which of a voter's valid ballots counts), refused, or after the close what
    became of it (replaced, set aside)."""

    id: int
    voter: str
    college: str | None
    choices: tuple[str, ...]
    activity_id: str
    cast_at: datetime
    state: str
    reason: str | None
    notes: tuple[dict[str, Any], ...]
    """The Notes as received, proofs included."""


def ballot_of(row: Row) -> StoredBallot:
    return StoredBallot(
        id=row["id"],
        voter=row["voter"],
        college=row["college"],
        choices=tuple(json.loads(row["choices"])),
        activity_id=row["activity_id"],
        cast_at=row["cast_at"],
        state=row["state"],
        reason=row["reason"],
        notes=tuple(n for n in json.loads(row["notes"]) if isinstance(n, dict)),
    )


@dataclass(frozen=True, slots=True)
class CoopTakingPart:
    """A co-op of a shared proposal this co-op hosts: the host itself, or one invited,
    listed (its roster read at the opening), declined or failed (``reason``)."""

    coop: str
    inbox: str | None
    state: str
    roster_size: int | None
    reason: str | None


def coop_of(row: Row) -> CoopTakingPart:
    return CoopTakingPart(
        coop=row["coop"],
        inbox=row["inbox"],
        state=row["state"],
        roster_size=row["roster_size"],
        reason=row["reason"],
    )


@dataclass(frozen=True, slots=True)
class RemoteProposal:
    """A shared proposal another co-op hosts, as its host last sent it."""

    id: int
    key: str
    uri: str
    host: str
    state: str
    """invited (waiting for the admin), open, closed, or declined."""
    document: Any
    """The host's ``Question``, as received; None if what is stored is not JSON."""
    is_json: bool

    def question(self) -> SharedQuestion:
        """The host's ``Question`` read as at receipt; ValueError if the stored copy is
        not JSON, MalformedInput if it is not a readable ``Question``."""
        if not self.is_json:
            raise ValueError("not JSON")
        return read_question(self.document)

    @property
    def visible(self) -> bool:
        """Whether members may see it: not while it waits for the admin."""
        return self.state != "invited"


def remote_of(row: Row) -> RemoteProposal:
    try:
        document, is_json = json.loads(row["document"]), True
    except ValueError:
        document, is_json = None, False
    return RemoteProposal(
        id=row["id"],
        key=row["key"],
        uri=row["uri"],
        host=row["host"],
        state=row["state"],
        document=document,
        is_json=is_json,
    )


@dataclass(frozen=True, slots=True)
class SentBallot:
    """A member's ballot sent to the host of a shared proposal."""

    choices: list[str]
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class CastBallot:
    """A member's ballot on one of this co-op's proposals, for the member's own page."""

    key: str
    title: str
    proposal_state: str
    choices: list[str]
    cast_at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class SentElsewhere:
    """A member's latest ballot on a shared proposal hosted by another co-op."""

    key: str
    title: str | None
    host: str
    choices: list[str]
    sent_at: datetime


def choices_of(raw: Any) -> list[str]:
    """Stored choices, read leniently: whatever is not a list of names reads as none."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [str(c) for c in value] if isinstance(value, list) else []


def document_title(raw: str) -> str | None:
    """The ``name`` of a stored document, if it has a readable one."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    title = document.get("name") if isinstance(document, dict) else None
    return title if isinstance(title, str) and title else None
