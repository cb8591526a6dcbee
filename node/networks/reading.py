"""What pages, the API and the command line read about networks: those hosted here
(their directory) and those the co-op belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.errors import NotFound
from node.networks import store
from node.networks.model import Member, Membership, Network, RosterEntry, State
from node.runtime import Node
from node.services import identity
from node.services.identity import ActorWithKeys

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

DIRECTORY_PAGE = 50


@dataclass(frozen=True, slots=True)
class Directory:
    """One page of a network's directory, with what it can be narrowed by."""

    network: Network
    members: list[Member]
    total: int
    members_in_all: int
    offers_in_all: int
    sectors: list[tuple[str, int]]
    regions: list[tuple[str, int]]
    waiting: int


async def hosted(node: Node) -> list[Network]:
    return await node.db.read(store.hosted)


async def find_network(node: Node, name: str) -> Network | None:
    return await node.db.read(lambda conn: store.find_network(conn, name))


async def network_actor(node: Node, name: str) -> tuple[ActorWithKeys, Network] | None:
    """The network's actor and keys, if ``name`` is a network hosted here."""

    def read(conn: Connection) -> tuple[ActorWithKeys, Network] | None:
        network = store.find_network(conn, name)
        if network is None:
            return None
        return identity.get_actor(conn, name), network

    return await node.db.read(read)


def _network(conn: Connection, name: str) -> Network:
    found = store.find_network(conn, name)
    if found is None:
        raise NotFound(f"no network {name!r} is hosted here")
    return found


async def directory(
    node: Node,
    name: str,
    *,
    sector: str | None = None,
    region: str | None = None,
    text: str | None = None,
    page: int = 1,
    size: int = DIRECTORY_PAGE,
) -> Directory:
    """The members of a hosted network, by sector and name, narrowed as asked."""

    def read(conn: Connection) -> Directory:
        network = _network(conn, name)
        facets = store.facets(conn, network.id)
        return Directory(
            network=network,
            members=store.members(
                conn,
                network.id,
                sector=sector,
                region=region,
                text=text,
                limit=size,
                offset=(page - 1) * size,
            ),
            total=store.count_members(conn, network.id, sector=sector, region=region, text=text),
            members_in_all=store.count_members(conn, network.id),
            offers_in_all=store.count_offers(conn, network.id),
            sectors=facets["sector"],
            regions=facets["region"],
            waiting=store.count_members(conn, network.id, states=(State.PENDING,)),
        )

    return await node.db.read(read)


async def members_page(
    node: Node, name: str, *, offset: int, limit: int
) -> tuple[Network, list[Member]]:
    def read(conn: Connection) -> tuple[Network, list[Member]]:
        network = _network(conn, name)
        return network, store.members(conn, network.id, limit=limit, offset=offset)

    return await node.db.read(read)


async def count_members(node: Node, name: str) -> tuple[Network, int]:
    def read(conn: Connection) -> tuple[Network, int]:
        network = _network(conn, name)
        return network, store.count_members(conn, network.id)

    return await node.db.read(read)


async def applications(
    node: Node, name: str, *, states: tuple[State, ...] = (State.PENDING,)
) -> list[Member]:
    """A hosted network's co-ops in ``states`` (the waiting applications by default)."""

    def read(conn: Connection) -> list[Member]:
        network = _network(conn, name)
        return store.members(conn, network.id, states=states, limit=1_000)

    return await node.db.read(read)


async def member_profile(node: Node, name: str, actor: str) -> tuple[Member, list[tuple[str, str]]]:
    """A member of a hosted network and the offers the network relayed for it."""

    def read(conn: Connection) -> tuple[Member, list[tuple[str, str]]]:
        network = _network(conn, name)
        member = store.get_member(conn, network.id, actor)
        if member is None or member.state is not State.MEMBER:
            raise NotFound(f"{actor} is not a member of {name}")
        return member, store.member_offers(conn, member.id)

    return await node.db.read(read)


async def memberships(node: Node) -> list[Membership]:
    """The networks the co-op applied to, belongs to, or did."""
    return await node.db.read(store.memberships)


async def membership(node: Node, network: str) -> tuple[Membership, list[RosterEntry]]:
    """One of the co-op's networks and its roster as the co-op knows it."""

    def read(conn: Connection) -> tuple[Membership, list[RosterEntry]]:
        found = store.membership(conn, network)
        if found is None:
            raise NotFound(f"this co-op never applied to {network}")
        return found, store.roster(conn, found.id)

    return await node.db.read(read)


async def hosted_names(node: Node) -> list[str]:
    """The names of the networks hosted here (NodeInfo's metadata names them)."""
    return [network.name for network in await node.db.read(store.hosted)]
