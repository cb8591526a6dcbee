"""The networks' tables: the only module that queries them.

Hosting side: ``networks`` (one per hosted network, tied to its local actor),
``network_members`` (applications and members) and ``network_offers`` (what each member
had relayed, for the directory). The co-op's side: ``network_memberships`` and each
one's ``network_roster``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from federation.errors import Refused
from node.networks.model import (
    PENDING_MAX,
    Admission,
    Member,
    Membership,
    Network,
    RosterEntry,
    State,
)
from node.storage.tables import (
    actors,
    network_members,
    network_memberships,
    network_offers,
    network_roster,
    networks,
)


class TooManyWaiting(Refused):
    """A network has as many applications waiting as it keeps: a peer's Join is
    refused (and stored nowhere)."""


# --- hosted networks ------------------------------------------------------------------


def create_network(
    conn: Connection, *, actor_pk: int, charter: str, admission: Admission, now: datetime
) -> int:
    return int(
        conn.execute(
            insert(networks)
            .values(actor_id=actor_pk, charter=charter, admission=str(admission), created_at=now)
            .returning(networks.c.id)
        ).scalar_one()
    )


_NETWORK = select(
    networks.c.id,
    networks.c.actor_id,
    actors.c.username,
    actors.c.name,
    actors.c.summary,
    networks.c.charter,
    networks.c.admission,
    networks.c.created_at,
).join(actors, actors.c.id == networks.c.actor_id)


def _network(row: Any) -> Network:
    return Network(
        id=row.id,
        actor_pk=row.actor_id,
        name=row.username,
        title=row.name,
        summary=row.summary,
        charter=row.charter,
        admission=Admission(row.admission),
        created_at=row.created_at,
    )


def hosted(conn: Connection) -> list[Network]:
    return [_network(row) for row in conn.execute(_NETWORK.order_by(actors.c.username))]


def find_network(conn: Connection, name: str) -> Network | None:
    row = conn.execute(_NETWORK.where(actors.c.username == name)).first()
    return None if row is None else _network(row)


def update_network(
    conn: Connection, network_id: int, *, charter: str | None, admission: Admission | None
) -> None:
    values: dict[str, object] = {}
    if charter is not None:
        values["charter"] = charter
    if admission is not None:
        values["admission"] = str(admission)
    if values:
        conn.execute(update(networks).where(networks.c.id == network_id).values(**values))


def is_network(conn: Connection, username: str) -> bool:
    return bool(
        conn.execute(
            select(
                exists().where(actors.c.username == username, actors.c.id == networks.c.actor_id)
            )
        ).scalar()
    )


def member_of(conn: Connection, actor: str) -> list[tuple[Network, int]]:
    """The hosted networks ``actor`` is a member of, each with its member row's id."""
    rows = conn.execute(
        _NETWORK.add_columns(network_members.c.id.label("member_id"))
        .join(network_members, network_members.c.network_id == networks.c.id)
        .where(network_members.c.actor == actor, network_members.c.state == "member")
    )
    return [(_network(row), int(row.member_id)) for row in rows]


def network_actor_pks(conn: Connection) -> set[int]:
    return {int(pk) for pk in conn.execute(select(networks.c.actor_id)).scalars()}


# --- applications and members of a hosted network ---------------------------------------


_OFFERS = (
    select(func.count())
    .select_from(network_offers)
    .where(network_offers.c.member_id == network_members.c.id)
    .scalar_subquery()
)
_MEMBER = select(network_members, _OFFERS.label("offers"))


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        network_id=row.network_id,
        actor=row.actor,
        name=row.name,
        inbox=row.inbox,
        shared_inbox=row.shared_inbox,
        sector=row.sector,
        region=row.region,
        state=State(row.state),
        join_id=row.join_id,
        reason=row.reason,
        applied_at=row.applied_at,
        since=row.since,
        offers=int(row.offers or 0),
        proposal=row.proposal,
    )


def get_member(conn: Connection, network_id: int, actor: str) -> Member | None:
    row = conn.execute(
        _MEMBER.where(network_members.c.network_id == network_id, network_members.c.actor == actor)
    ).first()
    return None if row is None else _member(row)


