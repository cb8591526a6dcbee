"""A member's proposal as the JSON API receives it: checked field by field, with an error
that names the field, before anything is stored.

    {"title": "Adopt the 2027 delivery tariff",
     "text": "Markdown...",
     "options": ["For", "Against", "Abstain"],
     "rule": "qualified", "threshold": "2/3",
     "quorum": "25%",
     "closes_at": "2027-03-08T18:00:00Z"}

Options are names, or ``{"name", "role"}`` objects. Names alone take their roles from
their place: for a majority or qualified vote the first is for, the second against and a
third abstain; for consent the first is consent, the second an objection and a third
abstain; for a multiple choice all are plain. Fractions are exact: ``"2/3"``, ``"25%"``,
``"12.5%"`` or a whole percentage; a float is refused, since 0.1 + 0.2 is not 0.3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from node.errors import Invalid
from node.governance.rules.tally import Consent, Majority, Option, Proposal, Qualified, Role, Rule
from node.languages import LANGUAGE_TAG
from node.offers.markdown import render_markdown

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_OPTIONS = 20
MAX_OPTION_NAME = 100
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(days=366)
RULES = ("majority", "qualified", "consent")
COUNTING_MODES = ("open", "subtotal", "coop")
COOP_TIES = ("abstain", "against")
_PERCENT = re.compile(r"^\s*(\d{1,3}(?:\.\d{1,4})?)\s*%\s*$")
_FRACTION = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$")


@dataclass(frozen=True)
class ProposalInput:
    title: str
    text: str
    content: str
    """The text as sanitised HTML."""
    options: tuple[Option, ...]
    multiple_choice: bool
    max_choices: int
    rule: str
    """majority, qualified, consent, or "" for a multiple choice."""
    threshold: Fraction | None
    block_at: int | None
    quorum: Fraction
    opens_at: datetime
    closes_at: datetime
    allow_change: bool
    abstentions_count: bool
    colleges_weigh: bool
    open_ballot: bool
    counting_mode: str = "open"
    coop_tie: str | None = None
    """Co-op mode: what a co-op whose members tie casts (abstain or against)."""
    language: str | None = None
    """The language of the title and text (a BCP 47 tag), if the author said it."""

    def tally_rule(self) -> Rule | None:
        return rule_of(self.rule, self.threshold, self.block_at)

    def to_source(self) -> dict[str, Any]:
        """What the member sent, as checked: stored, and shown back by the API."""
        return {
            "title": self.title,
            "text": self.text,
            "options": [{"name": o.name, "role": o.role.value} for o in self.options],
            "multiple_choice": self.multiple_choice,
            "max_choices": self.max_choices,
            "rule": self.rule or None,
            "threshold": None if self.threshold is None else fraction_text(self.threshold),
            "block_at": self.block_at,
            "quorum": fraction_text(self.quorum),
            "opens_at": iso(self.opens_at),
            "closes_at": iso(self.closes_at),
            "allow_change": self.allow_change,
            "abstentions_count": self.abstentions_count,
            "colleges_weigh": self.colleges_weigh,
            "open_ballot": self.open_ballot,
            "counting_mode": self.counting_mode,
            "coop_tie": self.coop_tie,
            "language": self.language,
        }


def rule_of(rule: str, threshold: Fraction | None, block_at: int | None) -> Rule | None:
    if rule == "majority":
        return Majority()
    if rule == "qualified":
        assert threshold is not None
        return Qualified(threshold)
    if rule == "consent":
        assert block_at is not None
        return Consent(block_at)
    return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fraction_text(value: Fraction) -> str:
    return str(value)


def parse_fraction(value: Any, field: str) -> Fraction:
    """An exact share from 0 to 1: "2/3", "25%", "12.5 %" or a whole percentage (25)."""
    if isinstance(value, bool | float):
        raise Invalid('give an exact share: "2/3", "25%" or a whole percentage', field=field)
    if isinstance(value, int):
        share = Fraction(value, 100)
    elif isinstance(value, str) and (m := _PERCENT.match(value)):
        share = Fraction(m.group(1)) / 100
    elif isinstance(value, str) and (m := _FRACTION.match(value)):
        if int(m.group(2)) == 0:
            raise Invalid("a fraction's denominator is not zero", field=field)
        share = Fraction(int(m.group(1)), int(m.group(2)))
    else:
        raise Invalid('give an exact share: "2/3", "25%" or a whole percentage', field=field)
    if not 0 <= share <= 1:
        raise Invalid("a share is from 0 % to 100 %", field=field)
    return share


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"{key} is required text", field=key)
    value = value.strip()
    if len(value) > limit:
        raise Invalid(f"{key} is at most {limit} characters", field=key)
    return value


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise Invalid(f"{key} is true or false", field=key)
    return value


def _time(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} is a date and time, like 2027-03-08T18:00:00Z", field=key)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"{key} is a date and time, like 2027-03-08T18:00:00Z", field=key) from exc
    if moment.tzinfo is None:
        raise Invalid(f"{key} needs a time zone (Z for UTC)", field=key)
    return moment.astimezone(UTC)


_DEFAULT_ROLES = {
    "majority": (Role.FOR, Role.AGAINST, Role.ABSTAIN),
    "qualified": (Role.FOR, Role.AGAINST, Role.ABSTAIN),
    "consent": (Role.FOR, Role.OBJECTION, Role.ABSTAIN),
}


def _options(data: dict[str, Any], rule: str, multiple: bool) -> tuple[Option, ...]:
    raw = data.get("options")
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_OPTIONS:
        raise Invalid(f"options is a list of 2 to {MAX_OPTIONS} options", field="options")
    defaults = _DEFAULT_ROLES.get(rule, ())
    options = []
    for n, item in enumerate(raw):
        where = f"options[{n}]"
        name: Any
        role_name: Any
        if isinstance(item, str):
            name, role_name = item, None
        elif isinstance(item, dict):
            name, role_name = item.get("name"), item.get("role")
        else:
            raise Invalid("an option is a name or {name, role}", field=where)
        if not isinstance(name, str) or not name.strip():
            raise Invalid("an option has a name", field=where)
        name = " ".join(name.split())
        if len(name) > MAX_OPTION_NAME:
            raise Invalid(f"an option's name is at most {MAX_OPTION_NAME} characters", field=where)
        if role_name is None:
            if multiple:
                role = Role.PLAIN
            elif n < len(defaults):
                role = defaults[n]
            else:
                raise Invalid(
                    f"a {rule} vote has at most {len(defaults)} options unless each names "
                    "its role (for, against, abstain, objection)",
                    field=where,
                )
        else:
            try:
                role = Role(role_name)
            except ValueError as exc:
                raise Invalid(
                    "role is one of for, against, abstain, objection, plain", field=where
                ) from exc
        options.append(Option(name, role))
    names = [o.name.casefold() for o in options]
    if len(set(names)) != len(names):
        raise Invalid("options have different names", field="options")
    return tuple(options)


def parse_proposal_input(
    data: Any,
    *,
    now: datetime,
    colleges: dict[str, Fraction] | None,
    opened_elsewhere: bool = False,
) -> ProposalInput:
    """Check a new proposal. ``colleges`` are the co-op's colleges and weights (None
    where it has none): a proposal may have them weigh only where they exist.
    ``opened_elsewhere``: a co-op's own vote on a shared proposal keeps its host's
    opening, which may be past by the time the co-op takes part."""
    if not isinstance(data, dict):
        raise Invalid("a proposal is a JSON object", field="")
    title = _text(data, "title", MAX_TITLE, required=True)
    text = _text(data, "text", MAX_TEXT, required=False)
    multiple = _flag(data, "multiple_choice", False)
    rule = data.get("rule", "" if multiple else "majority")
    if multiple:
        if rule not in ("", None):
            raise Invalid("a multiple choice publishes counts: it has no rule", field="rule")
        rule = ""
    elif rule not in RULES:
        raise Invalid(f"rule is one of {', '.join(RULES)}", field="rule")
    threshold = None
    block_at = None
    if rule == "qualified":
        if "threshold" not in data:
            raise Invalid('a qualified majority names its threshold, like "2/3"', field="threshold")
        threshold = parse_fraction(data["threshold"], "threshold")
        if threshold <= Fraction(1, 2):
            raise Invalid("a qualified majority is above one half", field="threshold")
    elif "threshold" in data and data["threshold"] is not None:
        raise Invalid("only a qualified majority has a threshold", field="threshold")
    if rule == "consent":
        block_at = data.get("block_at", 1)
        if isinstance(block_at, bool) or not isinstance(block_at, int) or block_at < 1:
            raise Invalid("block_at is how many objections block: 1 or more", field="block_at")
    options = _options(data, rule, multiple)
    max_choices = 1
    if multiple:
        max_choices = data.get("max_choices", len(options))
        if isinstance(max_choices, bool) or not isinstance(max_choices, int):
            raise Invalid("max_choices is a whole number", field="max_choices")
    quorum = parse_fraction(data.get("quorum", 0), "quorum")
    opens_at = _time(data, "opens_at") or now
    closes_at = _time(data, "closes_at")
    if closes_at is None:
        raise Invalid("closes_at is required: when the vote ends", field="closes_at")
    if opens_at < now - timedelta(minutes=1) and not opened_elsewhere:
        raise Invalid("a vote cannot open in the past", field="opens_at")
    if closes_at - opens_at < MIN_DURATION:
        raise Invalid("a vote stays open at least five minutes", field="closes_at")
    if closes_at - opens_at > MAX_DURATION:
        raise Invalid("a vote stays open at most a year", field="closes_at")
    mode = data.get("counting_mode", "open")
    if mode not in COUNTING_MODES:
        raise Invalid(
            "counting_mode is open (ballots go to the host), subtotal (each co-op sends "
            "its counts) or coop (each co-op casts one weighted ballot)",
            field="counting_mode",
        )
    if mode != "open" and (multiple or not (data.get("electorate") or data.get("network"))):
        raise Invalid(
            f"{mode} mode counts a single-choice proposal shared with other co-ops",
            field="counting_mode",
        )
    tie = data.get("coop_tie", "abstain")
    if mode == "coop" and tie not in COOP_TIES:
        raise Invalid(
            "coop_tie says what a co-op whose members tie casts: abstain or against",
            field="coop_tie",
        )
    language = data.get("language")
    if language is not None and (
        not isinstance(language, str) or not LANGUAGE_TAG.fullmatch(language)
    ):
        raise Invalid('language is a language tag, like "fr" or "pt-BR"', field="language")
    weigh = _flag(data, "colleges_weigh", False)
    if data.get("colleges") is not None:
        colleges = parse_colleges(data["colleges"])
    if weigh and not colleges:
        raise Invalid("this co-op has no colleges to weigh", field="colleges_weigh")
    checked = ProposalInput(
        title=title,
        text=text,
        content=render_markdown(text) if text else "",
        options=options,
        multiple_choice=multiple,
        max_choices=max_choices,
        rule=rule,
        threshold=threshold,
        block_at=block_at,
        quorum=quorum,
        opens_at=opens_at,
        closes_at=closes_at,
        allow_change=_flag(data, "allow_change", True),
        abstentions_count=_flag(data, "abstentions_count", False),
        colleges_weigh=weigh,
        # Subtotals keep ballots at home: the host has none of other co-ops to publish.
        open_ballot=_flag(data, "open_ballot", True) and mode != "subtotal",
        counting_mode=mode,
        coop_tie=tie if mode == "coop" else None,
        language=language,
    )
    # The tally's own checks (roles fit the rule, limits on choices) run here too, so
    # that a proposal that could not be counted is refused before it is published.
    to_tally(checked, colleges if weigh else None)
    return checked


def parse_colleges(raw: Any) -> dict[str, Fraction]:
    """Colleges a proposal names itself (a shared proposal, whose co-ops share them):
    ``{"producers": "50%", "workers": "30%", "consumers": "20%"}``, summing to 100 %."""
    if not isinstance(raw, dict) or not 1 <= len(raw) <= 20:
        raise Invalid("colleges maps 1 to 20 names to their weights", field="colleges")
    weights = {}
    for name, weight in raw.items():
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64:
            raise Invalid("a college's name is 1 to 64 characters", field="colleges")
        share = parse_fraction(weight, f"colleges.{name}")
        if share <= 0:
            raise Invalid("a college weighs more than nothing", field=f"colleges.{name}")
        weights[name.strip()] = share
    if sum(weights.values()) != 1:
        total = sum(weights.values()) * 100
        raise Invalid(f"the weights sum to {float(total):g} %, not 100 %", field="colleges")
    return weights


def effective_colleges(data: Any, own: dict[str, Fraction] | None) -> dict[str, Fraction] | None:
    """The colleges a proposal weighs with: its own where it names them, else the
    co-op's."""
    if isinstance(data, dict) and data.get("colleges") is not None:
        return parse_colleges(data["colleges"])
    return own


def to_tally(checked: ProposalInput, weights: dict[str, Fraction] | None) -> Proposal:
    return Proposal(
        options=checked.options,
        opens_at=checked.opens_at,
        closes_at=checked.closes_at,
        rule=checked.tally_rule(),
        multiple_choice=checked.multiple_choice,
        max_choices=checked.max_choices,
        quorum=checked.quorum,
        abstentions_count_for_quorum=checked.abstentions_count,
        replacements_allowed=checked.allow_change,
        college_weights=weights,
    )
