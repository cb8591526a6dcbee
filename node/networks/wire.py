"""What networks put on the wire, and how what peers send about networks is read.

- ``Join`` (co-op → network): the co-op's ``sector`` and ``region`` ride along.
- ``Accept`` / ``Reject`` (network → co-op): embed the ``Join`` they answer (its id,
  actor and object), as Follows are answered; a refusal says why in ``content``.
- ``Leave`` (co-op → network).
- ``Add`` / ``Remove`` (network → members): a co-op entered or left the ``members``
  collection (``target``); a removal says why in ``content``, and reaches the removed
  co-op too.
- ``Announce`` (network → members): the member's own ``Create``, ``Update`` or
  ``Delete``, embedded whole, as FEP-1b12 groups relay; or, for a newcomer's offers
  published before it joined, the offer itself (as a boost is). The announced object is trusted
  only as its origin published it: by its author's FEP-8b32 proof, or fetched again.

The network's ``members`` collection lists each co-op as ``{actor, name, sector,
region, memberSince}``: the same ``actor`` and ``memberSince`` a co-op's roster gives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation.errors import MalformedInput
from federation.inbox import actor_id
from federation.jsonld import AS_CONTEXT_URL, COOP_NAMESPACE
from node.activities import new_id
from node.documents import PUBLIC
from node.errors import Invalid
from node.networks.model import (
    DISPLAY_NAME_MAX,
    REASON_MAX,
    REGION_MAX,
    SECTOR_MAX,
    Member,
    RosterEntry,
    clean_text,
)
from node.urls import Urls

NETWORK_TERMS: dict[str, Any] = {
    "coop": COOP_NAMESPACE,
    "sector": "coop:sector",
    "region": "coop:region",
    "charter": "coop:charter",
    "admission": "coop:admission",
    "members": {"@id": "coop:members", "@type": "@id"},
    "memberSince": {
        "@id": "coop:memberSince",
        "@type": "http://www.w3.org/2001/XMLSchema#dateTime",
    },
}
CONTEXT: list[Any] = [AS_CONTEXT_URL, NETWORK_TERMS]
RELAYED = ("Create", "Update", "Delete")
# What a network announces of itself, unwrapped: a newcomer's existing offers.
INTRODUCED = ("Proposal",)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the co-op's side -------------------------------------------------------------------


def join(urls: Urls, coop: str, network: str, *, sector: str, region: str) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "@context": CONTEXT,
        "id": new_id(urls),
        "type": "Join",
        "actor": coop,
        "object": network,
        "to": [network],
    }
    if sector:
        activity["sector"] = sector
    if region:
        activity["region"] = region
    return activity


def leave(urls: Urls, coop: str, network: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT_URL,
        "id": new_id(urls),
        "type": "Leave",
        "actor": coop,
        "object": network,
        "to": [network],
    }


# --- the network's side -------------------------------------------------------------------


def answer_join(
    urls: Urls, network: str, kind: str, *, join_id: str, applicant: str, reason: str = ""
) -> dict[str, Any]:
    if kind not in ("Accept", "Reject"):
        raise ValueError(f"a Join is answered by Accept or Reject, not {kind}")
    activity: dict[str, Any] = {
        "@context": AS_CONTEXT_URL,
        "id": new_id(urls),
        "type": kind,
        "actor": network,
        "object": {"id": join_id, "type": "Join", "actor": applicant, "object": network},
        "to": [applicant],
    }
    if reason:
        activity["content"] = reason
    return activity


def member_item(member: Member) -> dict[str, Any]:
    """A member as the ``members`` collection lists it."""
    item: dict[str, Any] = {"actor": member.actor, "name": member.name}
    if member.sector:
        item["sector"] = member.sector
    if member.region:
        item["region"] = member.region
    if member.since is not None:
        item["memberSince"] = iso(member.since)
    return item


def roster_change(
    urls: Urls,
    network: str,
    kind: str,
    member: Member,
    *,
    collection: str,
    reason: str = "",
) -> dict[str, Any]:
    """``Add`` or ``Remove`` of a co-op in the network's members collection."""
    if kind not in ("Add", "Remove"):
        raise ValueError(f"a roster changes by Add or Remove, not {kind}")
    activity: dict[str, Any] = {
        "@context": CONTEXT,
        "id": new_id(urls),
        "type": kind,
        "actor": network,
        "object": member_item(member) | {"id": member.actor},
        "target": collection,
        "to": [collection],
    }
    if reason:
        activity["content"] = reason
    return activity