def apply(
    conn: Connection,
    network_id: int,
    *,
    actor: str,
    host: str,
    name: str,
    inbox: str,
    shared_inbox: str | None,
    sector: str,
    region: str,
    join_id: str,
    now: datetime,
) -> Member:
    """Record an application (a Join). A member applying again stays a member (its Join
    is answered again); any other co-op's application waits, up to PENDING_MAX."""
    found = get_member(conn, network_id, actor)
    profile = {
        "name": name,
        "inbox": inbox,
        "shared_inbox": shared_inbox,
        "sector": sector,
        "region": region,
        "join_id": join_id,
        "updated_at": now,
    }
    if found is not None and found.state is State.MEMBER:
        conn.execute(
            update(network_members).where(network_members.c.id == found.id).values(**profile)
        )
    else:
        if found is None or found.state is not State.PENDING:
            waiting = conn.execute(
                select(func.count()).where(
                    network_members.c.network_id == network_id,
                    network_members.c.state == State.PENDING,
                )
            ).scalar_one()
            if waiting >= PENDING_MAX:
                raise TooManyWaiting(f"{waiting} applications already wait")
        if found is None:
            conn.execute(
                insert(network_members).values(
                    network_id=network_id,
                    actor=actor,
                    host=host,
                    state=State.PENDING,
                    reason="",
                    applied_at=now,
                    **profile,
                )
            )
        else:
            conn.execute(
                update(network_members)
                .where(network_members.c.id == found.id)
                .values(
                    state=State.PENDING,
                    reason="",
                    applied_at=now,
                    since=None,
                    proposal=None,
                    **profile,
                )
            )
    member = get_member(conn, network_id, actor)
    assert member is not None
    return member


def set_proposal(conn: Connection, member_id: int, proposal: str) -> None:
    """The vote on admitting a waiting co-op, once it is open."""
    conn.execute(
        update(network_members).where(network_members.c.id == member_id).values(proposal=proposal)
    )


def set_walk(conn: Connection, member_id: int, url: str | None) -> None:
    """Where the introduction of a member's offers goes on (None: it is over)."""
    conn.execute(
        update(network_members).where(network_members.c.id == member_id).values(offers_walk=url)
    )


def walks(conn: Connection, *, limit: int = 10) -> list[tuple[Network, Member, str]]:
    """Members whose offers the network is introducing: network, member, next page."""
    rows = conn.execute(
        _MEMBER.where(
            network_members.c.state == "member", network_members.c.offers_walk.is_not(None)
        )
        .order_by(network_members.c.id)
        .limit(limit)
    ).all()
    ids = {row.network_id for row in rows}
    hosted = {
        network.id: _network(network)
        for network in (conn.execute(_NETWORK.where(networks.c.id.in_(ids))) if ids else ())
    }
    return [
        (hosted[row.network_id], _member(row), str(row.offers_walk))
        for row in rows
        if row.network_id in hosted
    ]


def voted_on(conn: Connection, *, limit: int = 100) -> list[tuple[str, str, str]]:
    """The applications waiting on a vote: (network name, co-op, proposal)."""
    rows = conn.execute(
        select(actors.c.username, network_members.c.actor, network_members.c.proposal)
        .select_from(
            network_members.join(networks, networks.c.id == network_members.c.network_id).join(
                actors, actors.c.id == networks.c.actor_id
            )
        )
        .where(network_members.c.state == "pending", network_members.c.proposal.is_not(None))
        .order_by(network_members.c.id)
        .limit(limit)
    )
    return [(str(name), str(actor), str(proposal)) for name, actor, proposal in rows]


def set_state(
    conn: Connection,
    member_id: int,
    state: State,
    *,
    now: datetime,
    reason: str = "",
    was: Sequence[State] = (),
) -> bool:
    """Move a member row to ``state`` (from one of ``was``, if given); a member leaving
    its membership loses its relayed offers. False if the row was not in ``was``."""
    query = update(network_members).where(network_members.c.id == member_id)
    if was:
        query = query.where(network_members.c.state.in_([str(s) for s in was]))
    values: dict[str, object] = {"state": str(state), "reason": reason, "updated_at": now}
    if state is State.MEMBER:
        values["since"] = now
    changed = conn.execute(query.values(**values)).rowcount == 1
    if changed and state is not State.MEMBER:
        conn.execute(delete(network_offers).where(network_offers.c.member_id == member_id))
    return changed


def _search(query: Any, *, sector: str | None, region: str | None, text: str | None) -> Any:
    if sector:
        query = query.where(network_members.c.sector == sector)
    if region:
        query = query.where(network_members.c.region == region)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                network_members.c.name.ilike(pattern, escape="\\"),
                network_members.c.actor.ilike(pattern, escape="\\"),
                network_members.c.sector.ilike(pattern, escape="\\"),
                network_members.c.region.ilike(pattern, escape="\\"),
            )
        )
    return query


def members(
    conn: Connection,
    network_id: int,
    *,
    states: Iterable[State] = (State.MEMBER,),
    sector: str | None = None,
    region: str | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Member]:
    query = _MEMBER.where(
        network_members.c.network_id == network_id,
        network_members.c.state.in_([str(s) for s in states]),
    )
    query = _search(query, sector=sector, region=region, text=text)
    query = query.order_by(network_members.c.sector, network_members.c.name, network_members.c.id)
    return [_member(row) for row in conn.execute(query.limit(limit).offset(offset))]


