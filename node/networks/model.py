"""What a network and its members are, and the checks on what people and peers say
about them (names, sectors, regions): no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from node.errors import Invalid


class Admission(StrEnum):
    """How an applicant becomes a member: the network's admin decides, or its members
    vote (a proposal whose electorate is the network)."""

    ADMIN = "admin"
    VOTE = "vote"


class State(StrEnum):
    PENDING = "pending"
    MEMBER = "member"
    REFUSED = "refused"
    REMOVED = "removed"
    LEFT = "left"


# A network's name is its actor's username: the handle people type.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
CHARTER_MAX = 5_000
SECTOR_MAX = 64
REGION_MAX = 128
REASON_MAX = 500
DISPLAY_NAME_MAX = 200
# Applications waiting in one network at once: a stranger's Joins cannot grow the table
# without end.
PENDING_MAX = 1_000
# Members a network relays to; well above the 500 co-ops it is designed for.
MEMBERS_MAX = 5_000
# Members read from a network's collection when the co-op is admitted.
ROSTER_MAX = 5_000


@dataclass(frozen=True, slots=True)
class Network:
    """A network this node hosts."""

    id: int
    actor_pk: int
    name: str
    title: str
    summary: str
    charter: str
    admission: Admission
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A co-op that applied to a hosted network, belongs to it, or did."""

    id: int
    network_id: int
    actor: str
    name: str
    inbox: str
    shared_inbox: str | None
    sector: str
    region: str
    state: State
    join_id: str
    reason: str
    applied_at: datetime
    since: datetime | None
    offers: int = 0
    # Where the network admits by vote: the proposal its members vote on.
    proposal: str | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    """A network the co-op applied to or belongs to."""

    id: int
    network: str
    name: str
    inbox: str
    state: State
    join_id: str
    sector: str
    region: str
    reason: str
    applied_at: datetime
    since: datetime | None


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """A member of a network, as the co-op knows the network's roster."""

    actor: str
    name: str
    sector: str
    region: str
    since: datetime | None


def clean_text(value: object, *, limit: int, what: str) -> str:
    """A short text from a person or a peer: a string without control characters or
    lone surrogates, trimmed, at most ``limit`` characters; anything else is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text", field=what)
    text = " ".join(value.split())
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn"):
            raise Invalid(f"{what} holds a character that is not text", field=what)
    if len(text) > limit:
        raise Invalid(f"{what} is longer than {limit} characters", field=what)
    return text


def clean_charter(value: object) -> str:
    """A charter keeps its paragraphs; otherwise the same rules as :func:`clean_text`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid("the charter must be text", field="charter")
    lines = [" ".join(line.split()) for line in value.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines).strip()
    for char in text:
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
            raise Invalid("the charter holds a character that is not text", field="charter")
    if len(text) > CHARTER_MAX:
        raise Invalid(f"the charter is longer than {CHARTER_MAX} characters", field="charter")
    return text


def check_name(value: object) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise Invalid(
            "a network's name is 2 to 63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or a digit",
            field="name",
        )
    return value


def admission_of(value: object) -> Admission:
    try:
        return Admission(str(value))
    except ValueError:
        raise Invalid("admission is 'admin' or 'vote'", field="admission") from None