def announce(
    urls: Urls, network: str, activity: dict[str, Any], *, collection: str
) -> dict[str, Any]:
    """The network relays a member's activity (or introduces a signed offer), embedded
    whole: a signed object keeps the context its proof was made with."""
    embedded = (
        activity if "proof" in activity else {k: v for k, v in activity.items() if k != "@context"}
    )
    inner = embedded.get("object")
    if "@context" in embedded or (isinstance(inner, dict) and "@context" in inner):
        # What is signed brings its own context (an offer's, which its proof covers);
        # around it the Announce speaks ActivityStreams alone. Every member reads this
        # Announce: a second copy of an offer's inline context would be a third of it.
        context: object = AS_CONTEXT_URL
    else:
        context = activity.get("@context", AS_CONTEXT_URL)
    return {
        "@context": context,
        "id": new_id(urls),
        "type": "Announce",
        "actor": network,
        "object": embedded,
        "to": [PUBLIC],
        "cc": [collection],
    }


# --- reading what peers send ----------------------------------------------------------------


def _peer_text(value: object, *, limit: int, what: str) -> str:
    try:
        return clean_text(value, limit=limit, what=what)
    except Invalid as exc:
        raise MalformedInput(exc.reason) from None


def read_join(activity: dict[str, Any]) -> tuple[str, str]:
    """The sector and region an application gives."""
    sector = _peer_text(activity.get("sector"), limit=SECTOR_MAX, what="sector")
    region = _peer_text(activity.get("region"), limit=REGION_MAX, what="region")
    return sector, region


def read_reason(activity: dict[str, Any]) -> str:
    content = activity.get("content")
    if content is None:
        return ""
    text = content if isinstance(content, str) else ""
    text = text[: REASON_MAX * 4]
    try:
        return clean_text(text, limit=REASON_MAX * 4, what="reason")[:REASON_MAX]
    except Invalid:
        return ""


def read_member(value: object) -> RosterEntry | None:
    """A member entry of a network's collection, or of its ``Add``; None if unusable."""
    if not isinstance(value, dict):
        return None
    actor = value.get("actor", value.get("id"))
    if not isinstance(actor, str) or not actor.startswith(("https://", "http://")):
        return None
    if len(actor) > 2048:
        return None
    try:
        name = clean_text(value.get("name"), limit=DISPLAY_NAME_MAX, what="name")
        sector = clean_text(value.get("sector"), limit=SECTOR_MAX, what="sector")
        region = clean_text(value.get("region"), limit=REGION_MAX, what="region")
    except Invalid:
        return None
    since = None
    raw = value.get("memberSince")
    if isinstance(raw, str) and len(raw) <= 40:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            since = None
        if since is not None and since.tzinfo is None:
            since = None
    return RosterEntry(actor=actor, name=name, sector=sector, region=region, since=since)


def answered_join(activity: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """An Accept or Reject's Join: its id, actor and object, as far as given."""
    obj = activity.get("object")
    if isinstance(obj, dict):
        return actor_id(obj), actor_id(obj.get("actor")), actor_id(obj.get("object"))
    return actor_id(obj), None, None


def read_announced(activity: dict[str, Any]) -> dict[str, Any]:
    """The activity an ``Announce`` relays: a Create, Update or Delete, embedded, with
    an actor and an id; or an offer the network introduces, embedded."""
    inner = activity.get("object")
    if isinstance(inner, dict) and inner.get("type") in INTRODUCED:
        return inner
    if not isinstance(inner, dict) or inner.get("type") not in RELAYED:
        raise MalformedInput("a network relays a Create, Update or Delete, embedded")
    if not isinstance(inner.get("actor"), str) or not isinstance(inner.get("id"), str):
        raise MalformedInput("the relayed activity has no actor or id")
    if inner.get("object") is None:
        raise MalformedInput("the relayed activity has no object")
    return inner


def is_public(activity: dict[str, Any]) -> bool:
    audience: list[Any] = []
    for field in ("to", "cc"):
        value = activity.get(field)
        audience.extend(value if isinstance(value, list) else [value])
    return any(a in (PUBLIC, "as:Public", "Public") for a in audience)
