"""The network's documents: its actor, its members collection, and its directory as
JSON for programs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation.jsonld import AS_CONTEXT_URL
from node import documents
from node.networks import wire
from node.networks.model import Member, Membership, Network, RosterEntry
from node.services.identity import ActorWithKeys
from node.urls import Urls


def network_actor(urls: Urls, found: ActorWithKeys, network: Network) -> dict[str, Any]:
    """A ``Group`` like the co-op's, with the network's charter, its rule for admitting
    members, and its members collection (no offers or proposals of its own)."""
    document = documents.actor_document(urls, found)
    document.pop("offers", None)
    document.pop("proposals", None)
    terms = dict(document["@context"][-1])
    terms.update({k: v for k, v in wire.NETWORK_TERMS.items() if k not in terms})
    document["@context"] = [*document["@context"][:-1], terms]
    document["members"] = urls.members(network.name)
    document["charter"] = network.charter
    document["admission"] = str(network.admission)
    # Applications are decided by the admin or the members: Mastodon shows this flag.
    document["manuallyApprovesFollowers"] = True
    return document


def members_collection(urls: Urls, network: Network, total: int) -> dict[str, Any]:
    collection = documents.ordered_collection(urls.members(network.name), total, paged=True)
    collection["@context"] = [AS_CONTEXT_URL, wire.NETWORK_TERMS]
    return collection


def members_page(
    urls: Urls, network: Network, page: int, members: list[Member], *, has_next: bool
) -> dict[str, Any]:
    document = documents.collection_page(
        urls.members(network.name),
        page,
        [wire.member_item(m) for m in members],
        has_next=has_next,
    )
    document["@context"] = [AS_CONTEXT_URL, wire.NETWORK_TERMS]
    return document


def directory_entry(member: Member, offers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A member as the directory's JSON shows it."""
    entry: dict[str, Any] = {
        "actor": member.actor,
        "name": member.name,
        "sector": member.sector,
        "region": member.region,
        "memberSince": None if member.since is None else wire.iso(member.since),
        "offers": member.offers,
    }
    if offers is not None:
        entry["listings"] = [{"id": uri, "name": name} for uri, name in offers]
    return entry


# --- as the API and `coopnode networks --json` show them --------------------------------------


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else wire.iso(moment)


def network_view(urls: Urls, network: Network) -> dict[str, Any]:
    return {
        "name": network.name,
        "id": urls.actor(network.name),
        "members": urls.members(network.name),
        "title": network.title,
        "summary": network.summary,
        "charter": network.charter,
        "admission": str(network.admission),
        "createdAt": _when(network.created_at),
    }


def member_view(member: Member) -> dict[str, Any]:
    return {
        "actor": member.actor,
        "name": member.name,
        "sector": member.sector,
        "region": member.region,
        "state": str(member.state),
        "reason": member.reason,
        "appliedAt": _when(member.applied_at),
        "memberSince": _when(member.since),
        "offers": member.offers,
    }


def membership_view(membership: Membership) -> dict[str, Any]:
    return {
        "network": membership.network,
        "name": membership.name,
        "state": str(membership.state),
        "sector": membership.sector,
        "region": membership.region,
        "reason": membership.reason,
        "appliedAt": _when(membership.applied_at),
        "memberSince": _when(membership.since),
    }


def roster_view(entry: RosterEntry) -> dict[str, Any]:
    return {
        "actor": entry.actor,
        "name": entry.name,
        "sector": entry.sector,
        "region": entry.region,
        "memberSince": _when(entry.since),
    }
