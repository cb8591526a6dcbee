"""The closed ``Question`` read: the settings the count used, and the result published.

:func:`read_proposal` makes the same :class:`~node.governance.rules.tally.Proposal` the
host counted with, from the ``Question``'s options, rule, quorum, dates and colleges;
:func:`read_outcome` reads the result the host published (:class:`Published`), every
figure of it, to be compared with the recount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from node.errors import Invalid
from node.governance.audit.fields import (
    AuditError,
    boolean,
    fraction,
    integer,
    quoted,
    required,
    stamp,
    string,
)
from node.governance.rules.tally import (
    Consent,
    Majority,
    Option,
    Outcome,
    Proposal,
    Qualified,
    Role,
    Rule,
)


@dataclass
class Published:
    """The result as the host published it, read field by field (``None``: not given)."""

    result: str
    eligible: int
    quorum_needed: int
    turnout: int
    counts: dict[str, int]
    passed: bool | None = None
    quorum_turnout: int | None = None
    support: Fraction | None = None
    weighted_support: Fraction | None = None
    weighted_shares: dict[str, Fraction] | None = None
    colleges: dict[str, tuple[Fraction | None, int, dict[str, int]]] | None = None
    reason: str | None = None
    has_support: bool = False
    has_weighted_support: bool = False
    replies: dict[str, int] = field(default_factory=dict)
    """Each option's ``replies.totalItems``, where given (Mastodon's count field)."""


def read_proposal(question: Mapping[str, Any]) -> Proposal:
    """The tally's :class:`Proposal` from a published ``Question``; each field that is
    missing or malformed is an :class:`AuditError` naming it."""
    has_one, has_any = "oneOf" in question, "anyOf" in question
    if has_one == has_any:
        raise AuditError("a Question has exactly one of oneOf and anyOf", field="oneOf/anyOf")
    key = "anyOf" if has_any else "oneOf"
    raw_options = question[key]
    if not isinstance(raw_options, list) or not 2 <= len(raw_options) <= 256:
        raise AuditError("a list of 2 to 256 options", field=key)
    options = []
    for index, raw in enumerate(raw_options):
        where = f"{key}[{index}]"
        if not isinstance(raw, dict):
            raise AuditError(f"an option object, not {quoted(raw)}", field=where)
        name = string(raw.get("name"), f"{where}.name", limit=512)
        role_text = raw.get("optionRole", "plain")
        try:
            role = Role(role_text)
        except ValueError:
            choices = ", ".join(r.value for r in Role)
            raise AuditError(
                f"one of {choices}, not {quoted(role_text)}", field=f"{where}.optionRole"
            ) from None
        options.append(Option(name, role))
    multiple = has_any
    max_choices = 1
    if multiple:
        max_choices = (
            integer(question["maxChoices"], "maxChoices", minimum=1)
            if question.get("maxChoices") is not None
            else len(options)
        )
    rule = _rule(question.get("decisionRule"))
    colleges = question.get("colleges")
    weights: dict[str, Fraction] | None = None
    if colleges is not None:
        if not isinstance(colleges, list) or not colleges:
            raise AuditError("a list of colleges with their weights", field="colleges")
        weights = {}
        for index, raw in enumerate(colleges):
            where = f"colleges[{index}]"
            if not isinstance(raw, dict):
                raise AuditError(f"a college object, not {quoted(raw)}", field=where)
            name = string(raw.get("name"), f"{where}.name", limit=64)
            if name in weights:
                raise AuditError(f"college {name!r} is listed twice", field=where)
            weights[name] = fraction(required(raw, "weight", f"{where}."), f"{where}.weight")
    try:
        return Proposal(
            options=tuple(options),
            opens_at=stamp(required(question, "startTime"), "startTime"),
            closes_at=stamp(required(question, "endTime"), "endTime"),
            rule=rule,
            multiple_choice=multiple,
            max_choices=max_choices,
            quorum=fraction(required(question, "quorum"), "quorum"),
            abstentions_count_for_quorum=boolean(
                required(question, "abstentionsCountTowardQuorum"),
                "abstentionsCountTowardQuorum",
            ),
            replacements_allowed=boolean(
                required(question, "allowBallotChange"), "allowBallotChange"
            ),
            college_weights=weights,
            weighed_by="co-op" if question.get("countingMode") == "coop" else "college",
        )
    except Invalid as exc:
        wire = {
            "options": key,
            "opens_at": "startTime",
            "closes_at": "endTime",
            "rule": "decisionRule",
            "quorum": "quorum",
            "max_choices": "maxChoices",
            "college_weights": "colleges",
        }
        raise AuditError(exc.reason, field=wire.get(exc.field or "", exc.field)) from None


def _rule(raw: object) -> Rule | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise AuditError(f"a decision rule object, not {quoted(raw)}", field="decisionRule")
    kind = raw.get("type")
    try:
        if kind == "majority":
            return Majority()
        if kind == "qualified":
            threshold = required(raw, "threshold", "decisionRule.")
            return Qualified(fraction(threshold, "decisionRule.threshold"))
        if kind == "consent":
            block_at = required(raw, "blockAt", "decisionRule.")
            return Consent(integer(block_at, "decisionRule.blockAt", minimum=1))
    except Invalid as exc:
        raise AuditError(exc.reason, field="decisionRule") from None
    raise AuditError(
        f"majority, qualified or consent, not {quoted(kind)}", field="decisionRule.type"
    )


def read_outcome(question: Mapping[str, Any], proposal: Proposal) -> Published:
    """The published result, each field checked (an :class:`AuditError` names a bad one)."""
    outcome = required(question, "outcome")
    if not isinstance(outcome, dict):
        raise AuditError(f"an object, not {quoted(outcome)}", field="outcome")
    where = "outcome."
    result = required(outcome, "result", where)
    if result not in {o.value for o in Outcome}:
        raise AuditError(
            f"one of {', '.join(o.value for o in Outcome)}, not {quoted(result)}",
            field="outcome.result",
        )
    published = Published(
        result=result,
        eligible=integer(required(outcome, "eligible", where), "outcome.eligible"),
        quorum_needed=integer(required(outcome, "quorumNeeded", where), "outcome.quorumNeeded"),
        turnout=integer(required(outcome, "turnout", where), "outcome.turnout"),
        counts=_counts(required(outcome, "counts", where), "outcome.counts"),
    )
    if outcome.get("passed") is not None:
        published.passed = boolean(outcome["passed"], "outcome.passed")
    if outcome.get("quorumTurnout") is not None:
        published.quorum_turnout = integer(outcome["quorumTurnout"], "outcome.quorumTurnout")
    if "support" in outcome:
        published.has_support = True
        if outcome["support"] is not None:
            published.support = fraction(outcome["support"], "outcome.support")
    if "weightedSupport" in outcome:
        published.has_weighted_support = True
        if outcome["weightedSupport"] is not None:
            published.weighted_support = fraction(
                outcome["weightedSupport"], "outcome.weightedSupport"
            )
    if outcome.get("weightedShares") is not None:
        shares = outcome["weightedShares"]
        if not isinstance(shares, dict):
            raise AuditError(f"an object, not {quoted(shares)}", field="outcome.weightedShares")
        published.weighted_shares = {
            str(k): fraction(v, f"outcome.weightedShares.{k}") for k, v in shares.items()
        }
    if outcome.get("reason") is not None:
        published.reason = string(outcome["reason"], "outcome.reason", limit=4096)
    if outcome.get("colleges") is not None:
        raw_colleges = outcome["colleges"]
        if not isinstance(raw_colleges, list):
            raise AuditError(f"a list, not {quoted(raw_colleges)}", field="outcome.colleges")
        published.colleges = {}
        for index, raw in enumerate(raw_colleges):
            at = f"outcome.colleges[{index}]"
            if not isinstance(raw, dict):
                raise AuditError(f"an object, not {quoted(raw)}", field=at)
            name = string(raw.get("name"), f"{at}.name", limit=64)
            weight = None if raw.get("weight") is None else fraction(raw["weight"], f"{at}.weight")
            voters = integer(required(raw, "voters", f"{at}."), f"{at}.voters")
            counts = _counts(required(raw, "counts", f"{at}."), f"{at}.counts")
            published.colleges[name] = (weight, voters, counts)
    key = "anyOf" if proposal.multiple_choice else "oneOf"
    for index, raw in enumerate(question[key]):
        replies = raw.get("replies")
        if isinstance(replies, dict) and replies.get("totalItems") is not None:
            published.replies[raw["name"]] = integer(
                replies["totalItems"], f"{key}[{index}].replies.totalItems"
            )
    return published


def _counts(value: object, name: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise AuditError(f"an object of option name to count, not {quoted(value)}", field=name)
    return {str(k): integer(v, f"{name}.{k}") for k, v in value.items()}
