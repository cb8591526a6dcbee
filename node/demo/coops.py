"""The demo's co-ops and proposals, read from the data file ``coops.toml`` beside this
module and checked as they are read.

The file says who the co-ops are, their members (with the passwords the demo prints),
their colleges, their offers, whom they follow, the two proposals, the orders the
co-ops place with each other, and the network they form with a fourth co-op, which
only applies to it; this module turns it into typed values, and refuses a file that misses a
field, has one of the wrong type or a name it does not know, so that a mistake in the
data shows as a message naming it rather than as a node refusing a request half-way
through the demo.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

from node.demo.errors import DemoError
from node.networks.model import NAME as NETWORK_NAME
from node.networks.model import Admission
from node.orders.model import State, may_become

DATA_FILE = "coops.toml"
ROLES = ("admin", "member", "observer")
FOLLOW_POLICIES = ("auto", "approve", "listed")
# What an offer is sold with unless the data file says otherwise.
DEFAULT_DELIVERY = ("pickup",)
DEFAULT_PAYMENT = ("card", "bank_transfer")
# The seller's answers to an order, and the state each leaves it in.
ANSWERS = {
    "accept": State.ACCEPTED,
    "reject": State.REJECTED,
    "fulfil": State.FULFILLED,
    "cancel": State.CANCELLED,
}


@dataclass(frozen=True)
class DemoMember:
    username: str
    name: str
    role: str
    password: str
    college: str | None = None


@dataclass(frozen=True)
class Place:
    """Where a co-op is: the location given to each of its offers."""

    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class DemoCoop:
    handle: str
    name: str
    summary: str
    place: Place
    members: tuple[DemoMember, ...]
    # Each offer in the JSON API's shape (see node.offers.validation), location aside.
    offers: tuple[dict[str, Any], ...]
    # (name, weight in percent), in the order the co-op lists them.
    colleges: tuple[tuple[str, str], ...] = ()
    # "approve": the admin approves each new follower (the demo approves its peers).
    follow_policy: str = "auto"
    # The handles of the co-ops it follows; None: every other co-op of the three.
    follows: tuple[str, ...] | None = None

    @property
    def admin(self) -> DemoMember:
        """The first admin: the author of the co-op's proposals."""
        return next(m for m in self.members if m.role == "admin")


@dataclass(frozen=True)
class DemoProposal:
    """A proposal the demo opens at ``host``, shared with the co-ops ``shared_with``
    (none: the host's members only)."""

    host: str
    shared_with: tuple[str, ...]
    # The proposal in the JSON API's shape, without its closing time and electorate.
    data: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.data["title"])


@dataclass(frozen=True)
class DemoOrder:
    """An order the demo places once the co-ops follow each other: ``member`` of the
    co-op ``buyer`` orders from the offer of ``seller`` titled ``offer``; the seller's
    admin gives ``answers`` in turn, the first with ``reply`` (none: the order waits
    for the admin)."""

    seller: str
    offer: str  # the offer's title, in French or English
    buyer: str
    member: str
    # The order in the JSON API's shape, without the offer.
    data: dict[str, Any]
    answers: tuple[str, ...] = ()
    reply: str = ""

    @property
    def state(self) -> State:
        """The state the order ends in, once the seller's answers have reached the
        buyer."""
        return ANSWERS[self.answers[-1]] if self.answers else State.PENDING


@dataclass(frozen=True)
class NetworkSeat:
    """A co-op's application to the demo's network, with what it says of itself."""

    coop: str  # its handle
    sector: str
    region: str


@dataclass(frozen=True)
class DemoNetwork:
    """The network the demo's co-ops form, hosted by the co-op ``host``: those in
    ``members`` are admitted by its admin, those in ``waiting`` are left for her."""

    name: str
    title: str
    summary: str
    charter: str
    admission: str
    host: str
    members: tuple[NetworkSeat, ...]
    waiting: tuple[NetworkSeat, ...] = ()


