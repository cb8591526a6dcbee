"""Step one of reading a peer's offer: the variants seen in the wild, in one spelling.

Mitra maps ``hasUnit`` and ``hasNumericalValue`` to ``vf:`` where FEP-0837 uses ``om2:``;
other documents keep the prefixes in their keys (``"om2:hasNumericalValue"``) or write
full IRIs; amounts come as strings (the FEP) or JSON numbers; ids and URLs come as
strings, objects or lists. :func:`normalise` rewrites all of these to the one shape that
``schemas/offer.schema.json`` describes, keeping only the terms :mod:`node.offers.remote`
reads. It never fails: what it cannot make sense of is left for the schema to refuse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from federation.jsonld import COOP_NAMESPACE
from node.offers.vocabulary import AS_NAMESPACE, OM2_NAMESPACE, VF_NAMESPACE

_PREFIXES = (
    "vf:",
    "om2:",
    "as:",
    "coop:",
    VF_NAMESPACE,
    OM2_NAMESPACE,
    AS_NAMESPACE,
    COOP_NAMESPACE,
)
_PROPOSAL_TERMS = frozenset(
    {
        "id",
        "type",
        "purpose",
        "attributedTo",
        "name",
        "nameMap",
        "content",
        "contentMap",
        "mediaType",
        "url",
        "published",
        "updated",
        "endTime",
        "unitBased",
        "publishes",
        "reciprocal",
        "location",
        "attachment",
        "tag",
        "claims",
        "deliveryOptions",
        "paymentOptions",
    }
)
_INTENT_TERMS = frozenset(
    {
        "id",
        "type",
        "action",
        "resourceConformsTo",
        "resourceQuantity",
        "availableQuantity",
        "minimumQuantity",
    }
)
_QUANTITY_TERMS = frozenset({"hasUnit", "hasNumericalValue"})
_PLACE_TERMS = frozenset({"type", "name", "latitude", "longitude"})
_ATTACHMENT_TERMS = frozenset({"type", "mediaType", "url", "name"})
_TAG_TERMS = frozenset({"type", "name", "href"})


def normalise(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with the usual variants rewritten to one spelling, keeping only the
    terms we read. Never fails: what it cannot make sense of is left for the schema to
    refuse. Each list is walked once, so the cost is bounded by the body's size."""
    terms = _terms(document, _PROPOSAL_TERMS)
    out: dict[str, Any] = {}
    for key, value in terms.items():
        if key == "type":
            out[key] = _types(value)
        elif key in ("attributedTo", "id"):
            out[key] = _reference(value)
        elif key == "url":
            out[key] = _href(value)
        elif key in ("publishes", "reciprocal"):
            out[key] = _intent(_single(value))
        elif key == "location":
            out[key] = _place(_single(value))
        elif key == "attachment":
            out[key] = [_pick(item, _ATTACHMENT_TERMS) for item in _dicts(value)]
        elif key == "tag":
            out[key] = [_pick(item, _TAG_TERMS) for item in _dicts(value)]
        elif key in ("claims", "deliveryOptions", "paymentOptions"):
            out[key] = [_option(item) for item in _as_list(value)]
        elif key == "unitBased" and isinstance(value, str):
            out[key] = {"true": True, "false": False}.get(value.strip().lower(), value)
        else:
            out[key] = value
    return out


def _term(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _terms(mapping: Mapping[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """The ``wanted`` terms of ``mapping`` under their plain names; a plain key wins
    over a prefixed spelling of the same term."""
    found: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            continue
        term = _term(key)
        if term in wanted and (term == key or term not in found):
            found[term] = value
    return found


def _intent(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in _terms(value, _INTENT_TERMS).items():
        if key == "type":
            out[key] = _types(item)
        elif key == "action":
            out[key] = _term(item) if isinstance(item, str) else item
        elif key in ("resourceConformsTo", "id"):
            out[key] = _reference(item)
        else:
            out[key] = _quantity(_single(item))
    return out


def _quantity(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in _terms(value, _QUANTITY_TERMS).items():
        if key == "hasUnit":
            out[key] = _term(_reference(item)) if isinstance(_reference(item), str) else item
        else:
            out[key] = _amount_text(item)
    return out


def _amount_text(value: Any) -> Any:
    """A JSON number as the plain decimal string FEP-0837 would have sent."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        number = Decimal(repr(value))
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    text = format(number, "f")
    return text[:-2] if text.endswith(".0") else text


def _place(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = _terms(value, _PLACE_TERMS)
    for key in ("latitude", "longitude"):
        out[key] = _coordinate(out[key]) if key in out else None
        if out[key] is None:
            del out[key]
    if isinstance(out.get("type"), list):
        out["type"] = next((t for t in out["type"] if isinstance(t, str)), "")
    return out


def _coordinate(value: Any) -> Any:
    """A coordinate as a finite float; anything else as text, for the schema to refuse.
    (Python's JSON reader turns ``NaN`` into a float that no range check catches.)"""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _pick(item: Mapping[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    out = _terms(item, wanted)
    if "url" in out:
        out["url"] = _href(out["url"])
    if "href" in out:
        out["href"] = _reference(out["href"])
    if isinstance(out.get("type"), list):
        out["type"] = next((t for t in out["type"] if isinstance(t, str)), "")
    return out


def _option(item: Any) -> Any:
    if isinstance(item, dict):
        return _terms(item, frozenset({"name"}))
    return item.strip() if isinstance(item, str) else item


def _types(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    return [_term(item) if isinstance(item, str) else item for item in items]


def _reference(value: Any) -> Any:
    """An id given as a string, or as an object with an ``id`` or ``href``."""
    if isinstance(value, dict):
        return value.get("id", value.get("href", value))
    if isinstance(value, list) and value:
        return _reference(value[0])
    return value


def _href(value: Any) -> Any:
    """A URL given as a string, a ``Link`` or a list of them; for a list, the HTML one
    when there is one."""
    if isinstance(value, list):
        links = [item for item in value if isinstance(item, dict | str)]
        pages = [
            item
            for item in links
            if isinstance(item, dict) and str(item.get("mediaType", "")).startswith("text/html")
        ]
        chosen = (pages or links or [None])[0]
        return _href(chosen) if chosen is not None else value
    if isinstance(value, dict):
        return value.get("href", value.get("id", value))
    return value


def _single(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return (item for item in _as_list(value) if isinstance(item, dict))
