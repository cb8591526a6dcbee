"""A shared proposal as its host sends it: the ``Question`` read field by field.

One reader serves every place that uses a host's document: the inbox, which refuses a
document that does not read (so nothing malformed is ever stored), and the API and the
pages, which show what it read. A field of the wrong type is an error naming that field,
never a crash further on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.errors import MalformedInput
from node.governance.rules.question_text import untitled

MAX_OPTIONS = 50
MAX_COUNT = 10**9
MAX_TITLE = 1000
MAX_CONTENT = 100_000
COUNTING_MODES = ("open", "subtotal", "coop")


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    role: str  # for, against, abstain, objection, plain; "plain" when not given
    count: int


@dataclass(frozen=True, slots=True)
class SharedQuestion:
    uri: str
    title: str
    content: str
    options: tuple[Option, ...]
    multiple: bool
    max_choices: int
    voters: int
    starts_at: datetime | None
    ends_at: datetime
    closed: bool
    counting_mode: str
    electorate: tuple[str, ...]
    # The network whose member co-ops are the electorate, for a network-wide proposal.
    network: str | None
    outcome: dict[str, Any] | None
    url: str | None
    rule: dict[str, Any]
    allow_change: bool
    abstentions_count: bool
    coop_tie: str

    @property
    def counts(self) -> dict[str, int]:
        return {o.name: o.count for o in self.options}


def read_question(document: Any) -> SharedQuestion:
    """The host's ``Question``, or :class:`MalformedInput` naming the first field that is
    not what a shared proposal carries."""
    if not isinstance(document, dict) or document.get("type") != "Question":
        raise MalformedInput("a shared proposal is a Question object")
    uri = _text(document, "id", 2048, required=True)
    if not uri.startswith(("https://", "http://")):
        raise MalformedInput("the proposal's id is not an http(s) URL")
    multiple = "anyOf" in document
    if multiple and "oneOf" in document:
        raise MalformedInput("a proposal has oneOf or anyOf, not both")
    field = "anyOf" if multiple else "oneOf"
    raw_options = document.get(field)
    if not isinstance(raw_options, list) or not 1 <= len(raw_options) <= MAX_OPTIONS:
        raise MalformedInput(f"{field} is a list of 1 to {MAX_OPTIONS} options")
    options = tuple(_option(raw, f"{field}[{n}]") for n, raw in enumerate(raw_options))
    if len({o.name for o in options}) != len(options):
        raise MalformedInput(f"{field} names an option twice")
    rule = document.get("decisionRule", {})
    if not isinstance(rule, dict):
        raise MalformedInput("decisionRule is an object")
    _optional(rule, "type", str, "decisionRule.type")
    _optional(rule, "threshold", str, "decisionRule.threshold")
    if "blockAt" in rule:
        _count(rule["blockAt"], "decisionRule.blockAt")
    mode = document.get("countingMode", "open")
    if mode not in COUNTING_MODES:
        raise MalformedInput(f"countingMode is one of {', '.join(COUNTING_MODES)}")
    tie = document.get("coopTie", "abstain")
    if tie not in ("abstain", "against"):
        raise MalformedInput("coopTie is abstain or against")
    electorate = document.get("electorate", [])
    electorate = [electorate] if isinstance(electorate, str) else electorate
    if not isinstance(electorate, list) or not all(isinstance(e, str) for e in electorate):
        raise MalformedInput("electorate is a list of actor URLs")
    closed = document.get("closed", False)
    if not isinstance(closed, bool):
        _time(document, "closed")  # Mastodon's form: the time it closed
        closed = True
    url = _optional(document, "url", str, "url")
    network = _optional(document, "network", str, "network")
    if network is not None and not network.startswith(("https://", "http://")):
        raise MalformedInput("network is a network's actor URL")
    title = _text(document, "name", MAX_TITLE, required=True)
    return SharedQuestion(
        uri=uri,
        title=title,
        content=untitled(title, _text(document, "content", MAX_CONTENT)),
        options=options,
        multiple=multiple,
        max_choices=_count(document.get("maxChoices", len(options)), "maxChoices"),
        voters=_count(document.get("votersCount", 0), "votersCount"),
        starts_at=_time(document, "startTime"),
        ends_at=_time(document, "endTime", required=True),
        closed=closed,
        counting_mode=mode,
        electorate=tuple(electorate),
        network=network,
        outcome=_outcome(document.get("outcome")),
        url=url if url is not None and url.startswith(("https://", "http://")) else None,
        rule=rule,
        allow_change=_flag(document, "allowBallotChange", True),
        abstentions_count=_flag(document, "abstentionsCountTowardQuorum", False),
        coop_tie=tie,
    )


def _option(raw: Any, where: str) -> Option:
    if not isinstance(raw, dict):
        raise MalformedInput(f"{where} is an object")
    name = _text(raw, "name", 200, required=True, where=f"{where}.name")
    role = _optional(raw, "optionRole", str, f"{where}.optionRole") or "plain"
    replies = raw.get("replies", {})
    if not isinstance(replies, dict):
        raise MalformedInput(f"{where}.replies is a collection")
    count = _count(replies.get("totalItems", 0), f"{where}.replies.totalItems")
    return Option(name=name, role=role[:32], count=count)


def _outcome(raw: Any) -> dict[str, Any] | None:
    """The host's outcome, kept as sent once its figures read as figures."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MalformedInput("outcome is an object")
    _text(raw, "result", 64, required=True, where="outcome.result")
    _text(raw, "reason", 2000, where="outcome.reason")
    counts = raw.get("counts", {})
    if not isinstance(counts, dict):
        raise MalformedInput("outcome.counts maps options to counts")
    for name, value in counts.items():
        _count(value, f"outcome.counts.{name}")
    for key in ("turnout", "eligible"):
        if key in raw:
            _count(raw[key], f"outcome.{key}")
    for key in ("colleges", "participation"):
        entries = raw.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise MalformedInput(f"outcome.{key} is a list of objects")
    for n, college in enumerate(raw.get("colleges", [])):
        _text(college, "name", 100, required=True, where=f"outcome.colleges[{n}].name")
        found = college.get("counts", {})
        if not isinstance(found, dict):
            raise MalformedInput(f"outcome.colleges[{n}].counts maps options to counts")
        for name, value in found.items():
            _count(value, f"outcome.colleges[{n}].counts.{name}")
    return raw


def _text(
    document: dict[str, Any],
    key: str,
    limit: int,
    *,
    required: bool = False,
    where: str | None = None,
) -> str:
    value = document.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        least = 1 if required else 0
        raise MalformedInput(f"{where or key} is a text of {least} to {limit} characters")
    return value


def _optional(document: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        raise MalformedInput(f"{where} is a {kind.__name__}")
    return value


def _flag(document: dict[str, Any], key: str, default: bool) -> bool:
    value = document.get(key, default)
    if not isinstance(value, bool):
        raise MalformedInput(f"{key} is true or false")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise MalformedInput(f"{where} is a whole number from 0 to {MAX_COUNT}")
    return value


def _time(document: dict[str, Any], key: str, *, required: bool = False) -> Any:
    value = document.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise MalformedInput(f"{key} is a date and time (ISO 8601)")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedInput(f"{key} is a date and time (ISO 8601)") from None
    if moment.tzinfo is None:
        raise MalformedInput(f"{key} names its time zone")
    if not math.isfinite(moment.timestamp()):
        raise MalformedInput(f"{key} is out of range")
    return moment