def count_members(
    conn: Connection,
    network_id: int,
    *,
    states: Iterable[State] = (State.MEMBER,),
    sector: str | None = None,
    region: str | None = None,
    text: str | None = None,
) -> int:
    query = (
        select(func.count())
        .select_from(network_members)
        .where(
            network_members.c.network_id == network_id,
            network_members.c.state.in_([str(s) for s in states]),
        )
    )
    query = _search(query, sector=sector, region=region, text=text)
    return int(conn.execute(query).scalar_one())


def facets(conn: Connection, network_id: int) -> dict[str, list[tuple[str, int]]]:
    """The members' sectors and regions, each with how many members it has."""
    found: dict[str, list[tuple[str, int]]] = {}
    for column in (network_members.c.sector, network_members.c.region):
        rows = conn.execute(
            select(column, func.count())
            .where(network_members.c.network_id == network_id, network_members.c.state == "member")
            .group_by(column)
            .order_by(column)
        )
        found[column.name] = [(str(value), int(n)) for value, n in rows if value]
    return found


def member_inboxes(
    conn: Connection, network_id: int, *, leaving_out: str | None = None
) -> list[str]:
    """Where the members receive, one shared inbox per server where they have one."""
    query = select(func.coalesce(network_members.c.shared_inbox, network_members.c.inbox)).where(
        network_members.c.network_id == network_id, network_members.c.state == "member"
    )
    if leaving_out is not None:
        query = query.where(network_members.c.actor != leaving_out)
    return list(dict.fromkeys(str(inbox) for inbox in conn.execute(query).scalars()))


def list_offer(conn: Connection, member_id: int, *, uri: str, name: str, now: datetime) -> None:
    found = conn.execute(
        select(network_offers.c.id).where(
            network_offers.c.member_id == member_id, network_offers.c.uri == uri
        )
    ).scalar()
    if found is None:
        conn.execute(
            insert(network_offers).values(member_id=member_id, uri=uri, name=name, updated_at=now)
        )
    else:
        conn.execute(
            update(network_offers)
            .where(network_offers.c.id == found)
            .values(name=name, updated_at=now)
        )


def unlist_offer(conn: Connection, member_id: int, uri: str) -> bool:
    result = conn.execute(
        delete(network_offers).where(
            network_offers.c.member_id == member_id, network_offers.c.uri == uri
        )
    )
    return result.rowcount > 0


def member_offers(conn: Connection, member_id: int, *, limit: int = 100) -> list[tuple[str, str]]:
    """A member's relayed offers, newest first: (id, name)."""
    rows = conn.execute(
        select(network_offers.c.uri, network_offers.c.name)
        .where(network_offers.c.member_id == member_id)
        .order_by(network_offers.c.updated_at.desc(), network_offers.c.id.desc())
        .limit(limit)
    )
    return [(str(uri), str(name)) for uri, name in rows]


def count_offers(conn: Connection, network_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(network_offers.join(network_members))
            .where(network_members.c.network_id == network_id, network_members.c.state == "member")
        ).scalar_one()
    )


# --- the co-op's memberships ------------------------------------------------------------


def _membership(row: Any) -> Membership:
    return Membership(
        id=row.id,
        network=row.network,
        name=row.name,
        inbox=row.inbox,
        state=State(row.state),
        join_id=row.join_id,
        sector=row.sector,
        region=row.region,
        reason=row.reason,
        applied_at=row.applied_at,
        since=row.since,
    )


def membership(conn: Connection, network: str) -> Membership | None:
    row = conn.execute(
        select(network_memberships).where(network_memberships.c.network == network)
    ).first()
    return None if row is None else _membership(row)


def memberships(conn: Connection) -> list[Membership]:
    rows = conn.execute(select(network_memberships).order_by(network_memberships.c.name))
    return [_membership(row) for row in rows]


def start_membership(
    conn: Connection,
    *,
    network: str,
    host: str,
    name: str,
    inbox: str,
    join_id: str,
    sector: str,
    region: str,
    now: datetime,
) -> Membership | None:
    """Record the co-op's application (pending). Returns the membership already there
    when the co-op is a member or its application waits (nothing is sent again)."""
    found = membership(conn, network)
    if found is not None and found.state in (State.MEMBER, State.PENDING):
        return found
    values = {
        "host": host,
        "name": name,
        "inbox": inbox,
        "state": str(State.PENDING),
        "join_id": join_id,
        "sector": sector,
        "region": region,
        "reason": "",
        "applied_at": now,
        "since": None,
        "updated_at": now,
    }
    if found is None:
        conn.execute(insert(network_memberships).values(network=network, **values))
    else:
        conn.execute(
            update(network_memberships).where(network_memberships.c.id == found.id).values(**values)
        )
    return None