@dataclass(frozen=True)
class Seed:
    """Everything the demo seeds its nodes with."""

    coops: tuple[DemoCoop, ...]
    internal: DemoProposal
    shared: DemoProposal
    orders: tuple[DemoOrder, ...] = ()
    # Co-ops that take no part in the follows, proposals and orders of the others; they
    # only apply to the network.
    newcomers: tuple[DemoCoop, ...] = ()
    network: DemoNetwork | None = None

    @property
    def everyone(self) -> tuple[DemoCoop, ...]:
        """The co-ops, then the newcomers: one node each, in this order."""
        return self.coops + self.newcomers

    def coop(self, handle: str) -> DemoCoop:
        return next(c for c in self.everyone if c.handle == handle)

    def followed_by(self, coop: DemoCoop) -> tuple[str, ...]:
        """The handles of the co-ops ``coop`` follows."""
        if coop.follows is not None:
            return coop.follows
        if coop in self.newcomers:
            return ()
        return tuple(c.handle for c in self.coops if c.handle != coop.handle)


def load_seed() -> Seed:
    """The co-ops of the data file packaged with coopnode."""
    text = resources.files("node.demo").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_seed(text)


def parse_seed(text: str) -> Seed:
    """The co-ops and proposals of a data file's text, or :class:`DemoError` naming what
    is wrong in it."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DemoError(f"{DATA_FILE}: {exc}") from None
    top = _Table(document, DATA_FILE)
    coops = tuple(_coop(t) for t in top.tables("coops"))
    proposals = top.table("proposals")
    seed = Seed(
        coops=coops,
        internal=_proposal(proposals.table("internal")),
        shared=_proposal(proposals.table("shared")),
        orders=tuple(_order(t) for t in top.tables("orders")) if top.has("orders") else (),
        newcomers=tuple(_coop(t) for t in top.tables("newcomers")) if top.has("newcomers") else (),
        network=_network(top.table("network")) if top.has("network") else None,
    )
    proposals.done()
    top.done()
    _check(seed)
    return seed


# --- reading and checking ----------------------------------------------------------------


class _Table:
    """A table of the data file, read key by key; :meth:`done` refuses the keys nobody
    read (a misspelt name)."""

    def __init__(self, values: Any, where: str) -> None:
        if not isinstance(values, dict):
            raise DemoError(f"{where} should be a table")
        self.values: dict[str, Any] = values
        self.where = where
        self.read: set[str] = set()

    def _get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        self.read.add(key)
        if key not in self.values:
            raise DemoError(f"{self.where}: {key} is missing")
        value = self.values[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DemoError(f"{self.where}: {key} should be {what}")
        return value

    def has(self, key: str) -> bool:
        return key in self.values

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self.values:
            self.read.add(key)
            return default
        value: str = self._get(key, str, "a string")
        return value

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float), "a number"))

    def texts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if key not in self.values:
            self.read.add(key)
            return default
        values = self._get(key, list, "a list of strings")
        if not all(isinstance(v, str) for v in values):
            raise DemoError(f"{self.where}: {key} should be a list of strings")
        return tuple(values)

    def table(self, key: str) -> _Table:
        return _Table(self._get(key, dict, "a table"), f"{self.where}: {key}")

    def tables(self, key: str) -> list[_Table]:
        found = self._get(key, list, "a list of tables")
        return [_Table(v, f"{self.where}: {key}[{i}]") for i, v in enumerate(found)]

    def done(self) -> None:
        unknown = sorted(set(self.values) - self.read)
        if unknown:
            raise DemoError(f"{self.where}: unknown {', '.join(unknown)}")


def _coop(table: _Table) -> DemoCoop:
    place = table.table("place")
    colleges = table.table("colleges")
    coop = DemoCoop(
        handle=table.text("handle"),
        name=table.text("name"),
        summary=table.text("summary"),
        place=Place(
            name=place.text("name"),
            latitude=place.number("latitude"),
            longitude=place.number("longitude"),
        ),
        colleges=tuple((name, colleges.text(name)) for name in list(colleges.values)),
        members=tuple(_member(t) for t in table.tables("members")),
        offers=tuple(_offer(t) for t in table.tables("offers")),
        follow_policy=table.text("follow_policy", "auto"),
        follows=table.texts("follows") if table.has("follows") else None,
    )
    for part in (place, colleges, table):
        part.done()
    if coop.follow_policy not in FOLLOW_POLICIES:
        raise DemoError(f"{table.where}: follow_policy should be one of {FOLLOW_POLICIES}")
    return coop


def _member(table: _Table) -> DemoMember:
    member = DemoMember(
        username=table.text("username"),
        name=table.text("name"),
        role=table.text("role"),
        password=table.text("password"),
        college=table.text("college") if table.has("college") else None,
    )
    table.done()
    if member.role not in ROLES:
        raise DemoError(f"{table.where}: role should be one of {ROLES}")
    return member


def _offer(table: _Table) -> dict[str, Any]:
    """An offer written in short in the data file, in the JSON API's shape."""
    title = table.table("title")
    description = table.table("description")
    data: dict[str, Any] = {
        "title": {"fr": title.text("fr"), "en": title.text("en")},
        "description": {"fr": description.text("fr"), "en": description.text("en")},
        "categories": [table.text("category")],
        "price": {"amount": table.text("price"), "currency": "EUR"},
        "unit": table.text("unit"),
        "claims": list(table.texts("claims")),
        "delivery_options": list(table.texts("delivery", DEFAULT_DELIVERY)),
        "payment_options": list(table.texts("payment", DEFAULT_PAYMENT)),
    }
    if table.has("available"):
        data["quantity"] = {"available": table.text("available"), "minimum": "1"}
    for part in (title, description, table):
        part.done()
    return data


