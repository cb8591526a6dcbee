"""The host of a shared proposal reading the other co-ops: the co-ops an author names
(resolved and checked to be co-ops), and at the opening each one's roster.

A roster is a co-op's ``members`` collection, fetched with a signed request so that a
co-op that shows it only to partners can show it to the host. Eligibility is fixed
then: the voting members it lists as members since the opening or before, with the
college their co-op gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.errors import MalformedInput
from federation.inbox import actor_id
from federation.origins import same_origin
from node.errors import Forbidden, Invalid
from node.governance.store.electorate import Elector
from node.members.store import VOTING_ROLES
from node.runtime import Node
from node.services import remote_actors

MAX_COOPS = 50
# The co-ops of a network-wide proposal: the network's members, read from it.
MAX_NETWORK_COOPS = 500
MAX_ROSTER_PAGES = 1000
MAX_ROSTER = 200_000
COOP_TYPES = ("Group", "Organization")


@dataclass(frozen=True, slots=True)
class Participant:
    """A co-op taking part in a shared proposal, and where its activities go."""

    coop: str
    inbox: str


async def resolve_electorate(
    node: Node, targets: Any, *, limit: int = MAX_COOPS, field: str = "electorate"
) -> list[Participant]:
    """The co-ops named by handle or actor URL, each resolved (WebFinger and the actor
    document agreeing) and checked to be a co-op; this co-op itself is left out, since
    the host always takes part."""
    if targets is None:
        return []
    if not isinstance(targets, list) or len(targets) > limit:
        raise Invalid(f"{field} is a list of up to {limit} co-ops", field=field)
    own = node.urls.actor(node.settings.handle)
    found: dict[str, Participant] = {}
    for n, target in enumerate(targets):
        where = f"{field}[{n}]"
        if not isinstance(target, str) or not target.strip():
            raise Invalid("a co-op is named by its handle or actor URL", field=where)
        try:
            document = await node.peers.resolve(target.strip())
        except Exception as exc:
            raise Invalid(f"{target}: {exc}", field=where) from exc
        coop = str(document["id"])
        if coop == own:
            continue
        if document.get("type") not in COOP_TYPES:
            raise Invalid(f"{target} is a {document.get('type')}, not a co-op", field=where)
        inbox = remote_actors.delivery_inbox(document)
        if inbox is None:
            raise Invalid(f"{target} has no inbox", field=where)
        found[coop] = Participant(coop, inbox)
    return list(found.values())


async def read_roster(node: Node, coop: str, opens_at: datetime) -> list[Elector]:
    """The voting members the co-op's roster lists as members at ``opens_at``."""
    document = await node.peers.actor(coop)
    collection = document.get("members")
    if not isinstance(collection, str) or not same_origin(collection, coop):
        raise MalformedInput(f"{coop} publishes no roster on its own host")
    first = (await node.peers.fetch(collection)).get("first")
    if first is None:
        raise Forbidden(
            f"{coop} does not show its roster to this co-op "
            f"(its admin may name {node.settings.domain} in roster_partners)"
        )
    page_url = actor_id(first)
    electors: dict[str, Elector] = {}
    pages = 0
    while page_url is not None:
        pages += 1
        if pages > MAX_ROSTER_PAGES or not same_origin(page_url, coop):
            raise MalformedInput(f"{coop}'s roster pages go on too long, or elsewhere")
        page = await node.peers.fetch(page_url)
        items = page.get("orderedItems", page.get("items", []))
        if not isinstance(items, list):
            raise MalformedInput(f"{coop}'s roster page {page_url} has no list of members")
        for item in items:
            elector = _elector(item, coop, opens_at)
            if elector is not None:
                electors.setdefault(elector.voter, elector)
        if len(electors) > MAX_ROSTER:
            raise MalformedInput(f"{coop}'s roster lists more than {MAX_ROSTER} members")
        following = page.get("next")
        page_url = actor_id(following) if following is not None else None
    return list(electors.values())


def _elector(item: Any, coop: str, opens_at: datetime) -> Elector | None:
    """A roster entry, if it names a voting member since the opening or before."""
    if not isinstance(item, dict):
        return None
    voter = item.get("actor")
    since = item.get("memberSince")
    role = item.get("role", "member")
    college = item.get("college")
    if not isinstance(voter, str) or not voter.startswith(("https://", "http://")):
        return None
    if role not in VOTING_ROLES or not isinstance(since, str):
        return None
    try:
        joined = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return None
    if joined.tzinfo is None or joined > opens_at:
        return None
    if college is not None and not isinstance(college, str):
        return None
    return Elector(voter, college, coop)