def settle_membership(
    conn: Connection,
    network: str,
    state: State,
    *,
    now: datetime,
    reason: str = "",
    was: Sequence[State] = (),
) -> Membership | None:
    """Move the co-op's membership of ``network`` to ``state`` (from one of ``was``,
    if given); a membership that ends forgets the network's roster. Returns the
    membership as it is now, or None if nothing changed."""
    query = update(network_memberships).where(network_memberships.c.network == network)
    if was:
        query = query.where(network_memberships.c.state.in_([str(s) for s in was]))
    values: dict[str, object] = {"state": str(state), "reason": reason, "updated_at": now}
    if state is State.MEMBER:
        values["since"] = now
    if conn.execute(query.values(**values)).rowcount != 1:
        return None
    found = membership(conn, network)
    assert found is not None
    if state is not State.MEMBER:
        conn.execute(delete(network_roster).where(network_roster.c.membership_id == found.id))
    return found


def add_to_roster(conn: Connection, membership_id: int, entries: Iterable[RosterEntry]) -> int:
    """Add or refresh members of a network's roster; returns how many are new."""
    added = 0
    for entry in entries:
        values = {
            "name": entry.name,
            "sector": entry.sector,
            "region": entry.region,
            "since": entry.since,
        }
        changed = conn.execute(
            update(network_roster)
            .where(
                network_roster.c.membership_id == membership_id,
                network_roster.c.actor == entry.actor,
            )
            .values(**values)
        ).rowcount
        if not changed:
            conn.execute(
                insert(network_roster).values(
                    membership_id=membership_id, actor=entry.actor, **values
                )
            )
            added += 1
    return added


def remove_from_roster(conn: Connection, membership_id: int, actor: str) -> bool:
    result = conn.execute(
        delete(network_roster).where(
            network_roster.c.membership_id == membership_id, network_roster.c.actor == actor
        )
    )
    return result.rowcount > 0


def roster(conn: Connection, membership_id: int) -> list[RosterEntry]:
    rows = conn.execute(
        select(network_roster)
        .where(network_roster.c.membership_id == membership_id)
        .order_by(network_roster.c.sector, network_roster.c.name, network_roster.c.actor)
    )
    return [
        RosterEntry(actor=r.actor, name=r.name, sector=r.sector, region=r.region, since=r.since)
        for r in rows
    ]


_LIVE_ROSTER = network_roster.join(
    network_memberships,
    and_(
        network_memberships.c.id == network_roster.c.membership_id,
        network_memberships.c.state == "member",
    ),
)


def relays(conn: Connection, actor: str, *, network: str | None = None) -> bool:
    """Whether a network the co-op belongs to (``network``, or any) lists ``actor``:
    then what the network relays of ``actor`` belongs in the catalogue."""
    query = (
        select(network_roster.c.id).select_from(_LIVE_ROSTER).where(network_roster.c.actor == actor)
    )
    if network is not None:
        query = query.where(network_memberships.c.network == network)
    return conn.execute(query.limit(1)).first() is not None


def relayed_pairs(conn: Connection, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of the (network, actor) pairs, those where the co-op belongs to the network and
    the network lists the actor: :func:`relays` for a round's worth, in one query."""
    if not pairs:
        return set()
    query = (
        select(network_memberships.c.network, network_roster.c.actor)
        .select_from(_LIVE_ROSTER)
        .where(network_memberships.c.network.in_({network for network, _ in pairs}))
        .where(network_roster.c.actor.in_({actor for _, actor in pairs}))
    )
    found = {(str(network), str(actor)) for network, actor in conn.execute(query)}
    return found & pairs


def relayed_actors(conn: Connection, membership_id: int) -> list[str]:
    return [
        str(actor)
        for actor in conn.execute(
            select(network_roster.c.actor).where(network_roster.c.membership_id == membership_id)
        ).scalars()
    ]


def network_inboxes(conn: Connection) -> list[str]:
    """The inboxes of the networks the co-op belongs to: what it publishes goes there
    too, for them to relay."""
    return [
        str(inbox)
        for inbox in conn.execute(
            select(network_memberships.c.inbox).where(network_memberships.c.state == "member")
        ).scalars()
    ]


def network_ids(conn: Connection) -> list[str]:
    return [
        str(network)
        for network in conn.execute(
            select(network_memberships.c.network).where(network_memberships.c.state == "member")
        ).scalars()
    ]