def _proposal(table: _Table) -> DemoProposal:
    host = table.text("host")
    shared_with = table.texts("shared_with")
    table.text("title")
    table.texts("options")
    # The rest goes to the API as it is, which checks it as it checks any proposal.
    data = {k: v for k, v in table.values.items() if k not in ("host", "shared_with")}
    return DemoProposal(host=host, shared_with=shared_with, data=data)


def _network(table: _Table) -> DemoNetwork:
    network = DemoNetwork(
        name=table.text("name"),
        title=table.text("title"),
        summary=table.text("summary"),
        charter=table.text("charter").strip(),
        admission=table.text("admission"),
        host=table.text("host"),
        members=tuple(_seat(t) for t in table.tables("members")),
        waiting=tuple(_seat(t) for t in table.tables("waiting")) if table.has("waiting") else (),
    )
    table.done()
    if not NETWORK_NAME.match(network.name):
        raise DemoError(f"{table.where}: name should be a network's name, like 'my-network'")
    # The demo's admin admits the members: a vote would need the members to vote.
    if network.admission != Admission.ADMIN:
        raise DemoError(f"{table.where}: admission should be {str(Admission.ADMIN)!r}")
    return network


def _seat(table: _Table) -> NetworkSeat:
    seat = NetworkSeat(
        coop=table.text("coop"), sector=table.text("sector"), region=table.text("region")
    )
    table.done()
    return seat


def _order(table: _Table) -> DemoOrder:
    order = DemoOrder(
        seller=table.text("seller"),
        offer=table.text("offer"),
        buyer=table.text("buyer"),
        member=table.text("member"),
        data={
            "quantity": table.text("quantity"),
            "delivery": table.text("delivery"),
            "payment": table.text("payment"),
            "note": table.text("note"),
        },
        answers=table.texts("answers"),
        reply=table.text("reply") if table.has("reply") else "",
    )
    table.done()
    return order


def offer_titled(coop: DemoCoop, title: str) -> int | None:
    """The position of ``coop``'s offer titled ``title`` in French or English."""
    for position, offer in enumerate(coop.offers):
        if title in offer["title"].values():
            return position
    return None


def _check(seed: Seed) -> None:
    """What holds across tables: names that refer to each other exist."""
    handles = [c.handle for c in seed.coops]
    everyone = [c.handle for c in seed.everyone]
    if len(set(everyone)) != len(everyone) or not handles:
        raise DemoError(f"{DATA_FILE}: the co-ops' handles should be distinct: {everyone}")
    for coop in seed.everyone:
        _distinct(coop.handle, "usernames", (m.username for m in coop.members))
        if not any(m.role == "admin" for m in coop.members):
            raise DemoError(f"{DATA_FILE}: {coop.handle} has no admin")
        colleges = {name for name, _ in coop.colleges}
        for member in coop.members:
            if member.college is not None and member.college not in colleges:
                raise DemoError(
                    f"{DATA_FILE}: {coop.handle}: {member.username}'s college "
                    f"{member.college!r} is not one of the co-op's"
                )
    _check_follows(seed)
    if seed.network is not None:
        _check_network(seed, seed.network)
    for kind, proposal in (("internal", seed.internal), ("shared", seed.shared)):
        for handle in (proposal.host, *proposal.shared_with):
            if handle not in handles:
                raise DemoError(f"{DATA_FILE}: proposals.{kind}: no co-op {handle!r}")
        if proposal.host in proposal.shared_with:
            raise DemoError(f"{DATA_FILE}: proposals.{kind} is shared with its own host")
    if seed.internal.shared_with:
        raise DemoError(f"{DATA_FILE}: proposals.internal is shared")
    if not seed.shared.shared_with:
        raise DemoError(f"{DATA_FILE}: proposals.shared is shared with nobody")
    # A co-op takes a shared proposal only from a co-op it follows.
    for handle in seed.shared.shared_with:
        if seed.shared.host not in seed.followed_by(seed.coop(handle)):
            raise DemoError(
                f"{DATA_FILE}: proposals.shared: {handle} does not follow its host "
                f"{seed.shared.host}, so would refuse it"
            )
    for n, order in enumerate(seed.orders):
        _check_order(seed, order, f"{DATA_FILE}: orders[{n}]")


def _check_follows(seed: Seed) -> None:
    """The co-ops follow others of the three; a newcomer follows nobody."""
    handles = [c.handle for c in seed.coops]
    for coop in seed.everyone:
        if coop.follows is None:
            continue
        where = f"{DATA_FILE}: {coop.handle}: follows"
        if coop in seed.newcomers and coop.follows:
            raise DemoError(f"{where}: a newcomer follows nobody")
        _distinct(coop.handle, "co-ops it follows", coop.follows)
        for handle in coop.follows:
            if handle == coop.handle:
                raise DemoError(f"{where}: a co-op does not follow itself")
            if handle not in handles:
                raise DemoError(f"{where}: no co-op {handle!r}")


def _check_network(seed: Seed, network: DemoNetwork) -> None:
    """A network hosted by one of the three co-ops, which every co-op applies to at
    most once."""
    where = f"{DATA_FILE}: network"
    everyone = [c.handle for c in seed.everyone]
    if network.host not in [c.handle for c in seed.coops]:
        raise DemoError(f"{where}: host should be one of the three co-ops, not {network.host!r}")
    if not network.members:
        raise DemoError(f"{where}: members should name the co-ops the network admits")
    applying = [seat.coop for seat in network.members + network.waiting]
    for handle in applying:
        if handle not in everyone:
            raise DemoError(f"{where}: no co-op {handle!r}")
    if len(set(applying)) != len(applying):
        raise DemoError(f"{where}: a co-op applies once, as a member or waiting: {applying}")


def _check_order(seed: Seed, order: DemoOrder, where: str) -> None:
    """An order the seller's node would take: a member of another co-op orders, within
    the offer's stock, with options the offer lists; answers the seller may give in
    that order. The nodes check the rest (a price, a whole number of units)."""
    handles = [c.handle for c in seed.coops]
    for handle in (order.seller, order.buyer):
        if handle not in handles:
            raise DemoError(f"{where}: no co-op {handle!r}")
    if order.seller == order.buyer:
        raise DemoError(f"{where}: a co-op does not order from itself")
    buyer, seller = seed.coop(order.buyer), seed.coop(order.seller)
    if not any(m.username == order.member and m.role != "observer" for m in buyer.members):
        raise DemoError(f"{where}: {order.buyer} has no member {order.member!r} who may order")
    position = offer_titled(seller, order.offer)
    if position is None:
        raise DemoError(f"{where}: {order.seller} has no offer titled {order.offer!r}")
    offer = seller.offers[position]
    for field, options in (
        ("delivery", offer["delivery_options"]),
        ("payment", offer["payment_options"]),
    ):
        if order.data[field] not in options:
            raise DemoError(f"{where}: {field} should be one of the offer's: {options}")
    available = offer.get("quantity", {}).get("available")
    if available is None:
        raise DemoError(f"{where}: the offer ordered from should say how many are available")
    try:
        quantity = Decimal(order.data["quantity"])
    except InvalidOperation:
        raise DemoError(f"{where}: quantity should be a number") from None
    if not 0 < quantity <= Decimal(available):
        raise DemoError(f"{where}: quantity should be more than 0 and at most {available}")
    state = State.PENDING
    for answer in order.answers:
        if answer not in ANSWERS or not may_become(state, ANSWERS[answer]):
            raise DemoError(f"{where}: {answer!r} cannot answer an order that is {state.value}")
        state = ANSWERS[answer]


def _distinct(handle: str, what: str, names: Iterable[str]) -> None:
    seen = list(names)
    if len(set(seen)) != len(seen):
        raise DemoError(f"{DATA_FILE}: {handle}: the {what} should be distinct")
